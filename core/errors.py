"""Errors a user can cause and fix. The CLI prints them on one line and exits with their code."""

from __future__ import annotations

import difflib


class BenchError(Exception):
    """A problem with the user's input or environment: printed on one line, no traceback."""

    exit_code = 2


class UnknownNameError(BenchError, KeyError):
    """A name that is not in a registry. The message lists the valid choices and the closest ones."""

    def __init__(self, kind: str, name: str, choices: list[str]):
        self.kind, self.name, self.choices = kind, name, sorted(choices)
        close = difflib.get_close_matches(str(name), self.choices, n=3, cutoff=0.6)
        hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
        super().__init__(f"unknown {kind} {name!r}.{hint} Valid choices: {', '.join(self.choices)}")

    def __str__(self) -> str:  # KeyError would quote the message
        return self.args[0]


class PluginError(BenchError):
    """A user's plugin (module, entry point or registered object) that cannot be used."""


class ChecksumError(BenchError):
    exit_code = 3


class DataMissingError(BenchError):
    exit_code = 3


class ExplainerError(RuntimeError):
    """An explainer failed or produced non-finite values; names the explainer and the samples."""


class CellFailure(RuntimeError):
    """A cell of a run failed; recorded in failures.csv, the run goes on."""
