"""Deterministic generators of synthetic input data, for the bundled sample, tests and benchmarks."""
