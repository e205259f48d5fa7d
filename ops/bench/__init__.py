"""Benchmarks: run as modules (`python -m ops.bench.<name>`); results in docs/benchmarks.md."""
