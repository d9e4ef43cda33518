"""The LightningModule that trains an ensemble on a task, and its callbacks: progress lines,
checkpoints, and a clean stop on Ctrl-C or SIGTERM."""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from pathlib import Path
from typing import Callable

import lightning as L
import torch
from torch.utils.data import DataLoader, Dataset

from runner.ensemble import EnsembleMLP
from runner.faults import Interrupted, naming_full_disk
from runner.regularizers import NoRegularizer
from runner.tasks.base import Task

log = logging.getLogger("runner")


class FullBatch(Dataset):
    """A dataset of one item, the whole training batch: one optimizer step per epoch."""

    def __init__(self, batch: dict[str, torch.Tensor]):
        self.batch = batch

    def __len__(self) -> int:
        return 1

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return self.batch


def finite_stats(values: torch.Tensor) -> dict[str, torch.Tensor]:
    """mean/std/min/max over the finite entries of a per-member tensor (NaN if none)."""
    finite = values[torch.isfinite(values)]
    if finite.numel() == 0:
        nan = values.new_tensor(float("nan"))
        return {"mean": nan, "std": nan, "min": nan, "max": nan}
    std = finite.std(unbiased=False) if finite.numel() > 1 else finite.new_tensor(0.0)
    return {"mean": finite.mean(), "std": std, "min": finite.min(), "max": finite.max()}


class EnsembleModule(L.LightningModule):
    """Model + task + regularizer + optimizer. The training loss is the sum of member losses,
    so each member's gradient (and Adam's elementwise state) is its own."""

    def __init__(self, model: EnsembleMLP, task: Task, regularizer: NoRegularizer,
                 optimizer: Callable, log_every: int = 50):
        super().__init__()
        self.model = model
        self.regularizer = regularizer
        regularizer.setup(model)
        self.task = task
        self.optimizer_factory = optimizer
        self.log_every = log_every
        self.member_loss = torch.full((model.size,), float("nan"))
        # the references a blown-up member is judged against (runner.results.member_status);
        # buffers, so a resumed run keeps the values of its first step
        self.register_buffer("initial_loss", torch.full((model.size,), float("nan"), dtype=torch.float64))
        self.register_buffer("zero_output_loss", torch.full((model.size,), float("nan"), dtype=torch.float64))

    def train_dataloader(self) -> DataLoader:
        return DataLoader(FullBatch(self.task.train_batch()), batch_size=None)

    def configure_optimizers(self):
        return self.optimizer_factory(self.model.parameters())

    def on_train_epoch_start(self) -> None:
        self.task.on_epoch_start(self.current_epoch)

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        first = self.global_step == 0 and bool(torch.isnan(self.initial_loss).all())
        if first:
            with self.model.zero_output():
                self.zero_output_loss.copy_(self.task.loss(self.model, batch).detach())
        member_loss = self.task.loss(self.model, batch)
        if first:
            self.initial_loss.copy_(member_loss.detach())
        penalty = self.regularizer.penalty(self.model)
        self.member_loss = member_loss.detach()
        epoch = self.current_epoch
        if epoch % self.log_every == 0 or epoch == self.trainer.max_epochs - 1:
            self.log_members("train/loss", member_loss)
            if self.regularizer.has_penalty:
                self.log_members("train/penalty", penalty)
            for name, values in self.task.monitor(self.model).items():
                self.log_members(name, values)
        return (member_loss + penalty).sum()

    def log_members(self, name: str, values: torch.Tensor) -> None:
        """Log mean/std/min/max over members as name/mean etc."""
        stats = finite_stats(values.detach().float())
        self.log_dict({f"{name}/{k}": v for k, v in stats.items()}, on_step=True, on_epoch=False)

    def on_train_batch_end(self, outputs, batch, batch_idx: int) -> None:
        if not torch.isfinite(self.member_loss).any():
            log.warning("every member diverged (non-finite loss) at epoch %d; stopping", self.current_epoch)
            self.trainer.should_stop = True


