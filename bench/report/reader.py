"""The one reader of a run folder's files for the report: every table loaded once, from the same
bytes the run folder holds, so the findings, figures and page read exactly what a user opens.

The studies' report parts (bench/studies/) receive this reader too; they read through it, never
from paths of their own.
"""

from __future__ import annotations

import functools
from pathlib import Path

import pandas as pd


class RunFolder:
    def __init__(self, root: str | Path, scores: pd.DataFrame | None = None):
        self.root = Path(root)
        self._scores = scores
        self._tables: dict[str, pd.DataFrame] = {}

    @functools.cached_property
    def manifest(self) -> dict:
        from explainbench.bench.store import read_manifest_file

        path = self.root / "manifest.json"
        return read_manifest_file(path) if path.is_file() else {}

    @property
    def scores(self) -> pd.DataFrame:
        """scores.parquet (as consolidated from the verified parts)."""
        if self._scores is None:
            self._scores = pd.read_parquet(self.root / "scores.parquet")
        return self._scores

    @functools.cached_property
    def curves(self) -> pd.DataFrame | None:
        path = self.root / "curves.parquet"
        return pd.read_parquet(path) if path.is_file() else None

    def table(self, name: str) -> pd.DataFrame:
        """A CSV of the run folder (`name` relative to it), empty when absent or empty; a copy, so
        a caller's changes never reach another's. Leaderboards may carry a published provenance
        header (lines starting with '#'); other tables are read whole ('#' may be in an error)."""
        if name not in self._tables:
            path = self.root / name
            comment = "#" if name.startswith("leaderboard/") else None
            self._tables[name] = (pd.read_csv(path, comment=comment)
                                  if path.is_file() and path.stat().st_size > 1 else pd.DataFrame())
        return self._tables[name].copy()

    @functools.cached_property
    def boards(self) -> list[tuple[str, pd.DataFrame]]:
        """[(file stem, leaderboard)] of leaderboard/*.csv, in file order."""
        folder = self.root / "leaderboard"
        paths = sorted(folder.glob("*.csv")) if folder.is_dir() else []
        return [(p.stem, self.table(f"leaderboard/{p.name}")) for p in paths]

    @property
    def leaderboards(self) -> dict[tuple[str, str], pd.DataFrame]:
        """{(task, model): leaderboard} of the non-empty leaderboards."""
        return {(str(b["task"].iloc[0]), str(b["model"].iloc[0])): b.copy()
                for _, b in self.boards if len(b)}

    def board(self, task: str, model: str) -> pd.DataFrame | None:
        return self.leaderboards.get((task, model))

    @functools.cached_property
    def gallery(self) -> dict:
        from explainbench.bench.cells import gallery

        return gallery.load(self.root)
