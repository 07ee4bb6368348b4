"""Evaluation: metrics, matching of predictions to people, benchmark protocols."""
