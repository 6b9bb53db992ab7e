"""The harness: CLI, suites, planning, runner (local and Ray), result store, studies and report.

It sits on top of explainbench.explainers, .metrics and .models, which hold the maths; nothing
below imports it.
"""
