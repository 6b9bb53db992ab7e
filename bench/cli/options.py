"""What every `bench` command shares: the --data-dir and --plugin options, the console, the data
folder set-up, and the one parser of `key=value` options."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

DataDir = typer.Option(None, "--data-dir", help="Folder with mnist/ and imdb/ (before BENCH_DATA_DIR).")
Plugins = typer.Option(None, "--plugin", help="Import this module (or .py file) of your own explainers, metrics or models first (repeatable).")


def console():
    from rich.console import Console

    return Console()


def setup(data_dir: Optional[Path] = None, plugins: Optional[list[str]] = None) -> None:
    from explainbench.core import data

    data.set_data_dir(data_dir)
    if plugins:
        from explainbench.core import plugins as user_plugins

        user_plugins.load_modules(list(plugins))


def plugin_notice(suite_plugins, cli_plugins) -> str | None:
    """The line `bench validate` and `bench plan` print when they imported plugins: reading a
    suite runs its plugins' code (they register the names the suite uses), so a user who only
    wanted to check a file from someone else is told that its code ran."""
    names = [*(cli_plugins or []), *suite_plugins]
    if not names:
        return None
    return (f"imported plugin{'s' if len(names) > 1 else ''} {', '.join(names)}: their code ran "
            "to register the names the suite uses (a suite's plugins are as trusted as code)")


def parse_assignments(items: list[str] | None, option: str) -> dict:
    """`key=value` options into a dict; values are read as YAML scalars or lists (50 -> int,
    0.1 -> float, true -> bool, [1, 5] -> list, zero -> str). A malformed item is one line."""
    import yaml

    from explainbench.core.errors import BenchError

    out = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise BenchError(f"{option} expects key=value, got {item!r}")
        try:
            out[key.strip()] = yaml.safe_load(value)
        except yaml.YAMLError as exc:
            raise BenchError(f"{option} {item!r}: the value is not valid YAML "
                             f"({getattr(exc, 'problem', None) or exc})") from None
    return out
