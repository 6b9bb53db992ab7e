"""Where data, models and caches live. Look-up order: explicit argument, environment, user cache."""

from __future__ import annotations

import os
from pathlib import Path


def user_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "explainbench"


def cache_dir() -> Path:
    """Models, tokenizers and attribution caches: BENCH_CACHE_DIR, else the user cache folder."""
    env = os.environ.get("BENCH_CACHE_DIR")
    path = Path(env) if env else user_cache_dir()
    path.mkdir(parents=True, exist_ok=True)
    return path


def data_dirs(data_dir: str | Path | None = None) -> list[Path]:
    """Folders searched for data files, in order: --data-dir, BENCH_DATA_DIR, the user cache."""
    dirs: list[Path] = []
    if data_dir:
        dirs.append(Path(data_dir))
    env = os.environ.get("BENCH_DATA_DIR")
    if env:
        dirs.append(Path(env))
    dirs.append(user_cache_dir() / "data")
    return dirs


def download_dir(data_dir: str | Path | None = None) -> Path:
    """Where missing files are downloaded to: the first writable folder of `data_dirs`."""
    for d in data_dirs(data_dir):
        try:
            d.mkdir(parents=True, exist_ok=True)
        except OSError:
            continue
        if os.access(d, os.W_OK):
            return d
    raise PermissionError("no writable data folder; set BENCH_DATA_DIR or --data-dir")
