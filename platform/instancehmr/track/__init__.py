"""MLflow tracking: runs, metrics relayed from Ray Train workers, artifacts, the model registry."""
