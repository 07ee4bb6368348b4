"""Hyperparameter sweeps over experiments: sweep files, Ray Tune trials, leaderboards."""
