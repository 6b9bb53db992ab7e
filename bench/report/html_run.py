"""The run's own account in report.html: the cells that failed and the manifest."""

from __future__ import annotations

import json

from explainbench.bench.present.html import cell, esc, frame_table, note, table
from explainbench.bench.store import describe_commits


def failures_section(folder) -> str:
    failures = folder.table("failures.csv")
    if failures.empty:
        return note("No cell failed.")
    keep = [c for c in ("kind", "experiment", "model", "explainer", "seed", "chunk", "error_type",
                        "error") if c in failures.columns]
    return frame_table(failures[keep])


def manifest_section(folder) -> str:
    manifest = folder.manifest
    suite = manifest.get("suite", {})
    facts = [
        ("suite", f"{suite.get('name')} v{suite.get('version')} (hash {suite.get('hash')})"),
        ("git commit", describe_commits(manifest)),
        ("device", json.dumps(manifest.get("device"))),
        ("start / end (UTC)", f"{manifest.get('start_utc')} / {manifest.get('end_utc')}"),
        ("seeds", ", ".join(map(str, manifest.get("seeds", [])))),
        ("cells", json.dumps(manifest.get("cells"))),
    ] + [(f"model {k}", f"{v.get('checkpoint_sha256', '')[:16]}… accuracy {v.get('test_accuracy')}")
         for k, v in manifest.get("models", {}).items()] \
      + [(f"slice {k}", v) for k, v in manifest.get("slices", {}).items()] \
      + [(f"package {k}", v) for k, v in manifest.get("packages", {}).items()]
    rows = [[cell(k), cell(str(v))] for k, v in facts]
    raw = esc(json.dumps(manifest, indent=2, sort_keys=True))
    return (table(["", "value"], rows, "facts")
            + f"<details><summary>manifest.json</summary><pre>{raw}</pre></details>")
