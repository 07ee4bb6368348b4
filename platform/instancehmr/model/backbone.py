"""Backbones: torchvision ResNets with the release's deconvolution stack, or timm's HRNet-W32.

Both give features at 1/4 of the input resolution (128 x 128 at 512 input): ResNet -> 3 stride-2
deconvolutions (256, 128, 64 channels, kernel 4) -> 64 channels; HRNet-W32 -> its 32-channel
high-resolution branch.
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

import torch
import torchvision
from torch import nn

# timm (the hrnet extra) is optional: imported where it is used.

RESNETS = {
    "resnet18": (torchvision.models.resnet18, 512),
    "resnet34": (torchvision.models.resnet34, 512),
    "resnet50": (torchvision.models.resnet50, 2048),
}
DECONV_CHANNELS = (256, 128, 64)


class ResNetBackbone(nn.Module):
    """(B, 3, S, S) -> (B, 64, S/4, S/4)."""

    def __init__(self, name: str) -> None:
        super().__init__()
        factory, feat_ch = RESNETS[name]
        resnet = factory(weights=None)
        # Keep torchvision's layer names (conv1, ..., layer4) so its checkpoints load as they are.
        self.encoder = nn.Sequential(OrderedDict(list(resnet.named_children())[:-2]))
        layers: list[nn.Module] = []
        in_ch = feat_ch
        for out_ch in DECONV_CHANNELS:
            layers += [
                nn.ConvTranspose2d(in_ch, out_ch, 4, stride=2, padding=1, bias=False),
                nn.BatchNorm2d(out_ch),
                nn.ReLU(inplace=True),
            ]
            in_ch = out_ch
        self.decoder = nn.Sequential(*layers)
        self.out_channels = DECONV_CHANNELS[-1]

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(images))


class HRNetBackbone(nn.Module):
    """(B, 3, S, S) -> (B, 32, S/4, S/4): timm's HRNet-W32 high-resolution branch."""

    def __init__(self) -> None:
        super().__init__()
        try:
            import timm
        except ImportError:
            raise ImportError(
                "model.backbone=hrnet_w32 needs timm: pip install 'instancehmr[hrnet]'"
            ) from None
        self.net = timm.create_model(
            "hrnet_w32", pretrained=False, features_only=True, feature_location="", out_indices=(1,)
        )
        self.out_channels = self.net.feature_info.channels()[0]

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.net(images)[0]


def build_backbone(name: str, weights: str | None = None) -> nn.Module:
    """The backbone called ``name``; ``weights`` is an optional state-dict file (e.g. ImageNet)."""
    backbone = HRNetBackbone() if name == "hrnet_w32" else ResNetBackbone(name)
    if weights is not None:
        path = Path(weights)
        if not path.is_file():
            raise FileNotFoundError(f"model.backbone_weights: {path} not found")
        state = torch.load(path, map_location="cpu", weights_only=True)
        target = backbone.net if name == "hrnet_w32" else backbone.encoder
        state = {k: v for k, v in state.items() if k.split(".")[0] not in ("fc", "classifier")}
        try:
            missing, unexpected = target.load_state_dict(state, strict=False)
        except RuntimeError as err:  # shape mismatch
            raise ValueError(f"model.backbone_weights: {path} does not fit {name}: {err}") from None
        if unexpected or missing:
            raise ValueError(
                f"model.backbone_weights: {path} does not fit {name} "
                f"(missing {missing[:3]}, unexpected {unexpected[:3]})"
            )
    return backbone
