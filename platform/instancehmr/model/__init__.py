"""The InstanceHMR network, its parameter layout and the decoding of people from its maps."""

from instancehmr.model.network import InstanceHMR, build_model

__all__ = ["InstanceHMR", "build_model"]
