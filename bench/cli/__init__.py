"""The `bench` command line (app.py and one module per command family): argument parsing, printing
and exit codes only; every command calls one library function of the run or report stage."""

from explainbench.bench.cli.app import EXIT_CODES, app, main

__all__ = ["EXIT_CODES", "app", "main"]
