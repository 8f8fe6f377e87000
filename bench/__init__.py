"""Benchmarks and the soak scenario; run with `make bench` and `make soak`."""
