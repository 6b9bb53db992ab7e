"""The harness, by stage (docs/ARCHITECTURE.md):

    cli/       argument parsing, printing, exit codes; each command calls one library function
    run/       suite loading, cells in order, forecast, execution, backends, provenance
    report/    one reader of a run folder; leaderboards, findings, figures, report.html, publish
    studies/   each study whole: how it plans and executes, and what it adds to the report
    cells/     the unit of work the run executes and the studies define (spec, cells, explain stage)
    present/   statistics over score rows, the Finding record, figure and HTML helpers
    store.py   the run folder's format: atomic parts, digests, verification, the row schema

Imports point down: cli -> run / report -> studies -> cells / present -> store; explainbench's
explainers, metrics and models (the maths) and core sit below all of it.
"""
