"""InstanceHMR: occlusion-robust multi-person 3-D human mesh recovery with instance-aware
contrastive learning (CVPR 2024), as a Ray + MLflow experiment platform."""

__version__ = "0.1.0"
