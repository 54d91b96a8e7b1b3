"""Benchmarks: each script prints its figures and their ratio to a reference run on the same machine in
the same run (never a number remembered from elsewhere). See docs/performance.md."""
