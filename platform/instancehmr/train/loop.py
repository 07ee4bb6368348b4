"""The per-worker training loop that Ray Train runs on every worker (DDP over gloo or NCCL).

Each epoch streams this worker's share of the mixed training data, optimises the weighted
objective, reports training metrics every ``tracking.log_every_steps`` steps and, at the end
of the epoch, a checkpoint with rank 0's validation metrics and a picture of predicted meshes.
Validation reports carry ``epochs_done`` (0 for the untrained model), the clock of a sweep's
early-stopping scheduler.
A non-finite loss, or a non-finite gradient norm after the backward pass (a NaN can hide in the
gradient of a finite loss), skips the step on every worker (the decision is all-reduced so DDP
stays in step): the weights are left untouched, the step is counted, and the run stops after
``train.max_nonfinite_steps`` such steps in a row.
"""

from __future__ import annotations

import logging
import math
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
import torch.distributed as dist
from omegaconf import OmegaConf

from instancehmr.body.joint_sets import smpl24_from_canonical
from instancehmr.body.prior import GaussianMixturePrior
from instancehmr.body.smpl import BodyModel
from instancehmr.config import to_yaml
from instancehmr.data.pipeline import SHUFFLE_BUFFER_BATCHES, validation_samples
from instancehmr.eval.references import ConstantPose
from instancehmr.eval.validation import validate
from instancehmr.geometry import normalized_to_pixels
from instancehmr.losses.objective import TERMS, WeightedObjective
from instancehmr.model import build_model
from instancehmr.model.checkpoint import (
    TrainingState,
    load_model_state,
    load_training_state,
    save_training_state,
)
from instancehmr.model.decode import decode_people
from instancehmr.model.network import to_model_input
from instancehmr.model.smpl_params import encode_params
from instancehmr.render.picture import validation_picture
from instancehmr.track.relay import PICTURE

# Imported inside the functions that use them, to keep this module light: Ray.

#: Validation images in the epoch's picture: the first ones of the split, in every run.
PICTURE_IMAGES = 2


class NonFiniteLossError(RuntimeError):
    """Too many non-finite losses or gradients in a row: the run stops rather than train on
    garbage."""


def build_optimizer(optim_cfg, parameters) -> torch.optim.Optimizer:
    """Adam or AdamW with the config's learning rate, betas and weight decay."""
    cls = torch.optim.Adam if optim_cfg.name == "adam" else torch.optim.AdamW
    return cls(
        parameters,
        lr=optim_cfg.lr,
        betas=tuple(optim_cfg.betas),
        weight_decay=optim_cfg.weight_decay,
    )


def build_scheduler(
    optim_cfg, optimizer, steps_per_epoch: int, epochs: int
) -> torch.optim.lr_scheduler.LRScheduler:
    """A per-optimizer-step schedule: a linear warm-up over ``warmup_steps``, times constant
    (paper), step decay by ``gamma`` at the epochs of ``milestones`` (release) or a cosine decay
    to 0 over the run's ``epochs * steps_per_epoch`` steps."""
    total = max(1, epochs * steps_per_epoch)
    milestones = [m * steps_per_epoch for m in optim_cfg.milestones]

    def factor(step: int) -> float:
        warmup = min(1.0, (step + 1) / optim_cfg.warmup_steps) if optim_cfg.warmup_steps else 1.0
        if optim_cfg.schedule == "step":
            return warmup * optim_cfg.gamma ** sum(step >= m for m in milestones)
        if optim_cfg.schedule == "cosine":
            return warmup * 0.5 * (1 + math.cos(math.pi * min(step, total) / total))
        return warmup

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def apply_optim_config(optimizer, scheduler, optim_cfg) -> None:
    """Put the config's learning rate, betas and weight decay into a restored optimizer and
    schedule (their state dicts hold the values they were built with): a resume with another
    config trains with the new values from the restored step on, at the schedule's factor for
    that step. With an unchanged config this changes nothing."""
    scheduler.base_lrs = [optim_cfg.lr] * len(optimizer.param_groups)
    factor = scheduler.lr_lambdas[0](scheduler.last_epoch)
    for group in optimizer.param_groups:
        group.update(
            initial_lr=optim_cfg.lr,
            lr=optim_cfg.lr * factor,
            betas=tuple(optim_cfg.betas),
            weight_decay=optim_cfg.weight_decay,
        )


def build_prior(body_cfg) -> GaussianMixturePrior:
    if body_cfg.prior_path:
        return GaussianMixturePrior.from_file(body_cfg.prior_path)
    return GaussianMixturePrior.from_joint_limits()


