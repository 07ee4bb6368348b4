"""Training: the per-worker loop, the Ray Train launch, checkpoints."""
