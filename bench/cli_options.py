"""What every `bench` command shares: the --data-dir option, the console, the data folder set-up."""

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