def build_objective(cfg, body: BodyModel) -> WeightedObjective:
    """The weighted objective of Eq. 5 for an experiment config (on the CPU; ``.to(device)``)."""
    return WeightedObjective(
        cfg.loss, body, build_prior(cfg.body), cfg.model.input_size, cfg.model.pose_representation
    )


class NonFiniteGuard:
    """Skips steps whose loss or gradient norm is NaN or infinite on any worker (all-reduced, so
    every DDP rank skips together), counts them, and raises after ``max_in_row`` in a row.

    A step is checked twice: its loss before the backward pass (``what="loss"``), then its
    gradient norm before the optimizer step (``what="gradient norm"``); :meth:`stepped` after an
    optimizer step resets the count."""

    def __init__(self, max_in_row: int) -> None:
        self.max_in_row = max_in_row
        self.in_row = 0
        self.skipped = 0

    def should_skip(self, value: torch.Tensor, step: int, what: str = "loss") -> bool:
        """True when ``value`` (a scalar) is not finite on some worker; NonFiniteLossError after
        ``max_in_row`` skipped steps in a row."""
        # On ``value``'s device: NCCL (Ray Train's backend on GPUs) all-reduces GPU tensors only.
        flag = torch.isfinite(value.detach()).to(torch.float32).reshape(1)
        if dist.is_available() and dist.is_initialized():
            dist.all_reduce(flag, op=dist.ReduceOp.MIN)
        if flag.item() == 1.0:
            return False
        self.in_row += 1
        self.skipped += 1
        if self.in_row >= self.max_in_row:
            plural = "losses" if what == "loss" else f"{what}s"
            raise NonFiniteLossError(
                f"{self.in_row} non-finite {plural} in a row at step {step} "
                f"(train.max_nonfinite_steps={self.max_in_row})"
            )
        return True

    def stepped(self) -> None:
        """The optimizer stepped: the run of skipped steps is over."""
        self.in_row = 0


def initial_model(cfg, constant: ConstantPose | None):
    """The network a run starts from: ``build_model(cfg)``, its parameter map started at the
    constant predictor's body when ``model.init_at_mean_body`` is on and ``constant`` is known."""
    core = build_model(cfg)
    if cfg.model.init_at_mean_body and constant is not None:
        core.start_at(encode_params(constant.params(1), cfg.model.pose_representation)[0])
    return core


class TrainStep:
    """One optimizer step of the weighted objective (Eq. 5) on a batch, as every worker takes it:
    forward (fp16 autocast with ``train.mixed_precision`` on a GPU), the loss guarded by a
    :class:`NonFiniteGuard`, backward, gradient clipping to ``train.grad_clip_norm``, the
    optimizer step and the per-step learning-rate schedule.

    ``model`` is the network to run (DDP-wrapped on a worker), ``core`` the plain network whose
    projectors feed L_cont; ``optimizer``, ``scheduler``, ``scaler`` and ``guard`` are the
    attributes a checkpoint saves."""

    def __init__(self, cfg, model, core, objective, steps_per_epoch: int, device) -> None:
        self.model, self.objective = model, objective
        self.projectors = (
            (core.center_projector, core.joint_projector) if cfg.loss.contrastive else None
        )
        self.device_type = torch.device(device).type
        self.use_amp = bool(cfg.train.mixed_precision and self.device_type == "cuda")
        self.clip = cfg.train.grad_clip_norm or float("inf")
        self.optimizer = build_optimizer(cfg.optim, model.parameters())
        self.scheduler = build_scheduler(
            cfg.optim, self.optimizer, steps_per_epoch, cfg.train.epochs
        )
        self.scaler = torch.amp.GradScaler(self.device_type, enabled=self.use_amp)
        self.guard = NonFiniteGuard(cfg.train.max_nonfinite_steps)

    def __call__(self, batch: dict[str, torch.Tensor], step: int) -> dict[str, torch.Tensor] | None:
        """The step's loss terms (``total`` included), or None when it was skipped for a
        non-finite loss or gradient norm (the weights untouched). Raises NonFiniteLossError
        after ``train.max_nonfinite_steps`` skipped steps in a row."""
        with torch.autocast(self.device_type, enabled=self.use_amp):
            outputs = self.model(to_model_input(batch["images"]))
            terms = self.objective(outputs, batch, self.projectors)
        if self.guard.should_skip(terms["total"], step):
            self.optimizer.zero_grad(set_to_none=True)
            return None
        self.scaler.scale(terms["total"]).backward()
        self.scaler.unscale_(self.optimizer)
        grad_norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.clip)
        if self.guard.should_skip(grad_norm, step, "gradient norm"):
            self.scaler.update()  # with fp16: a smaller loss scale after an overflow
            self.optimizer.zero_grad(set_to_none=True)
            return None
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        self.scheduler.step()
        self.guard.stepped()
        return terms


