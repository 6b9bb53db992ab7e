"""explainbench: the harness (CLI, data, slices, suites, runner, result store, report).

The maths of explainers and metrics lives in the sibling packages `explainers` and `metrics`.
"""

__version__ = "0.1.0"
