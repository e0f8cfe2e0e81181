"""Benchmarks: `python -m bench.optimizer`, and the other components' bench scripts."""
