"""Benchmarks of the mz-schedctl cycle against the Materialize emulator (see run.py)."""
