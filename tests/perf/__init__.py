"""Benchmarks: scripts that measure and report, not timed tests (``make bench``)."""
