"""Benchmarks (``instancehmr bench ...``): speed and memory as ratios against a baseline run in
the same process, so numbers from different machines stay comparable."""