def _picture(model, body, samples: dict[str, np.ndarray], cfg, device) -> np.ndarray:
    """The epoch's picture (:func:`instancehmr.render.picture.validation_picture`) of the fixed
    validation ``samples``: their labelled skeletons beside the model's decoded meshes."""
    images = torch.as_tensor(samples["images"])
    with torch.no_grad():
        out = model(to_model_input(images.to(device)))
    people = decode_people(
        out, body, cfg.model.input_size, None, cfg.model.pose_representation,
        cfg.decode.nms_kernel, cfg.decode.max_people, cfg.decode.center_threshold,
    )  # fmt: skip
    size = cfg.model.input_size
    joints, visible = smpl24_from_canonical(
        normalized_to_pixels(samples["keypoints_2d"], size), samples["keypoints_2d_mask"]
    )
    gt_joints, gt_visible, vertices, cameras = [], [], [], []
    for i in range(len(images)):
        people_here = samples["person_mask"][i]
        gt_joints.append(joints[i][people_here])
        gt_visible.append(visible[i][people_here])
        mine = (people.batch_index == i).cpu().numpy()
        vertices.append(people.vertices[mine].cpu().numpy())
        cameras.append(people.camera[mine].cpu().numpy())
    return validation_picture(images.numpy(), gt_joints, gt_visible, vertices, cameras, body.faces)


