"""Inference: predictor, exporters, overlay renders."""
