"""Shared fixtures: an isolated cache for the synthetic body, a body model, a tiny config."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).parent / "support"))  # test helpers: samples, corpus files

from samples import MISSING, REAL_SAMPLES  # noqa: E402


def pytest_configure(config: pytest.Config) -> None:
    # Keep the synthetic body out of the user's home cache unless CI/the user chose a place.
    if "INSTANCEHMR_CACHE" not in os.environ:
        os.environ["INSTANCEHMR_CACHE"] = str(REPO / ".cache" / "instancehmr-tests")
    torch.set_num_threads(min(2, os.cpu_count() or 1))


def pytest_runtest_setup(item: pytest.Item) -> None:
    """Tests marked ``real_samples`` skip, saying what is missing, without the real samples."""
    if item.get_closest_marker("real_samples") and not REAL_SAMPLES.is_dir():
        pytest.skip(MISSING)


@pytest.fixture(scope="session")
def tiny_run():
    """Factory ``(root, train=32, val=8, test=8) -> overrides``: writes a small synthetic corpus
    card (128 px images, that many per split) into ``root`` and returns the key=value overrides
    that make the quickstart experiment a tiny run on it (64 px input, 8 x 8 maps, embedding
    16, global batch 4, shards under ``root/shards``)."""
    import yaml

    def make(root: Path, train: int = 32, val: int = 8, test: int = 8) -> list[str]:
        raw = yaml.safe_load((REPO / "datasets" / "synthetic.yaml").read_text())
        raw["options"].update(
            {"image_size": 128, "sizes": {"train": train, "val": val, "test": test}}
        )
        card = root / "synthetic.yaml"
        card.write_text(yaml.safe_dump(raw))
        return [
            f"data.mix.0.card={card}", f"data.val_card={card}", f"data.shards_dir={root / 'shards'}",
            "model.input_size=64", "model.map_size=8", "model.head_channels=16",
            "model.embedding_dim=16", "train.batch_size=4",
        ]  # fmt: skip

    return make


@pytest.fixture(scope="session")
def body():
    from instancehmr.body.smpl import BodyModel
    from instancehmr.config import load_config

    return BodyModel.from_config(load_config(REPO / "experiments" / "base.yaml").body)


@pytest.fixture
def tiny_cfg():
    """A CPU-sized config: resnet18 at 64 px input (8 x 8 maps), embedding 16."""
    from instancehmr.config import load_config

    return load_config(
        REPO / "experiments" / "quickstart.yaml",
        [
            "model.input_size=64",
            "model.map_size=8",
            "model.head_channels=16",
            "model.embedding_dim=16",
        ],
    )


@pytest.fixture(scope="session")
def make_batch(body):
    """Factory for a labelled batch in the objective's layout (losses/objective.py): people
    posed with the body model, projected with a weak-perspective camera, heatmaps drawn."""
    import numpy as np
    import roma

    from instancehmr.body.joint_sets import CANONICAL_INDEX, NUM_CANONICAL, smpl24_from_canonical
    from instancehmr.data.targets import center_heatmap, joint_heatmaps
    from instancehmr.geometry import normalized_to_pixels, weak_perspective_project

    def make(
        batch_size: int, max_people: int, map_size: int, seed: int = 0
    ) -> dict[str, torch.Tensor]:
        g = torch.Generator().manual_seed(seed)
        n_people = torch.randint(1, max_people + 1, (batch_size,), generator=g)
        person_mask = torch.arange(max_people)[None] < n_people[:, None]
        pose = torch.randn(batch_size, max_people, 24, 3, generator=g) * 0.2
        pose[..., 0, :] = torch.tensor([np.pi, 0.0, 0.0])  # facing the camera, y down
        pose[..., 22:, :] = 0
        betas = torch.randn(batch_size, max_people, 10, generator=g) * 0.5
        rot = roma.rotvec_to_rotmat(pose.flatten(0, 1))
        with torch.no_grad():
            out = body(rot[:, 0], rot[:, 1:], betas.flatten(0, 1))
        joints = (
            out.joints - out.joints[:, CANONICAL_INDEX["pelvis"] : CANONICAL_INDEX["pelvis"] + 1]
        )
        slots = max_people
        offsets = (torch.arange(slots) - (slots - 1) / 2) * (1.6 / slots)
        camera = torch.stack(
            [
                torch.full((batch_size * slots,), 0.5),
                offsets.repeat(batch_size),
                torch.zeros(batch_size * slots),
            ],
            1,
        )
        kp2d = weak_perspective_project(joints, camera).view(batch_size, slots, NUM_CANONICAL, 2)
        joints = joints.view(batch_size, slots, NUM_CANONICAL, 3)
        valid = person_mask[..., None].expand(-1, -1, NUM_CANONICAL).clone()
        centers = normalized_to_pixels(kp2d[:, :, CANONICAL_INDEX["pelvis"]], map_size)
        smpl24, visible = smpl24_from_canonical(normalized_to_pixels(kp2d, map_size), valid)
        box_wh = kp2d.amax(2) - kp2d.amin(2)
        center_heatmap_list, joint_heatmap_list = [], []
        for b in range(batch_size):
            m = person_mask[b].numpy()
            center_heatmap_list.append(
                center_heatmap(centers[b][m].numpy(), box_wh[b][m].numpy(), map_size)
            )
            joint_heatmap_list.append(
                joint_heatmaps(smpl24[b][m].numpy(), visible[b][m].numpy(), map_size)
            )
        return {
            "images": torch.randn(batch_size, 3, map_size * 8, map_size * 8, generator=g),
            "center_heatmap": torch.from_numpy(np.stack(center_heatmap_list)),
            "joint_heatmap": torch.from_numpy(np.stack(joint_heatmap_list)),
            "joint_heatmap_mask": torch.ones(batch_size, 24, dtype=torch.bool),
            "person_mask": person_mask,
            "centers": centers * person_mask[..., None],
            "keypoints_2d": kp2d,
            "keypoints_2d_mask": valid,
            "keypoints_3d": joints,
            "keypoints_3d_mask": valid,
            "pose": pose.flatten(2),
            "pose_mask": person_mask,
            "betas": betas,
            "betas_mask": person_mask,
        }

    return make
