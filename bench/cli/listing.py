"""`bench list`: the models, explainers, metrics and suites explainbench knows, with every
parameter's default and allowed range; readable at 80 columns."""

from __future__ import annotations

from typing import Optional

import typer

from explainbench.bench.cli.options import Plugins, console, setup

KINDS = ("models", "explainers", "metrics", "suites")


def list_(kind: Optional[str] = typer.Argument(None, help="models, explainers, metrics or suites"),
          plugin: Optional[list[str]] = Plugins) -> None:
    """Print the models, explainers, metrics and suites explainbench knows."""
    from explainbench.core.errors import UnknownNameError

    if kind is not None and kind not in KINDS:
        raise UnknownNameError("list kind", kind, list(KINDS))
    setup(None, plugin)
    out = console()
    for name, show in (("models", _models), ("explainers", _explainers), ("metrics", _metrics),
                       ("suites", _suites)):
        if kind in (None, name):
            for table in show():
                out.print(table)


def _table(title: str, name_column: str, *columns: str):
    """A table whose first column (the names users type) is never wrapped or truncated."""
    from rich.table import Table

    table = Table(title=title)
    table.add_column(name_column, no_wrap=True, style="bold")
    for column in columns:
        table.add_column(column)
    return table


def _parameter_table(title: str, owner_column: str, owners) -> object:
    """One row per (owner, parameter): its default and what is allowed."""
    from explainbench.core.params import brief

    from rich.table import Table

    table = Table(title=title)
    table.add_column(owner_column, no_wrap=True, style="bold")
    table.add_column("parameter", no_wrap=True)  # the names users type: whole
    table.add_column("default")
    table.add_column("allowed")
    for name, parameters in owners:
        for i, (pname, p) in enumerate(parameters.items()):
            table.add_row(name if i == 0 else "", pname, str(p.default), brief(p))
    return table


def _models():
    from explainbench import models

    table = _table("models", "model", "task", "description", "cached (profile: accuracy)")
    for name in models.names():
        s = models.spec(name)
        cached = []
        for profile in models.PROFILES:
            card = models.card(name, profile) if s.task == "mnist" or _tokenizer_cached() else None
            if card:
                accuracy = card.get("test_accuracy")
                cached.append(f"{card['profile']}: " + ("-" if accuracy is None else f"{accuracy:.4f}"))
        table.add_row(name, s.task, s.description, ", ".join(dict.fromkeys(cached)) or "-")
    return [table]


def _explainers():
    from explainbench import explainers

    table = _table("explainers", "explainer", "inputs", "stochastic", "needs")
    classes = [(name, explainers.get_class(name)) for name in explainers.names()]
    for name, cls in classes:
        needs = [n for n, flag in (("gradients", cls.needs_gradients),
                                   ("background", cls.needs_background)) if flag]
        table.add_row(name, ", ".join(sorted(cls.modalities)), "yes" if cls.stochastic else "no",
                      ", ".join(needs) or "-")
    owners = [(name, cls.parameters) for name, cls in classes if cls.parameters]
    return [table, _parameter_table("explainer parameters", "explainer", owners)]


def _metrics():
    from explainbench import metrics

    table = _table("metrics", "metric", "category", "better", "definition")
    specs = [metrics.spec(name) for name in metrics.names()]
    for s in specs:
        table.add_row(s.name, s.category, "higher" if s.higher_is_better else "lower", s.summary)
    owners = [(s.name, s.parameters) for s in specs if s.parameters]
    return [table, _parameter_table("metric parameters", "metric", owners)]


def _suites():
    import yaml

    from explainbench.bench.run import suite as suites

    table = _table("suites", "suite", "version", "description")
    for name in suites.builtin_names():
        text, _ = suites.resolve(name)
        raw = yaml.safe_load(text)
        table.add_row(name, str(raw.get("version")), " ".join(str(raw.get("description", "")).split()))
    return [table]


def _tokenizer_cached() -> bool:
    from explainbench.core import paths
    from explainbench.core.tokenizer import VOCAB_SIZE

    return (paths.cache_dir() / "tokenizers" / f"imdb-wordlevel-{VOCAB_SIZE}" / "tokenizer.json").is_file()
