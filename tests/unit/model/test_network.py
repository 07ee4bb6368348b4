import pytest
import torch

from instancehmr.config import load_config
from instancehmr.model import build_model
from instancehmr.model.network import InstanceHMR

TINY = [
    "model.input_size=64",
    "model.map_size=8",
    "model.head_channels=16",
    "model.embedding_dim=16",
]


def test_paper_model_output_shapes_at_512():
    model = build_model(load_config("experiments/base.yaml")).eval()
    with torch.no_grad():
        out = model(torch.randn(1, 3, 512, 512))
    assert out["center_heatmap"].shape == (1, 1, 64, 64)
    assert out["joint_heatmap"].shape == (1, 24, 64, 64)
    assert out["camera_map"].shape == (1, 3, 64, 64)
    assert out["center_instance_map"].shape == (1, 64, 64, 64)
    assert out["joint_instance_map"].shape == (1, 64, 64, 64)
    assert out["param_map"].shape == (1, 82, 64, 64)
    assert all(v.dtype == torch.float32 for v in out.values())


@pytest.mark.parametrize(
    ("overrides", "keys", "param_channels", "dim"),
    [
        (
            ["model.instance_maps=false", "loss.contrastive=false"],
            set(),
            82,
            None,
        ),  # Table 4 baseline
        (
            ["model.positional_encoding=false"],
            {"center_instance_map", "joint_instance_map"},
            82,
            16,
        ),
        (["model.embedding_dim=32"], {"center_instance_map", "joint_instance_map"}, 82, 32),
        (
            ["model.pose_representation=rot6d"],
            {"center_instance_map", "joint_instance_map"},
            145,
            16,
        ),
    ],
)
def test_config_switches(overrides, keys, param_channels, dim):
    cfg = load_config("experiments/quickstart.yaml", [*TINY, *overrides])
    model = build_model(cfg).eval()
    out = model(torch.randn(2, 3, 64, 64))
    instance = {"center_instance_map", "joint_instance_map"} & set(out)
    assert instance == keys
    assert out["param_map"].shape == (2, param_channels, 8, 8)
    if dim:
        assert out["center_instance_map"].shape[1] == dim
    assert hasattr(model, "center_projector") == bool(keys)


def test_positional_encoding_is_added_only_to_the_center_map():
    torch.manual_seed(0)
    with_pe = InstanceHMR("resnet18", input_size=64, head_channels=8, embedding_dim=8).eval()
    without = InstanceHMR(
        "resnet18", input_size=64, head_channels=8, embedding_dim=8, positional_encoding=False
    )
    without.load_state_dict(with_pe.state_dict())
    x = torch.randn(1, 3, 64, 64)
    a, b = with_pe(x), without.eval()(x)
    assert not torch.allclose(a["center_instance_map"], b["center_instance_map"])
    assert torch.allclose(a["joint_instance_map"], b["joint_instance_map"])


def test_hrnet_backbone_shapes():
    model = InstanceHMR("hrnet_w32", input_size=64, head_channels=8, embedding_dim=8).eval()
    with torch.no_grad():
        out = model(torch.randn(1, 3, 64, 64))
    assert out["param_map"].shape == (1, 82, 8, 8)


def test_wrong_image_shape_is_refused(tiny_cfg):
    model = build_model(tiny_cfg)
    with pytest.raises(
        ValueError, match=r"expected images of shape \(B, 3, 64, 64\), got \(2, 3, 60, 64\)"
    ):
        model(torch.randn(2, 3, 60, 64))
    with pytest.raises(ValueError, match="got"):
        model(torch.randn(3, 64, 64))


def test_backbone_weights_file(tmp_path):
    import torchvision

    path = tmp_path / "resnet18.pth"
    torch.save(torchvision.models.resnet18(weights=None).state_dict(), path)
    model = InstanceHMR(
        "resnet18", backbone_weights=str(path), input_size=64, head_channels=8, embedding_dim=8
    )
    assert model.backbone.encoder.conv1.weight.shape == (64, 3, 7, 7)
    with pytest.raises(ValueError, match="does not fit resnet50"):
        InstanceHMR("resnet50", backbone_weights=str(path), input_size=64)
    with pytest.raises(FileNotFoundError, match=r"model\.backbone_weights"):
        InstanceHMR("resnet18", backbone_weights=str(tmp_path / "none.pth"), input_size=64)


@pytest.mark.parametrize(("wiring", "center_in", "joint_in"), [("both", 25, 25), ("own", 1, 24)])
def test_instance_map_branches_are_fed_the_release_heatmaps(wiring, center_in, joint_in):
    """By default both branches see H_C and the 24 H_J channels (the release); ``own`` keeps the
    center branch on H_C and the joint branch on H_J."""
    torch.manual_seed(0)
    model = InstanceHMR(
        "resnet18", input_size=64, head_channels=8, embedding_dim=8, instance_map_heatmaps=wiring
    ).eval()
    for branch, heatmaps in ((model.center_instance, center_in), (model.joint_instance, joint_in)):
        assert branch.refine[0][0].in_channels == 8 + heatmaps
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        before = model(x)
        model.joint_head.out.bias.add_(1.0)  # H_J changes, H_C does not
        after = model(x)
        model.joint_head.out.bias.sub_(1.0)
        model.center_head.out.bias.add_(1.0)  # H_C changes, H_J does not
        last = model(x)
    center_sees_joints = not torch.allclose(
        before["center_instance_map"], after["center_instance_map"]
    )
    joints_see_center = not torch.allclose(before["joint_instance_map"], last["joint_instance_map"])
    assert center_sees_joints == joints_see_center == (wiring == "both")


def test_a_checkpoint_config_saved_before_the_wiring_option_reads_as_the_old_wiring(tiny_cfg):
    from omegaconf import OmegaConf

    from instancehmr.config import config_from_yaml, to_yaml

    raw = OmegaConf.to_container(tiny_cfg)
    del raw["model"]["instance_map_heatmaps"]
    assert config_from_yaml(OmegaConf.to_yaml(raw), "old").model.instance_map_heatmaps == "own"
    assert config_from_yaml(to_yaml(tiny_cfg), "new").model.instance_map_heatmaps == "both"


def test_the_parameter_map_can_start_at_one_body():
    torch.manual_seed(0)
    model = InstanceHMR("resnet18", input_size=64, head_channels=8, embedding_dim=8).eval()
    mean = torch.randn(82)
    model.start_at(mean)
    with torch.no_grad():
        params = model(torch.randn(2, 3, 64, 64))["param_map"]
    spread = (params[:, 3:] - mean[3:, None, None]).abs().amax()
    assert spread < 0.05 * mean[3:].abs().max()  # every pixel near the body, weights x 0.01
    with pytest.raises(ValueError, match=r"expected \(82,\) raw parameters"):
        model.start_at(torch.zeros(10))
