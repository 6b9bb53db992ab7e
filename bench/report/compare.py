"""`bench compare RUN_DIR --baseline results/`: rank the explainers of a run against a published
run's, without rerunning the published ones, from the per-sample scores `bench leaderboard
publish` writes (results/scores.parquet with its provenance, results/scores.json).

Rows pair on exactly the same (task, model checkpoint, sample id, metric, metric parameters,
metric definition version, seed). Anything that would pair different things is refused with one
line naming the field and both values: another checkpoint, another metric setting or definition
version, other seeds, a published file that fails its digest, stored definition versions other
than this code's. A partial overlap of samples is compared on the common samples, and says how
many. The statistics are the leaderboard's own (tables.leaderboards, tables.versus_controls) on
the merged rows, plus each new explainer against every published one (paired Wilcoxon per
metric, Holm-corrected over the published explainers).

    OUT/leaderboard/<task>-<model>.csv   the merged leaderboard (same columns as a run's)
    OUT/pairwise.csv                     each new explainer against each published one, per metric
    OUT/versus_controls.csv              the new explainers against the random and edge controls
    OUT/COMPARE.md                       a paragraph per model and new explainer
    OUT/compare.html                     the same, with the tables
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from explainbench.bench.present.finding import is_control as is_control_name
from explainbench.bench.present.stats import ALPHA, holm, wilcoxon_p
from explainbench.bench.report import tables
from explainbench.core.data import file_digest
from explainbench.core.errors import BenchError

PUBLISHED_SCORES, PUBLISHED_PROVENANCE, PUBLISHED_COSTS = "scores.parquet", "scores.json", "costs.csv"
PAIR_KEYS = ["task", "model", "model_sha256", "sample_id", "metric", "metric_params",
             "metric_version", "seed"]


@dataclass
class Comparison:
    boards: dict
    pairwise: pd.DataFrame
    controls: pd.DataFrame
    paragraphs: list[str]
    notes: list[str] = field(default_factory=list)
    new: list[str] = field(default_factory=list)  # the compared explainers' labels


def ordinal(n: int) -> str:
    return f"{n}{'th' if 10 <= n % 100 <= 20 else {1: 'st', 2: 'nd', 3: 'rd'}.get(n % 10, 'th')}"


# ------------------------------------------------------------------------------ reading


def read_published(folder: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(per-sample scores, costs) of a published run, refused unless its digest matches."""
    folder = Path(folder)
    scores_path, provenance_path = folder / PUBLISHED_SCORES, folder / PUBLISHED_PROVENANCE
    if not scores_path.is_file() or not provenance_path.is_file():
        raise BenchError(f"baseline {folder} has no {PUBLISHED_SCORES} with its {PUBLISHED_PROVENANCE} "
                         "(published per-sample scores); publish a run with `bench leaderboard "
                         "publish`")
    try:
        provenance = json.loads(provenance_path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        raise BenchError(f"baseline {provenance_path} is not readable JSON") from None
    expected = provenance.get("sha256") if isinstance(provenance, dict) else None
    if expected != file_digest(scores_path):
        raise BenchError(f"baseline {scores_path} fails its digest (sha256 in {provenance_path}): "
                         "edited or truncated; publish it again")
    scores = pd.read_parquet(scores_path)
    costs_path = folder / PUBLISHED_COSTS
    costs = pd.read_csv(costs_path) if costs_path.is_file() else pd.DataFrame()
    return check_versions(scores, f"baseline {scores_path}"), costs


def read_run(run_dir: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(scores, costs) of a run folder whose parts all verify."""
    from explainbench.bench.report.write import check_run_folder
    from explainbench.bench.store import ResultStore

    store = ResultStore(check_run_folder(run_dir))
    verification = store.verify()
    if not verification.ok:
        raise BenchError(f"{run_dir}: {verification.lines()[0]}; `bench report {run_dir}` "
                         "recomputes it")
    return check_versions(store.consolidate(), str(run_dir)), store.costs()


def read_score_files(paths: list[Path], base: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """The rows `bench score` wrote for attributions made anywhere (one metric per file) as
    leaderboard rows of a run: what they lack (study, category, family, correctness) is the
    baseline's for the same model, metric and sample, so they rank exactly as a run's would. A
    file explaining another class of a sample than the baseline did is refused."""
    from explainbench.bench.store import SCORE_FILE_COLUMNS
    from explainbench.explainers.base import params_hash

    frames = []
    for path in paths:
        if not path.is_file():
            raise BenchError(f"{path}: no such score file or run folder")
        try:
            frame = pd.read_parquet(path) if path.suffix == ".parquet" else \
                pd.read_csv(path, dtype={"metric_params": str, "params": str})
        except Exception as exc:  # noqa: BLE001 - not a table: one line, whatever the reader says
            raise BenchError(f"{path} is not a score file ({type(exc).__name__}); write one with "
                             "`bench score -a FILE.npz ...`") from None
        missing = [c for c in SCORE_FILE_COLUMNS if c not in frame.columns]
        if missing:
            raise BenchError(f"{path} lacks {', '.join(missing)}: not a file `bench score` wrote "
                             "with this code; score the .npz again")
        frames.append(frame[SCORE_FILE_COLUMNS])
    rows = pd.concat(frames, ignore_index=True)
    rows = rows.drop_duplicates(["model", "explainer", "params", "metric", "metric_params",
                                 "seed", "sample_id"], keep="last")
    per_metric = base.drop_duplicates(["model", "metric"]).set_index(["model", "metric"])
    per_sample = base.drop_duplicates(["model", "sample_id"]).set_index(["model", "sample_id"])
    keys = list(zip(rows["model"], rows["sample_id"]))
    known = [k in per_sample.index for k in keys]
    theirs = per_sample.reindex(keys)
    differ = np.array(known) & (theirs["target"].to_numpy() != rows["target"].to_numpy())
    if differ.any():
        i = int(np.flatnonzero(differ)[0])
        raise BenchError(f"{rows['model'].iloc[i]} sample {int(rows['sample_id'].iloc[i])}: the file "
                         f"explains class {int(rows['target'].iloc[i])}, the baseline class "
                         f"{int(theirs['target'].iloc[i])} ({len({k for k, d in zip(keys, differ) if d})} "
                         "samples differ); "
                         "explain the classes the baseline did (its target: the prediction)")
    described = per_metric.reindex(list(zip(rows["model"], rows["metric"])))
    rows = rows.assign(
        study="scores", category=described["category"].to_numpy(),
        family=described["family"].to_numpy(), correct=theirs["correct"].to_numpy(),
        params_hash=[params_hash(e, json.loads(p)) for e, p in zip(rows["explainer"], rows["params"])])
    absent = rows[rows["category"].isna()].drop_duplicates(["model", "metric"])
    notes = [f"{r.model}: metric {r.metric} is not in the baseline; left out" for r in absent.itertuples()]
    return rows.dropna(subset=["category"]), notes


def check_versions(scores: pd.DataFrame, where: str) -> pd.DataFrame:
    """Refuse rows whose stored definition versions are not this code's."""
    from explainbench import explainers, metrics

    if scores.empty:
        raise BenchError(f"{where} has no scores")
    if not {"metric_version", "explainer_version"} <= set(scores.columns) or \
            scores[["metric_version", "explainer_version"]].isna().any().any():
        raise BenchError(f"{where} carries no definition versions (scored before they existed); "
                         "score it again with this code")
    for metric, stored in scores.groupby("metric")["metric_version"].unique().items():
        current = metrics.version_of(metric)
        if set(int(v) for v in stored) != {current}:
            raise BenchError(f"{where}: metric {metric} was scored by definition version "
                             f"{', '.join(str(int(v)) for v in stored)}; this code's is {current}: "
                             "score it again with this code")
    for name, stored in scores.groupby("explainer")["explainer_version"].unique().items():
        try:
            current = int(explainers.get_class(name).version)
        except Exception:  # noqa: BLE001 - an explainer of a plugin not loaded here
            continue
        if set(int(v) for v in stored) != {current}:
            raise BenchError(f"{where}: explainer {name} is definition version "
                             f"{', '.join(str(int(v)) for v in stored)}; this code's is {current}")
    return scores


# ------------------------------------------------------------------------------ pairing


def _label(frame: pd.DataFrame) -> pd.Series:
    from explainbench.bench.present.stats import explainer_labels

    return explainer_labels(frame)


def _check_pairing(new: pd.DataFrame, base: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame, list[str]]:
    """The rows of both that pair, after the one-line refusals; notes on what was left out."""
    notes = []
    kept_new, kept_base = [], []
    for (task, model), mine in new.groupby(["task", "model"], sort=True):
        theirs = base[(base["task"] == task) & (base["model"] == model)]
        if theirs.empty:
            raise BenchError(f"model {model}: the baseline has no scores of it (it has "
                             f"{', '.join(sorted(base['model'].unique()))})")
        for column in ("model_sha256",):
            a, b = sorted(mine[column].unique()), sorted(theirs[column].unique())
            if a != b:
                raise BenchError(f"model {model}: {column} differs: this run {', '.join(a)}, "
                                 f"baseline {', '.join(b)} (another checkpoint: train it as "
                                 "published, or compare with a baseline of this checkpoint)")
        for metric, m in mine.groupby("metric", sort=True):
            t = theirs[theirs["metric"] == metric]
            if t.empty:
                notes.append(f"{model}: metric {metric} is not in the baseline; left out")
                continue
            for column in ("metric_params", "seed"):
                a = sorted(str(v) for v in m[column].unique())
                b = sorted(str(v) for v in t[column].unique())
                if a != b:
                    raise BenchError(f"model {model}, metric {metric}: {column} differs: this run "
                                     f"{'; '.join(a)}, baseline {'; '.join(b)}")
            common = np.intersect1d(m["sample_id"].unique(), t["sample_id"].unique())
            if not len(common):
                raise BenchError(f"model {model}, metric {metric}: no sample of this run is in "
                                 "the baseline (another slice?)")
            ours, all_theirs = m["sample_id"].nunique(), t["sample_id"].nunique()
            if len(common) < max(ours, all_theirs):
                notes.append(f"{model}, {metric}: compared on the {len(common)} samples both have "
                             f"(this run {ours}, baseline {all_theirs})")
            kept_new.append(m[m["sample_id"].isin(common)])
            kept_base.append(t[t["sample_id"].isin(common)])
    if not kept_new:
        raise BenchError("nothing of this run pairs with the baseline")
    return pd.concat(kept_new), pd.concat(kept_base), notes


def compare(sources: Path | list[Path], baseline: Path) -> Comparison:
    """`sources`: a run folder, or the score files `bench score` wrote (one metric each)."""
    sources = [Path(p) for p in sources] if isinstance(sources, (list, tuple)) else [Path(sources)]
    base_all, base_costs = read_published(Path(baseline))
    base = base_all[(base_all["study"] == "scores")
                    & base_all["category"].isin(tables.LEADERBOARD_CATEGORIES)]
    left_out = []
    if len(sources) == 1 and sources[0].is_dir():
        new_all, new_costs = read_run(sources[0])
    else:
        new_all, left_out = read_score_files(sources, base_all[base_all["study"] == "scores"])
        new_all = check_versions(new_all, ", ".join(map(str, sources)))
        new_costs = pd.DataFrame()
    new = new_all[(new_all["study"] == "scores")
                  & new_all["category"].isin(tables.LEADERBOARD_CATEGORIES)]
    if new.empty:
        raise BenchError(f"{', '.join(map(str, sources))} has no leaderboard scores to compare")
    new, base, notes = _check_pairing(new, base)
    notes = left_out + notes
    # an explainer setting the baseline has too is this run's copy of it: compared, not merged
    base_labels = set(_label(base))
    labels = _label(new)
    clash = labels.isin(base_labels)
    if clash.any():
        new = new.assign(explainer=np.where(clash, new["explainer"] + "_this_run", new["explainer"]))
    new_labels = sorted(set(_label(new)) - {n for n in set(_label(new)) if is_control_name(n)})
    merged = pd.concat([base, new], ignore_index=True)
    costs = pd.concat([c for c in (base_costs, new_costs) if not c.empty], ignore_index=True) \
        if not (base_costs.empty and new_costs.empty) else None
    boards = tables.leaderboards(merged, costs)
    pairwise = pairwise_table(merged, new_labels)
    controls = tables.versus_controls(merged)
    if not controls.empty:
        controls = controls[controls["explainer"].isin(new_labels)].reset_index(drop=True)
    paragraphs = [paragraph(board, pairwise, label, task, model)
                  for (task, model), board in boards.items() for label in new_labels
                  if label in set(board["explainer"])]
    return Comparison(boards, pairwise, controls, paragraphs, notes, new_labels)


def pairwise_table(merged: pd.DataFrame, new_labels: list[str]) -> pd.DataFrame:
    """Each new explainer against each published one on every leaderboard metric: means, the
    paired Wilcoxon p on the common samples, Holm-corrected over the published explainers, and
    the verdict (better, worse, not different) in the metric's direction."""
    samples = tables.leaderboard_samples(merged)
    rows = []
    for (task, model, metric, higher), g in samples.groupby(
            ["task", "model", "metric_label", "higher_is_better"], sort=True):
        wide = g.pivot_table(index="sample_id", columns="explainer_label", values="value")
        published = [e for e in wide.columns if e not in new_labels]
        for mine in [e for e in new_labels if e in wide.columns]:
            found = []
            for other in published:
                both = wide[[mine, other]].dropna()
                found.append((other, both[mine].mean(), both[other].mean(),
                              wilcoxon_p(both[mine].to_numpy(), both[other].to_numpy()), len(both)))
            adjusted = holm([f[3] for f in found]) if found else []
            for (other, a, b, p, n), p_holm in zip(found, adjusted):
                better = (a > b) if higher else (a < b)
                verdict = ("not different" if p_holm >= ALPHA else
                           "better" if better else "worse")
                rows.append(dict(task=task, model=model, metric=metric,
                                 category=g["category"].iloc[0], higher_is_better=bool(higher),
                                 explainer=mine, other=other, mean=a, other_mean=b, n=n,
                                 p=p, p_holm=p_holm, verdict=verdict))
    return pd.DataFrame(rows)


def paragraph(board: pd.DataFrame, pairwise: pd.DataFrame, label: str, task: str, model: str) -> str:
    """'my_method ranks 3rd of 27 on mnist_cnn by mean faithfulness rank; significantly better
    than lime on 7 of 9 faithfulness metrics, ...; not different from integrated_gradients on
    any.'"""
    ranks = board.drop_duplicates("explainer").set_index("explainer")["mean_faithfulness_rank"]
    ranks = ranks.dropna().sort_values()
    real = ranks[[not is_control_name(e) for e in ranks.index]]
    text = f"{label} on {model}: "
    if label in real.index:
        place = int((real < real[label] - 1e-12).sum()) + 1
        tied = int((np.isclose(real, real[label])).sum()) - 1
        text += (f"ranks {ordinal(place)} of {len(real)} by mean faithfulness rank "
                 f"({real[label]:.3g}" + (f", tied with {tied}" if tied else "") + ")")
    else:
        text += "no faithfulness rank (no faithfulness metric pairs)"
    mine = pairwise[(pairwise["task"] == task) & (pairwise["model"] == model)
                    & (pairwise["explainer"] == label) & (pairwise["category"] == "faithfulness")]
    if len(mine):
        counts = mine.groupby("other")["verdict"].value_counts().unstack(fill_value=0)
        total = int(mine.groupby("other").size().max())
        better = [f"{o} on {int(r.get('better', 0))}" for o, r in counts.iterrows() if r.get("better", 0)]
        worse = [f"{o} on {int(r.get('worse', 0))}" for o, r in counts.iterrows() if r.get("worse", 0)]
        same = [o for o, r in counts.iterrows() if not r.get("better", 0) and not r.get("worse", 0)]
        if better:
            text += f"; significantly better than {', '.join(better)} of {total} faithfulness metrics"
        if worse:
            text += f"; significantly worse than {', '.join(worse)} of {total}"
        if same:
            text += f"; not significantly different from {', '.join(same)} on any"
    return text + " (paired Wilcoxon, Holm-corrected over the published explainers, α = 0.05)."


# ------------------------------------------------------------------------------ writing


def write(result: Comparison, out: Path, run_dir: Path | str, baseline: Path) -> list[Path]:
    from explainbench.bench.present import html
    from explainbench.bench.store import atomic_write_bytes

    out.mkdir(parents=True, exist_ok=True)
    written = []

    def csv(name: str, frame: pd.DataFrame) -> None:
        path = out / name
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(path, frame.to_csv(index=False, float_format="%.6g").encode())
        written.append(path)

    for (task, model), board in result.boards.items():
        csv(f"leaderboard/{task}-{model}.csv", board)
    csv("pairwise.csv", result.pairwise)
    csv("versus_controls.csv", result.controls)
    lines = [f"# {', '.join(result.new)} against the published run", "",
             f"{run_dir} compared with the baseline {baseline} on the samples, checkpoints, "
             "metric settings and definition versions both have.", ""]
    lines += [f"- {p}" for p in result.paragraphs]
    if result.notes:
        lines += ["", "Left out or partial:", ""] + [f"- {n}" for n in result.notes]
    lines += ["", "Tables: leaderboard/*.csv (merged), pairwise.csv, versus_controls.csv.", ""]
    atomic_write_bytes(out / "COMPARE.md", "\n".join(lines).encode())
    written.append(out / "COMPARE.md")
    body = "".join(f"<li>{html.esc(p)}</li>" for p in result.paragraphs)
    boards = "".join(f"<h3>{html.esc(model)}</h3>" + html.frame_table(board[[
        c for c in ("explainer", "metric", "mean", "ci_low", "ci_high", "n", "rank",
                    "mean_faithfulness_rank", "different_from_best") if c in board.columns]])
        for (_, model), board in result.boards.items())
    page = (f"<!doctype html><html><head><meta charset='utf-8'><title>explainbench compare</title>"
            f"<style>body{{font-family:system-ui,sans-serif;margin:2rem;max-width:90rem}}"
            f"table{{border-collapse:collapse;font-size:.8rem}}td,th{{border:1px solid #d0d7de;"
            f"padding:.2rem .4rem}}.wide{{overflow-x:auto}}</style></head><body>"
            f"<h1>{html.esc(', '.join(result.new))} against the published run</h1><ul>{body}</ul>"
            + (f"<p>{html.esc('; '.join(result.notes))}</p>" if result.notes else "")
            + f"<h2>Pairwise</h2>{html.frame_table(result.pairwise)}<h2>Merged leaderboards</h2>"
            f"{boards}</body></html>")
    atomic_write_bytes(out / "compare.html", page.encode())
    written.append(out / "compare.html")
    return written
