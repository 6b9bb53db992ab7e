"""The run stage: a suite loaded and checked (suite.py), its cells in order (suite_cells.py), their
forecast (forecast.py, `bench plan`), execution (runner.py and execute.py; Ray: ray_backend.py)
into a run folder (bench/store.py), with provenance (provenance.py) and a progress bar
(progress.py); and the library side of `bench explain` and `bench score` (explain_file.py,
score_file.py)."""
