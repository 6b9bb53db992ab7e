"""The report stage: from a run folder's verified parts to its tables, FINDINGS.md, figures and
report.html (write.py), through one reader of the folder (reader.py); the studies contribute their
own parts through the study registry. It reads run folders, never the run stage's internals."""

from explainbench.bench.report.write import check_run_folder, stages, write_all

__all__ = ["check_run_folder", "stages", "write_all"]
