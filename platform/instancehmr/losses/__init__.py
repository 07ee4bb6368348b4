"""Loss terms of the paper (focal, contrastive, mesh) and the weighted objective of Eq. 5."""

from instancehmr.losses.contrastive import contrastive_loss, sample_features
from instancehmr.losses.focal import focal_loss
from instancehmr.losses.objective import TERMS, WeightedObjective

__all__ = ["TERMS", "WeightedObjective", "contrastive_loss", "focal_loss", "sample_features"]