class ProgressPrinter(L.Callback):
    """One log line every `every` epochs: epoch, loss over members, elapsed time."""

    def __init__(self, every: int = 500):
        self.every = every
        self.start = time.time()

    def on_train_epoch_end(self, trainer: L.Trainer, module: EnsembleModule) -> None:
        epoch = trainer.current_epoch + 1
        if epoch % self.every and epoch != trainer.max_epochs:
            return
        loss = module.member_loss.float().cpu()
        stats = finite_stats(loss)
        diverged = int((~torch.isfinite(loss)).sum())
        log.info("epoch %d/%d  loss %.3e ± %.1e (min %.3e)%s  %.1fs", epoch, trainer.max_epochs,
                 stats["mean"], stats["std"], stats["min"],
                 f"  diverged {diverged}/{len(loss)}" if diverged else "", time.time() - self.start)


class LastCheckpoint(L.Callback):
    """checkpoints/last.ckpt every `every` epochs, at the end and whenever training stops early
    (divergence, Ctrl-C, SIGTERM). Written atomically (temp file, fsync, rename) after the loggers
    flush, so metrics.csv covers every step it holds; the checkpoint it replaces is kept as
    previous.ckpt, something to resume from should last.ckpt be damaged."""

    def __init__(self, path: Path, every: int = 500):
        self.path, self.every = Path(path), every
        self.previous = self.path.with_name("previous.ckpt")

    def on_train_epoch_end(self, trainer: L.Trainer, module: EnsembleModule) -> None:
        epoch = trainer.current_epoch + 1
        stopping = trainer.should_stop or trainer.received_sigterm
        if epoch % self.every == 0 or epoch == trainer.max_epochs or stopping:
            self.save(trainer)

    def save(self, trainer: L.Trainer) -> None:
        """Flush the loggers, write the checkpoint beside last.ckpt, then rotate it in."""
        for logger in trainer.loggers:
            logger.save()
        tmp = self.path.with_name(self.path.name + ".tmp")
        try:
            with naming_full_disk(self.path):
                self.path.parent.mkdir(parents=True, exist_ok=True)
                trainer.save_checkpoint(tmp, weights_only=False)
                with open(tmp, "rb") as f:
                    os.fsync(f.fileno())
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        if self.path.exists():
            os.replace(self.path, self.previous)
        os.replace(tmp, self.path)


class StopOnSignal(L.Callback):
    """Ctrl-C (SIGINT) and SIGTERM for the length of a run (`with StopOnSignal() as stop:`).

    While training, the step under way finishes, the loop stops and LastCheckpoint saves at that
    epoch (on SIGTERM Lightning's own handler does the same and raises SIGTERMException after the
    epoch's hooks); `check()` then raises Interrupted. Outside training Interrupted comes at once.
    Later signals are ignored while it stops (a launcher may pass the same Ctrl-C on again). A signal
    that the parent process ignores (a background job's SIGINT) stays ignored.
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self):
        self.signum: int | None = None
        self.epoch = 0  # epochs done, as saved in checkpoints/last.ckpt
        self.training = False
        self._previous: dict[int, object] = {}

    def __enter__(self) -> StopOnSignal:
        if threading.current_thread() is threading.main_thread():
            for signum in self.SIGNALS:
                if signal.getsignal(signum) is not signal.SIG_IGN:
                    self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc_info) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)

    def _handle(self, signum: int, frame) -> None:
        if self.signum is not None:  # already stopping: let it finish its checkpoint and summary
            return
        self.signum = signum
        if not self.training:
            raise Interrupted(signum, self.epoch)

    def check(self) -> None:
        """Raise Interrupted if a signal arrived."""
        if self.signum is not None:
            raise Interrupted(self.signum, self.epoch)

    def on_train_start(self, trainer: L.Trainer, module: EnsembleModule) -> None:
        self.epoch = trainer.current_epoch
        self.training = True

    def on_train_batch_end(self, trainer: L.Trainer, *args) -> None:
        if self.signum is not None:
            trainer.should_stop = True

    def on_train_epoch_end(self, trainer: L.Trainer, module: EnsembleModule) -> None:
        self.epoch = trainer.current_epoch + 1

    def on_train_end(self, trainer: L.Trainer, module: EnsembleModule) -> None:
        self.training = False

    def on_exception(self, trainer: L.Trainer, module: EnsembleModule, exception: BaseException) -> None:
        self.training = False
