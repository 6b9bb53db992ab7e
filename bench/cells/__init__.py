"""The unit of work the run stage executes and the studies define: suite specs, cells, the explain
stage with its attribution cache, and the rows a cell writes."""
