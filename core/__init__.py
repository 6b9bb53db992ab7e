"""The foundation every layer stands on: errors, registries and plugins, paths, data files and
fixed slices, the tasks (the one place that knows how to remove features) and the tokenizer.

It imports nothing from explainbench.models, .explainers, .metrics or .bench.
"""
