"""Benchmarks: each module prints measured figures beside their targets and exits 1 when
one is missed."""
