"""explainbench: a quantitative benchmark of feature-attribution explanation methods.

One import package whose sub-packages are the repository's top-level folders (setuptools maps
them; see pyproject.toml), in three layers whose imports point down only:

    explainbench.bench        the harness: CLI, suites, planning, runner, store, studies, report
    explainbench.explainers   explainers, one file per family, behind one registry
    explainbench.metrics      metrics as pure batched tensor functions, behind one registry
    explainbench.models       architectures, deterministic training, the checkpoint cache
    explainbench.core         errors, registries and plugins, paths, data, slices, tasks, tokenizer

    from explainbench import explainers, metrics, models
"""

__version__ = "0.1.0"
