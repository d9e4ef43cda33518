"""Shared by the benchmark scripts: time the runner's own training path, and keep the path as it
stood before chunked steps (issue 16) as the reference the ensemble speedup is measured against."""

from __future__ import annotations

import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import torch

import runner.run
from runner.config import compose
from runner.module import EnsembleModule, StopOnSignal
from runner.run import build_task, job_identity, keep_freed_memory, train


class PerEpochModule(EnsembleModule):
    """The runner's training step before issue 16: automatic optimization, one Lightning step
    (with its epoch and batch machinery) per epoch, metrics through self.log. Same losses."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.automatic_optimization = True

    def on_train_epoch_start(self) -> None:
        self.task.on_epoch_start(self.current_epoch)

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        member_loss = self.member_losses(batch, self.global_step)
        penalty = self.regularizer.penalty(self.model)
        self.member_loss = member_loss.detach()
        epoch = self.current_epoch
        if epoch % self.log_every == 0 or epoch == self.trainer.max_epochs - 1:
            row = self.row(member_loss, penalty if self.regularizer.has_penalty else None)
            self.log_dict(row, on_step=True, on_epoch=False)
        return (member_loss + penalty).sum()

    def on_train_batch_end(self, outputs, batch, batch_idx: int) -> None:
        if not torch.isfinite(self.member_loss).any():
            self.trainer.should_stop = True


@contextmanager
def per_epoch_path():
    """Inside, runner.run.train builds PerEpochModule: the training path before issue 16."""
    saved = runner.run.EnsembleModule
    runner.run.EnsembleModule = PerEpochModule
    try:
        yield
    finally:
        runner.run.EnsembleModule = saved


def time_training(*overrides: str, epochs: int) -> float:
    """Seconds for `run.train` of `epochs` epochs with these overrides, setup of the model and
    trainer included (composing the config and building the task are not): CPU trainer, no
    loggers, no progress lines, one checkpoint at the end, a throwaway directory, and the
    allocator setting every run gets."""
    keep_freed_memory()
    cfg = compose("trainer=cpu", "logger=none", "progress_every=1000000", *overrides,
                  f"trainer.max_epochs={epochs}", f"checkpoint_every={epochs}")
    task = build_task(cfg)
    with tempfile.TemporaryDirectory() as tmp, StopOnSignal() as stop:
        start = time.perf_counter()
        train(cfg, task, Path(tmp), job_identity(cfg, Path(tmp)), stop)
        return time.perf_counter() - start
