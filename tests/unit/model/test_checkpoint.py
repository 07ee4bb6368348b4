"""Training checkpoints: an atomic round trip, and a checkpoint of another model refused."""

import pytest
import torch

from instancehmr.model import build_model
from instancehmr.model.checkpoint import (
    TrainingState,
    load_model_state,
    load_training_state,
    save_training_state,
)
from instancehmr.train.loop import build_optimizer, build_scheduler


def test_round_trip_restores_identical_weights_and_optimizer_state(tiny_cfg, tmp_path):
    torch.manual_seed(0)
    model = build_model(tiny_cfg)
    optimizer = build_optimizer(tiny_cfg.optim, model.parameters())
    scheduler = build_scheduler(tiny_cfg.optim, optimizer, steps_per_epoch=4, epochs=2)
    model(torch.randn(2, 3, 64, 64))["param_map"].sum().backward()
    optimizer.step()
    scheduler.step()
    save_training_state(
        tmp_path,
        TrainingState(model=model.state_dict(), optimizer=optimizer.state_dict(),
                      scheduler=scheduler.state_dict(), epoch=3, step=42, config="name: x\n"),
    )  # fmt: skip
    assert not list(tmp_path.glob("*.tmp"))  # written atomically
    state = load_training_state(tmp_path)
    clone = build_model(tiny_cfg)
    load_model_state(clone, state, "test")
    for (name, a), b in zip(model.state_dict().items(), clone.state_dict().values(), strict=True):
        assert torch.equal(a, b), name
    restored = build_optimizer(tiny_cfg.optim, clone.parameters())
    restored.load_state_dict(state.optimizer)
    for a, b in zip(optimizer.state.values(), restored.state.values(), strict=True):
        assert torch.equal(a["exp_avg"], b["exp_avg"]) and torch.equal(
            a["exp_avg_sq"], b["exp_avg_sq"]
        )
    assert (state.epoch, state.step) == (3, 42)


def test_mismatching_checkpoint_is_refused(tiny_cfg, tmp_path):
    from instancehmr.config import load_config

    save_training_state(tmp_path, TrainingState(model=build_model(tiny_cfg).state_dict()))
    other = load_config("experiments/quickstart.yaml", ["model.input_size=64", "model.map_size=8"])
    with pytest.raises(ValueError, match="does not match the model of this config"):
        load_model_state(build_model(other), load_training_state(tmp_path), str(tmp_path))
    with pytest.raises(FileNotFoundError, match="not a training checkpoint"):
        load_training_state(tmp_path / "missing")


class _RunsCode:
    def __reduce__(self):
        import os

        return (os.system, ("echo this must never run",))


@pytest.mark.parametrize(
    ("content", "why"),
    [
        (b"not a checkpoint", "corrupt, or objects that could run code, refused unread"),
        (None, "PytorchStreamReader failed reading zip archive"),  # truncated
        ("code", "corrupt, or objects that could run code, refused unread"),
    ],
    ids=["garbage", "truncated", "pickled-code"],
)
def test_a_file_that_is_not_a_checkpoint_is_one_clear_error(tmp_path, content, why):
    import pickle

    path = tmp_path / "training_state.pt"
    if content is None:
        torch.save({"model": {"w": torch.zeros(1000)}}, path)
        path.write_bytes(path.read_bytes()[:300])
    elif content == "code":
        path.write_bytes(pickle.dumps({"model": _RunsCode()}))
    else:
        path.write_bytes(content)
    with pytest.raises(ValueError) as err:
        load_training_state(tmp_path)
    message = str(err.value)
    assert message.startswith(f"{path}: not a loadable training checkpoint (") and why in message
    assert "\n" not in message
