"""The Lightning callbacks of a training run: progress lines (or a progress bar), checkpoints,
and a clean stop on Ctrl-C or SIGTERM. conf/callbacks and conf/progress name them by _target_;
a constructor gets what it asks for of the run by name (`task`, `run_dir`)."""

from __future__ import annotations

import logging
import signal
import threading
import time
from pathlib import Path
from typing import Callable

import lightning as L
import torch
from lightning.pytorch.callbacks import TQDMProgressBar

from runner import checks
from runner.faults import Interrupted
from runner.results.files import atomic_path
from runner.training.module import EnsembleModule, finite_stats

log = logging.getLogger("runner")


class EveryEpochs(L.Callback):
    """A callback due every `every` epochs: a training chunk ends at each multiple."""

    def __init__(self, every: int):
        self.every = checks.positive_int("every", every)

    def next_due(self, epoch: int) -> int:
        return (epoch // self.every + 1) * self.every


def short_duration(seconds: float) -> str:
    """42s, 12m05s or 3h02m."""
    s = int(round(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


class ProgressPrinter(EveryEpochs):
    """One log line every `every` epochs: epoch, loss over members, elapsed time and the time left.

    The time left is the epochs left over the epochs per second measured since the end of the
    first chunk, which is made `warmup` epochs short: setup (building, loading a checkpoint) and
    the first steps' one-time work stay out of the rate, and a resumed run counts only the epochs
    this process trained. Lines before the rate is measured give no estimate.
    """

    def __init__(self, every: int, warmup: int = 3, clock: Callable[[], float] = time.monotonic):
        super().__init__(every)
        self.warmup = warmup
        self.clock = clock
        self.start = clock()
        self.mark: tuple[float, int] | None = None  # (time, epoch) the rate is measured from

    def next_due(self, epoch: int) -> int:
        due = super().next_due(epoch)
        return due if self.mark is not None else min(due, epoch + self.warmup)

    def time_left(self, epoch: int, max_epochs: int, now: float) -> float | None:
        """Seconds until max_epochs at the rate measured since the mark (None before there is one)."""
        if self.mark is None or epoch <= self.mark[1] or now <= self.mark[0]:
            return None
        return (max_epochs - epoch) * (now - self.mark[0]) / (epoch - self.mark[1])

    def on_train_epoch_end(self, trainer: L.Trainer, module: EnsembleModule) -> None:
        epoch = trainer.global_step  # epochs done (a Lightning epoch is a chunk of them)
        now = self.clock()
        if self.mark is None:
            self.mark = (now, epoch)
        if epoch % self.every and epoch != trainer.max_epochs:
            return
        loss = module.member_loss.cpu()
        stats = finite_stats(loss)
        diverged = int((~torch.isfinite(loss)).sum())
        left = self.time_left(epoch, trainer.max_epochs, now) if epoch < trainer.max_epochs else None
        log.info("epoch %d/%d  loss %.3e ± %.1e (min %.3e)%s  %.1fs%s", epoch, trainer.max_epochs,
                 stats["mean"], stats["std"], stats["min"],
                 f"  diverged {diverged}/{len(loss)}" if diverged else "", now - self.start,
                 f", ~{short_duration(left)} left" if left is not None else "")


class EpochBar(EveryEpochs, TQDMProgressBar):
    """progress=bar, for a terminal: Lightning's tqdm bar over the run's epochs (tqdm's rate and
    time left; a resumed run's rate counts its own epochs) with the member-mean loss, moved every
    `every` epochs. Lightning's own bar would count chunks: one Lightning step holds many epochs."""

    def __init__(self, every: int):
        TQDMProgressBar.__init__(self)
        self.every = checks.positive_int("every", every)

    def on_train_start(self, trainer: L.Trainer, module: EnsembleModule) -> None:
        super().on_train_start(trainer, module)
        bar = self.train_progress_bar
        bar.reset(total=trainer.max_epochs)
        bar.initial = bar.n = trainer.global_step
        bar.set_description("epochs")

    def on_train_epoch_start(self, trainer: L.Trainer, *args) -> None:
        pass  # one bar for the run, not one per chunk

    def on_train_batch_end(self, trainer: L.Trainer, module: EnsembleModule, *args) -> None:
        bar = self.train_progress_bar
        if not bar.disable:
            bar.set_postfix(loss=f"{float(finite_stats(module.member_loss)['mean']):.3e}", refresh=False)
            bar.n = trainer.global_step
            bar.refresh()

    def on_train_epoch_end(self, trainer: L.Trainer, module: EnsembleModule) -> None:
        pass


class LastCheckpoint(EveryEpochs):
    """checkpoints/last.ckpt of the run directory every `every` epochs, at the end and whenever
    training stops early (divergence, Ctrl-C, SIGTERM). Written atomically
    (runner.results.files.atomic_path) after the loggers flush, so metrics.csv covers every step it
    holds; the checkpoint it replaces is kept as previous.ckpt, something to resume from should
    last.ckpt be damaged."""

    def __init__(self, run_dir: Path, every: int):
        super().__init__(every)
        self.path = Path(run_dir) / "checkpoints" / "last.ckpt"
        self.previous = self.path.with_name("previous.ckpt")

    def on_train_epoch_end(self, trainer: L.Trainer, module: EnsembleModule) -> None:
        epoch = trainer.global_step  # epochs done (a Lightning epoch is a chunk of them)
        stopping = trainer.should_stop or trainer.received_sigterm
        if epoch % self.every == 0 or epoch == trainer.max_epochs or stopping:
            self.save(trainer)

    def save(self, trainer: L.Trainer) -> None:
        """Flush the loggers, then write the checkpoint and rotate it in."""
        for logger in trainer.loggers:
            logger.save()
        with atomic_path(self.path, previous=self.previous) as tmp:
            trainer.save_checkpoint(tmp, weights_only=False)


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
        self.trainer.should_stop = True  # the chunk ends after the step under way

    def check(self) -> None:
        """Raise Interrupted if a signal arrived."""
        if self.signum is not None:
            raise Interrupted(self.signum, self.epoch)

    def on_train_start(self, trainer: L.Trainer, module: EnsembleModule) -> None:
        self.epoch = trainer.global_step
        self.trainer = trainer
        self.training = True

    def on_train_epoch_end(self, trainer: L.Trainer, module: EnsembleModule) -> None:
        self.epoch = trainer.global_step

    def on_train_end(self, trainer: L.Trainer, module: EnsembleModule) -> None:
        self.training = False

    def on_exception(self, trainer: L.Trainer, module: EnsembleModule, exception: BaseException) -> None:
        self.training = False
