"""The reference training path of the benchmarks: one Lightning step per epoch (automatic
optimization, metrics through self.log), the same losses as the runner's chunked steps. The
ensemble speedup is measured against it, and tests/test_chunked_steps.py checks that both paths
train to the same numbers."""

from __future__ import annotations

from contextlib import contextmanager

import torch

import runner.run
from runner.training.module import EnsembleModule


class PerEpochModule(EnsembleModule):
    """EnsembleModule with one Lightning step (with its epoch and batch machinery) per epoch."""

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

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        """Count this path's steps (the automatic-optimization loop's) where the runner's manual
        optimization counts them, so the runner resumes from this checkpoint at the same epoch."""
        super().on_save_checkpoint(checkpoint)
        loops = checkpoint.get("loops", {}).get("fit_loop", {})
        automatic = loops.get("epoch_loop.automatic_optimization.optim_progress", {}).get("optimizer", {}).get("step")
        manual = loops.get("epoch_loop.manual_optimization.optim_step_progress")
        if automatic and manual and not manual["total"]["completed"] and automatic["total"]["completed"]:
            manual["total"] = dict(automatic["total"])


@contextmanager
def per_epoch_path():
    """Inside, runner.run.train builds PerEpochModule: the reference path."""
    saved = runner.run.EnsembleModule
    runner.run.EnsembleModule = PerEpochModule
    try:
        yield
    finally:
        runner.run.EnsembleModule = saved
