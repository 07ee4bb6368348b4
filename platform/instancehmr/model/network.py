"""The InstanceHMR network (docs/method.md#network, Fig. 3) and ``build_model(cfg)``.

backbone (1/4 resolution) -> heads at 1/8: center heatmap H_C, joint heatmap H_J, camera;
center-aligned instance map (positional encoding added) and joint-aligned instance map, each fed
the backbone features and the predicted heatmaps; SMPL parameter map fed by [H_C, center-aligned
map] and [H_J, joint-aligned map]. With ``model.instance_maps = false`` the SMPL branch sees
backbone features only (Table 4 baseline).

Which heatmaps feed each instance-map branch (``instance_map_heatmaps``): ``both`` gives each
branch H_C and the 24 H_J channels, as the official release builds it (backbone features + 1 + 24
channels; the paper: "H_C and H_J are adopted in this encoding process"); ``own`` gives the
center branch H_C only and the joint branch H_J only.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from instancehmr.body.joint_sets import SMPL24
from instancehmr.model.backbone import build_backbone
from instancehmr.model.blocks import Head, ResidualBlock, conv_bn_relu, with_coords
from instancehmr.model.instance_maps import InstanceMapBranch
from instancehmr.model.projector import projector
from instancehmr.model.smpl_params import CAMERA_CHANNELS, CAMERA_SCALE_BASE, param_channels

NUM_HEATMAP_JOINTS = len(SMPL24)
#: Channel statistics of ImageNet, which the backbones' pretrained weights expect (torchvision's).
IMAGENET_MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
IMAGENET_STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)


def to_model_input(images: torch.Tensor) -> torch.Tensor:
    """(B, S, S, 3) uint8 RGB -> (B, 3, S, S) float, ImageNet-normalised: what the network
    takes."""
    x = images.permute(0, 3, 1, 2).float() / 255
    return (x - IMAGENET_MEAN.to(x.device)) / IMAGENET_STD.to(x.device)


class ParameterBranch(nn.Module):
    """SMPL parameter map without the camera: (B, C_in, 2h, 2w) [+ guidance] -> (B, P - 3, h, w)."""

    def __init__(self, in_ch: int, channels: int, guidance_ch: int, out_ch: int) -> None:
        super().__init__()
        self.trunk = nn.Sequential(
            conv_bn_relu(in_ch + 2, channels, stride=2), ResidualBlock(channels)
        )
        self.refine = nn.Sequential(
            conv_bn_relu(channels + guidance_ch, channels),
            ResidualBlock(channels),
            ResidualBlock(channels),
        )
        self.out = nn.Conv2d(channels, out_ch, 1)

    def forward(self, features: torch.Tensor, guidance: list[torch.Tensor]) -> torch.Tensor:
        x = self.trunk(with_coords(features))
        return self.out(self.refine(torch.cat([x, *guidance], dim=1)))


class InstanceHMR(nn.Module):
    """Bottom-up multi-person SMPL regression guided by center- and joint-aligned instance maps."""

    def __init__(
        self,
        backbone: str = "resnet50",
        backbone_weights: str | None = None,
        input_size: int = 512,
        head_channels: int = 64,
        embedding_dim: int = 64,
        instance_maps: bool = True,
        positional_encoding: bool = True,
        instance_map_heatmaps: str = "both",
        pose_representation: str = "axis_angle",
        num_betas: int = 10,
        camera_scale_init: float | None = None,
    ) -> None:
        super().__init__()
        self.input_size = input_size
        self.map_size = input_size // 8
        self.pose_representation = pose_representation
        self.num_betas = num_betas
        self.instance_maps = instance_maps
        if instance_map_heatmaps not in ("both", "own"):
            raise ValueError(f"instance_map_heatmaps '{instance_map_heatmaps}': both or own")
        self.instance_map_heatmaps = instance_map_heatmaps
        self.backbone = build_backbone(backbone, backbone_weights)
        c_in, c = self.backbone.out_channels, head_channels
        self.center_head = Head(c_in, c, 1)
        self.joint_head = Head(c_in, c, NUM_HEATMAP_JOINTS)
        self.camera_head = Head(c_in, c, CAMERA_CHANNELS)
        smpl_ch = param_channels(pose_representation, num_betas) - CAMERA_CHANNELS
        if instance_maps:
            both = 1 + NUM_HEATMAP_JOINTS
            own = instance_map_heatmaps == "own"
            self.center_instance = InstanceMapBranch(
                c_in, c, 1 if own else both, embedding_dim, positional_encoding
            )
            self.joint_instance = InstanceMapBranch(
                c_in, c, NUM_HEATMAP_JOINTS if own else both, embedding_dim, False
            )
            self.center_projector = projector(embedding_dim)
            self.joint_projector = projector(embedding_dim)
            guidance_ch = 1 + NUM_HEATMAP_JOINTS + 2 * embedding_dim
        else:
            guidance_ch = 0
        self.param_branch = ParameterBranch(c_in, c, guidance_ch, smpl_ch)
        with torch.no_grad():  # CenterNet's prior: heatmaps start near 0.1 rather than 0.5
            self.center_head.out.bias.fill_(-2.19)
            self.joint_head.out.bias.fill_(-2.19)
            if camera_scale_init is not None:  # s = 1.1 ** channel 0 starts at the data's scale
                self.camera_head.out.bias[0] = math.log(camera_scale_init) / math.log(
                    CAMERA_SCALE_BASE
                )

    @torch.no_grad()
    def start_at(self, params: torch.Tensor, gain: float = 0.01) -> None:
        """Make the SMPL parameter map start near one body everywhere: ``params`` (P,) raw
        channels (the camera's first three are the camera head's and left alone) become the
        parameter branch's output bias, its weights scaled by ``gain`` (HMR and SPIN regress
        from mean parameters in the same way)."""
        out = self.param_branch.out
        if params.shape != (CAMERA_CHANNELS + out.out_channels,):
            raise ValueError(
                f"expected ({CAMERA_CHANNELS + out.out_channels},) raw parameters, got "
                f"{tuple(params.shape)}"
            )
        out.weight.mul_(gain)
        out.bias.copy_(params[CAMERA_CHANNELS:])

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """images (B, 3, S, S) normalised RGB -> maps at h = w = S / 8:

        center_heatmap (B, 1, h, w) and joint_heatmap (B, 24, h, w): the logits of the heatmaps
        H_C and H_J; camera_map (B, 3, h, w); param_map (B, P, h, w) raw parameters (camera
        first; P = 82 by default); and with instance maps the center-aligned and joint-aligned
        instance maps center_instance_map and joint_instance_map (B, D, h, w).
        """
        if images.ndim != 4 or images.shape[1] != 3 or images.shape[2:] != (self.input_size,) * 2:
            raise ValueError(
                f"expected images of shape (B, 3, {self.input_size}, {self.input_size}), "
                f"got {tuple(images.shape)}"
            )
        features = self.backbone(images)
        center_heatmap = self.center_head(features)
        joint_heatmap = self.joint_head(features)
        camera_map = self.camera_head(features)
        out = {
            "center_heatmap": center_heatmap,
            "joint_heatmap": joint_heatmap,
            "camera_map": camera_map,
        }
        guidance: list[torch.Tensor] = []
        if self.instance_maps:
            h_c, h_j = center_heatmap.sigmoid(), joint_heatmap.sigmoid()
            if self.instance_map_heatmaps == "own":
                center_in, joint_in = h_c, h_j
            else:
                center_in = joint_in = torch.cat([h_c, h_j], dim=1)
            out["center_instance_map"] = self.center_instance(features, center_in)
            out["joint_instance_map"] = self.joint_instance(features, joint_in)
            guidance = [h_c, out["center_instance_map"], h_j, out["joint_instance_map"]]
        out["param_map"] = torch.cat([camera_map, self.param_branch(features, guidance)], dim=1)
        return out


def build_model(cfg) -> InstanceHMR:
    """The network described by an experiment config (``model`` and ``body`` sections)."""
    m = cfg.model
    return InstanceHMR(
        backbone=m.backbone,
        backbone_weights=m.backbone_weights,
        input_size=m.input_size,
        head_channels=m.head_channels,
        embedding_dim=m.embedding_dim,
        instance_maps=m.instance_maps,
        positional_encoding=m.positional_encoding,
        instance_map_heatmaps=m.instance_map_heatmaps,
        pose_representation=m.pose_representation,
        num_betas=cfg.body.num_betas,
        camera_scale_init=m.camera_scale_init,
    )