class IntervalMeter:
    """Timings and loss sums between two training reports: the time each step waited for its
    batch and the time it computed, so a report gives images/s and the share of time spent
    waiting for data (detectron2's IterationTimer does the same bookkeeping)."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.start = self._ready = time.perf_counter()
        self.count, self.waited, self.busy = 0, 0.0, 0.0
        self.sums: dict[str, float] = defaultdict(float)

    def fetched(self) -> None:
        """A batch arrived: the time since the last step ended was spent waiting for it."""
        self._fetched = time.perf_counter()
        self.waited += self._fetched - self._ready

    def stepped(self, terms: dict[str, torch.Tensor] | None) -> None:
        """The step ended; ``terms`` are its losses, None for a skipped step (not counted)."""
        self._ready = time.perf_counter()
        if terms is None:
            return
        self.count += 1
        self.busy += self._ready - self._fetched
        for t in (*TERMS, "total"):
            self.sums[t] += float(terms[t].detach())

    def metrics(self, images_per_step: int) -> dict[str, float]:
        """Mean loss terms (``train/<term>``), ``train/images_per_s`` and
        ``train/data_wait_share`` since the last reset."""
        elapsed = self._ready - self.start
        out = {f"train/{t}": v / max(self.count, 1) for t, v in self.sums.items()}
        out["train/images_per_s"] = self.count * images_per_step / max(elapsed, 1e-9)
        out["train/data_wait_share"] = self.waited / max(self.waited + self.busy, 1e-9)
        return out


class Worker:
    """One Ray Train worker's part of a run, in the recipe's order (torchtune's lifecycle): the
    constructor sets up the body, objective, network and :class:`TrainStep`; :meth:`restore`
    resumes from a checkpoint; :meth:`train_epoch` streams this worker's share of the training
    data; :meth:`end_epoch` validates on rank 0 and reports the epoch with its checkpoint.

    ``loop_config``: ``config`` (the resolved experiment as a dict), ``steps_per_epoch`` (equal
    on every worker) and ``constant`` (the fields of the training data's
    :class:`~instancehmr.eval.references.ConstantPose`, or None)."""

    def __init__(self, loop_config: dict[str, Any], checkpoint) -> None:
        import ray.train
        import ray.train.torch

        cfg = self.cfg = OmegaConf.create(loop_config["config"])
        self.steps_per_epoch = int(loop_config["steps_per_epoch"])
        constant = loop_config.get("constant")
        self.constant = ConstantPose(**constant) if constant else None
        context = ray.train.get_context()
        self.rank, self.world = context.get_world_rank(), context.get_world_size()
        self.per_worker = cfg.train.batch_size // self.world
        torch.manual_seed(cfg.train.seed)
        self.device = ray.train.torch.get_device()
        self.body = BodyModel.from_config(cfg.body).to(self.device)
        objective = build_objective(cfg, self.body).to(self.device)
        self.core = build_model(cfg) if checkpoint else initial_model(cfg, self.constant)
        self.model = ray.train.torch.prepare_model(self.core)
        self.train_step = TrainStep(
            cfg, self.model, self.core, objective, self.steps_per_epoch, self.device
        )
        self.train_shard = ray.train.get_dataset_shard("train")
        self.val_shard = ray.train.get_dataset_shard("val")
        self.start_epoch, self.step = 0, 0

    def restore(self, checkpoint) -> None:
        """Weights, optimizer, schedule, loss scale and counters from a Ray Train checkpoint;
        the optimizer's hyper-parameters from this run's config (:func:`apply_optim_config`)."""
        with checkpoint.as_directory() as directory:
            state = load_training_state(directory, map_location=self.device)
        load_model_state(self.core, state, "resume checkpoint")
        self.train_step.optimizer.load_state_dict(state.optimizer)
        self.train_step.scheduler.load_state_dict(state.scheduler)
        apply_optim_config(self.train_step.optimizer, self.train_step.scheduler, self.cfg.optim)
        self.train_step.scaler.load_state_dict(state.scaler)
        self.start_epoch, self.step = state.epoch + 1, state.step

    def validation(self) -> dict[str, float]:
        """Validation metrics over this worker's share of the validation data."""
        batches = self.val_shard.iter_batches(batch_size=self.per_worker)
        return validate(self.core, self.body, batches, self.cfg, self.device, self.constant)

    def report_untrained(self) -> None:
        """The untrained model's validation metrics, reported at step 0 (epoch -1)."""
        import ray.train

        metrics = {"step": 0, "epoch": -1, "epochs_done": 0}
        if self.rank == 0:
            metrics.update(self.validation())
        ray.train.report(metrics)

    def train_epoch(self, epoch: int) -> None:
        """``steps_per_epoch`` optimizer steps; a training report every
        ``tracking.log_every_steps`` steps."""
        import ray.train

        self.model.train()
        meter = IntervalMeter()
        batches = self.train_shard.iter_torch_batches(
            batch_size=self.per_worker,
            drop_last=True,
            device=self.device,
            local_shuffle_buffer_size=SHUFFLE_BUFFER_BATCHES * self.per_worker,
        )
        for i, batch in enumerate(batches):
            if i >= self.steps_per_epoch:
                break
            meter.fetched()
            terms = self.train_step(batch, self.step)
            meter.stepped(terms)
            if terms is None:
                continue
            self.step += 1
            if self.step % self.cfg.tracking.log_every_steps == 0:
                metrics = meter.metrics(self.per_worker * self.world)
                metrics.update({"step": self.step, "epoch": epoch, "train/lr": self._lr(),
                                "train/skipped_steps": self.train_step.guard.skipped})  # fmt: skip
                ray.train.report(metrics)
                meter.reset()

    def _lr(self) -> float:
        return self.train_step.optimizer.param_groups[0]["lr"]

    def end_epoch(self, epoch: int) -> None:
        """Rank 0 validates, draws the picture and writes the checkpoint; every worker reports
        the epoch (``epochs_done``), rank 0 with its checkpoint."""
        import ray.train

        metrics = {"step": self.step, "epoch": epoch, "epochs_done": epoch + 1,
                   "train/skipped_steps": self.train_step.guard.skipped}  # fmt: skip
        with tempfile.TemporaryDirectory() as directory:
            if self.rank == 0:
                metrics.update(self.validation())
                samples = validation_samples(self.cfg, PICTURE_IMAGES)
                picture = _picture(self.core, self.body, samples, self.cfg, self.device)
                cv2.imwrite(
                    str(Path(directory) / PICTURE), cv2.cvtColor(picture, cv2.COLOR_RGB2BGR)
                )
                save_training_state(directory, self._state(epoch))
            ray.train.report(
                metrics,
                checkpoint=ray.train.Checkpoint.from_directory(directory)
                if self.rank == 0
                else None,
            )

    def _state(self, epoch: int) -> TrainingState:
        step = self.train_step
        return TrainingState(
            model=self.core.state_dict(), config=to_yaml(self.cfg), epoch=epoch, step=self.step,
            optimizer=step.optimizer.state_dict(), scheduler=step.scheduler.state_dict(),
            scaler=step.scaler.state_dict(),
        )  # fmt: skip


def train_loop_per_worker(loop_config: dict[str, Any]) -> None:
    """Ray Train entry point: a :class:`Worker` from ``loop_config``, restored from the run's
    checkpoint or validated untrained, then every remaining epoch."""
    import ray.train
    from ray.train.v2._internal.execution import context as train_context

    # Ray 2.60 logs every report at INFO under a logger named by its file path, which
    # RunConfig(logging_config) does not reach: one console line per report and worker.
    logging.getLogger(train_context.__file__).setLevel(logging.WARNING)
    checkpoint = ray.train.get_checkpoint()
    worker = Worker(loop_config, checkpoint)
    if checkpoint:
        worker.restore(checkpoint)
    else:
        worker.report_untrained()
    for epoch in range(worker.start_epoch, worker.cfg.train.epochs):
        worker.train_epoch(epoch)
        worker.end_epoch(epoch)
