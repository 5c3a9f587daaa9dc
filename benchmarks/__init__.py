"""Benchmarks: figures recorded on the machine they run on, never asserted."""
