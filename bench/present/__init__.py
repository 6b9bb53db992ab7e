"""The presentation kit the report and the studies share: statistics over score rows, the
Finding record, figure and HTML helpers. It imports no stage: the report assembles, each study
contributes its own parts (bench/studies/), both with these pieces."""
