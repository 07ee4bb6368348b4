"""The worker loop's pieces: learning-rate schedules and the non-finite guard."""

import math

import pytest
import torch

from instancehmr.train.loop import apply_optim_config, build_optimizer, build_scheduler


def test_step_schedule_decays_at_milestones(tiny_cfg):
    from omegaconf import OmegaConf

    optim = OmegaConf.merge(
        tiny_cfg.optim,
        {"schedule": "step", "milestones": [1, 2], "gamma": 0.1, "lr": 1e-3, "warmup_steps": 0},
    )
    opt = build_optimizer(optim, [torch.nn.Parameter(torch.zeros(1))])
    sched = build_scheduler(optim, opt, steps_per_epoch=2, epochs=3)
    lrs = []
    for _ in range(6):  # stepped per optimizer step; milestones are epochs of 2 steps
        lrs.append(opt.param_groups[0]["lr"])
        sched.step()
    assert lrs == pytest.approx([1e-3, 1e-3, 1e-4, 1e-4, 1e-5, 1e-5])


def test_cosine_schedule_with_warmup(tiny_cfg):
    from omegaconf import OmegaConf

    optim = OmegaConf.merge(tiny_cfg.optim, {"schedule": "cosine", "warmup_steps": 2, "lr": 1.0})
    opt = build_optimizer(optim, [torch.nn.Parameter(torch.zeros(1))])
    sched = build_scheduler(optim, opt, steps_per_epoch=2, epochs=2)
    lrs = []
    for _ in range(5):
        lrs.append(opt.param_groups[0]["lr"])
        sched.step()
    # warm-up 1/2, then the cosine over 4 steps: cos(pi * s / 4)
    assert lrs == pytest.approx(
        [0.5, 0.5 * (1 + math.cos(math.pi / 4)), 0.5, 0.5 * (1 + math.cos(3 * math.pi / 4)), 0.0],
        abs=1e-9,
    )


def test_a_restored_optimizer_trains_with_the_configs_learning_rate(tiny_cfg):
    """Restoring the optimizer and schedule state brings back the learning rate they were built
    with; a resume with a changed ``optim.lr`` must train with the new one, at the schedule's
    factor for the restored step, and an unchanged config must change nothing."""
    from omegaconf import OmegaConf

    old = OmegaConf.merge(
        tiny_cfg.optim,
        {"schedule": "step", "milestones": [1], "gamma": 0.1, "lr": 1e-3, "warmup_steps": 0},
    )
    param = torch.nn.Parameter(torch.zeros(1))
    opt = build_optimizer(old, [param])
    sched = build_scheduler(old, opt, steps_per_epoch=2, epochs=2)
    for _ in range(3):  # past the milestone: factor 0.1
        param.grad = torch.ones(1)
        opt.step()
        sched.step()
    saved = opt.state_dict(), sched.state_dict()

    def restored(optim):
        fresh = torch.nn.Parameter(torch.zeros(1))
        opt2 = build_optimizer(optim, [fresh])
        sched2 = build_scheduler(optim, opt2, steps_per_epoch=2, epochs=2)
        opt2.load_state_dict(saved[0])
        sched2.load_state_dict(saved[1])
        apply_optim_config(opt2, sched2, optim)
        return opt2, sched2

    same, _ = restored(old)
    assert same.param_groups[0]["lr"] == pytest.approx(1e-4)
    new = OmegaConf.merge(old, {"lr": 5e-3, "weight_decay": 0.01})
    changed, sched2 = restored(new)
    assert changed.param_groups[0]["lr"] == pytest.approx(5e-4)  # 5e-3 x the factor 0.1
    assert changed.param_groups[0]["weight_decay"] == 0.01
    sched2.step()
    assert changed.param_groups[0]["lr"] == pytest.approx(5e-4)  # the schedule goes on from it


def test_non_finite_losses_and_gradients_are_skipped_counted_and_stop_the_run():
    from instancehmr.train.loop import NonFiniteGuard, NonFiniteLossError

    nan, inf = torch.tensor(float("nan")), torch.tensor(float("inf"))
    guard = NonFiniteGuard(max_in_row=3)
    assert not guard.should_skip(torch.tensor(1.0), 0)
    assert not guard.should_skip(torch.tensor(0.5), 0, "gradient norm")
    guard.stepped()
    assert guard.should_skip(nan, 1)
    assert guard.should_skip(inf, 2)
    guard.stepped()  # a step that went through resets the run of failures
    assert guard.should_skip(nan, 3) and guard.should_skip(nan, 4)
    with pytest.raises(NonFiniteLossError, match="3 non-finite losses in a row at step 5"):
        guard.should_skip(-inf, 5)
    assert guard.skipped == 5


def test_a_finite_loss_with_a_nan_gradient_counts_towards_the_stop():
    """A NaN can hide in the gradient of a finite loss (an SVD of a zero matrix): the guard
    watches the gradient norm too, and finite losses do not reset that run."""
    from instancehmr.train.loop import NonFiniteGuard, NonFiniteLossError

    guard = NonFiniteGuard(max_in_row=2)
    assert not guard.should_skip(torch.tensor(1.0), 0)
    assert guard.should_skip(torch.tensor(float("nan")), 0, "gradient norm")
    assert not guard.should_skip(torch.tensor(1.0), 1)
    with pytest.raises(NonFiniteLossError, match="2 non-finite gradient norms in a row at step 1"):
        guard.should_skip(torch.tensor(float("nan")), 1, "gradient norm")


def test_a_final_validation_that_is_not_finite_fails_the_run():
    from instancehmr.track.runs import RunFailed
    from instancehmr.train.launch import check_finite_validation

    check_finite_validation({"val/mpjpe": 80.0, "train/total": float("nan"), "step": 3})
    with pytest.raises(RunFailed, match=r"not finite \(val/mpjpe=nan\)"):
        check_finite_validation({"val/mpjpe": float("nan"), "val/pa_mpjpe": 50.0})


def _guard_rank(rank: int, world: int, store_path: str, results) -> None:
    """One DDP rank under gloo: rank 1 alone sees a NaN loss at step 1."""
    import torch.distributed as dist

    from instancehmr.train.loop import NonFiniteGuard

    dist.init_process_group("gloo", init_method=f"file://{store_path}", rank=rank, world_size=world)
    try:
        guard = NonFiniteGuard(max_in_row=3)
        losses = [torch.tensor(1.0), torch.tensor(float("nan") if rank == 1 else 2.0)]
        results[rank] = [guard.should_skip(loss, step) for step, loss in enumerate(losses)]
    finally:
        dist.destroy_process_group()


def test_the_guard_all_reduces_on_the_loss_device_so_every_rank_skips_together(tmp_path):
    """Under DDP every rank must skip the same steps (else their gradients' all-reduce hangs);
    the flag is all-reduced on the loss's own device, as NCCL on GPUs requires (here: gloo on
    CPU, the same code path)."""
    import torch.multiprocessing as mp

    with mp.Manager() as manager:
        results = manager.dict()
        mp.spawn(_guard_rank, args=(2, str(tmp_path / "store"), results), nprocs=2, join=True)
        assert dict(results) == {0: [False, True], 1: [False, True]}
