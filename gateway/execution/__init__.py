"""Execution: running plans against the departments and shaping the answer."""
