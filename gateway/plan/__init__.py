"""The plan: what every stage of the pipeline reads and returns (nodes, root fields, the run they execute in)."""
