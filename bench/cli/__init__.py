"""The `bench` command line (commands.py and one module per command family): argument parsing, printing
and exit codes only; every command calls one library function of the run or report stage."""

from explainbench.bench.cli.commands import EXIT_CODES, app, main

__all__ = ["EXIT_CODES", "app", "main"]
