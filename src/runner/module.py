"""The LightningModule that trains an ensemble on a task, and its callbacks: progress lines (or a
progress bar), checkpoints, and a clean stop on Ctrl-C or SIGTERM."""

from __future__ import annotations

import logging
import math
import signal
import threading
import time
from pathlib import Path
from typing import Callable

import lightning as L
import torch
from lightning.pytorch.callbacks import TQDMProgressBar
from torch.utils.data import DataLoader, Dataset

from runner.ensemble import EnsembleMLP
from runner.faults import Interrupted
from runner.regularizers import NoRegularizer
from runner.results import atomic_path, member_stats
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


ROW_STATS = ("mean", "std", "min", "max")  # of each quantity over members, in a metrics row


def finite_stats(values: torch.Tensor) -> dict[str, float]:
    """ROW_STATS of a per-member tensor over its finite members (runner.results.member_stats),
    NaN where none is finite: a metrics row's or a progress line's numbers."""
    stats = member_stats(values)
    return {k: math.nan if stats[k] is None else stats[k] for k in ROW_STATS}


class EnsembleModule(L.LightningModule):
    """Model + task + regularizer + optimizer. The training loss is the sum of member losses,
    so each member's gradient (and Adam's elementwise state) is its own.

    One epoch is one full-batch optimizer step, and `trainer.global_step` counts them. Lightning's
    own step is a chunk of epochs: `training_step` runs the optimizer steps up to the next epoch a
    callback must see (`next_due`: a checkpoint, a progress line, a kernel record, the end), so
    Lightning's per-step machinery runs once per chunk, not once per epoch (manual optimization:
    the torch optimizer steps and is counted in global_step; Lightning's optimizer step and
    backward, with their hooks, only where a float16 gradient scaler needs them). Metrics rows are
    written every `log_every` epochs inside a chunk. A signal or an all-non-finite ensemble ends
    the chunk after the step under way.
    """

    def __init__(self, model: EnsembleMLP, task: Task, regularizer: NoRegularizer,
                 optimizer: Callable, log_every: int):
        super().__init__()
        self.automatic_optimization = False
        self.model = model
        self.regularizer = regularizer
        regularizer.setup(model)
        self.task = task
        self.optimizer_factory = optimizer
        self.log_every = log_every
        self.member_loss = torch.full((model.size,), float("nan"))
        self.member_loss_epoch = -1  # the epoch member_loss belongs to
        # the references a blown-up member is judged against (runner.results.member_status);
        # buffers, so a resumed run keeps the values of its first step
        self.register_buffer("initial_loss", torch.full((model.size,), float("nan"), dtype=torch.float64))
        self.register_buffer("zero_output_loss", torch.full((model.size,), float("nan"), dtype=torch.float64))
        # every member's training loss at each logged epoch (the metrics rows), for the
        # convergence rule (runner.results.member_convergence); kept in checkpoints
        self.logged_epochs: list[int] = []
        self.logged_losses: list[list[float]] = []  # per logged epoch, one value per member

    def train_dataloader(self) -> DataLoader:
        return DataLoader(FullBatch(self.task.train_batch()), batch_size=None)

    def configure_optimizers(self):
        return self.optimizer_factory(self.model.parameters())

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["loss_history"] = {"epochs": list(self.logged_epochs),
                                      "losses": [list(row) for row in self.logged_losses]}

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        """The loss history up to the checkpoint (empty in a checkpoint that holds none)."""
        history = checkpoint.get("loss_history") or {"epochs": [], "losses": []}
        self.logged_epochs = [int(e) for e in history["epochs"]]
        self.logged_losses = [[float(v) for v in row] for row in history["losses"]]

    def chunk_end(self, epoch: int) -> int:
        """The epoch where the chunk starting at `epoch` ends: the first one after it that a
        callback must see (its `next_due`), or the last."""
        due = [callback.next_due(epoch) for callback in self.trainer.callbacks if hasattr(callback, "next_due")]
        return min([self.trainer.max_epochs, *due])

    def on_train_start(self) -> None:
        # Lightning's per-step path (hooks before and after backward and the optimizer step) costs
        # time on every step and no runner callback uses it; a float16 gradient scaler needs it.
        self.lightning_steps = getattr(self.trainer.precision_plugin, "scaler", None) is not None

    def optimizer_step_fn(self) -> Callable:
        """optimizer.step(closure) that counts in trainer.global_step: Lightning's own
        (with its hooks) under a gradient scaler, else the torch optimizer's, counted here."""
        optimizer = self.optimizers()
        if self.lightning_steps:
            return optimizer.step
        # the counter Lightning's own optimizer step advances (trainer.global_step, saved in checkpoints)
        progress = self.trainer.fit_loop.epoch_loop.manual_optimization.optim_step_progress

        def step(closure: Callable) -> None:
            progress.increment_ready()
            optimizer.optimizer.step(closure)
            progress.increment_completed()
        return step

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        trainer, step, optimizer = self.trainer, self.optimizer_step_fn(), self.optimizers()
        for epoch in range(self.global_step, self.chunk_end(self.global_step)):
            self.task.on_epoch_start(epoch)
            step(lambda: self.closure(optimizer, batch, epoch))
            if not torch.isfinite(self.member_loss).any():
                log.warning("every member diverged (non-finite loss) at epoch %d; stopping", epoch)
                trainer.should_stop = True
            if trainer.should_stop or trainer.received_sigterm:
                return
        if self.global_step >= trainer.max_epochs:
            trainer.should_stop = True

    def closure(self, optimizer, batch: dict[str, torch.Tensor], epoch: int) -> torch.Tensor:
        """Loss, metrics row (every log_every epochs, before the update), zero_grad, backward.
        Adam calls it once per step, L-BFGS as often as its line search needs."""
        member_loss = self.member_losses(batch, epoch)
        penalty = self.regularizer.penalty(self.model) if self.regularizer.has_penalty else None
        logged_already = self.member_loss_epoch == epoch  # L-BFGS: the row holds its first evaluation
        self.__dict__.update(member_loss=member_loss.detach(), member_loss_epoch=epoch)  # not nn.Module's setattr
        if not logged_already and (epoch % self.log_every == 0 or epoch == self.trainer.max_epochs - 1):
            self.write_row(epoch, member_loss, penalty)
        total = (member_loss if penalty is None else member_loss + penalty).sum()
        optimizer.zero_grad()
        if self.lightning_steps:
            self.manual_backward(total)
        else:
            total.backward()
        return total.detach()

    def member_losses(self, batch: dict[str, torch.Tensor], epoch: int) -> torch.Tensor:
        """Each member's training loss (K,); at the first step also the references a blown-up
        member is judged against: the initial loss and the zero function's loss."""
        first = epoch == 0 and bool(torch.isnan(self.initial_loss).all())
        if first:
            with self.model.zero_output():
                self.zero_output_loss.copy_(self.task.loss(self.model, batch).detach())
        member_loss = self.task.loss(self.model, batch)
        if first:
            self.initial_loss.copy_(member_loss.detach())
        return member_loss

    def row(self, member_loss: torch.Tensor, penalty: torch.Tensor | None) -> dict[str, float]:
        """A metrics row: train/loss, the penalty and the task's monitors, each as
        mean/std/min/max over members."""
        values = {"train/loss": member_loss}
        if penalty is not None:
            values["train/penalty"] = penalty
        values.update(self.task.monitor(self.model))
        return {f"{name}/{k}": v for name, member_values in values.items()
                for k, v in finite_stats(member_values.detach().float()).items()}

    def loss_history(self) -> dict:
        """{"epochs": [logged epochs], "members": [[loss at each logged epoch] per member]}, None
        where a loss was not finite (summary.json's `loss_history`)."""
        size = self.model.size
        members = [[v if math.isfinite(v) else None for v in (row[k] for row in self.logged_losses)]
                   for k in range(size)]
        return {"epochs": list(self.logged_epochs), "members": members}

    def write_row(self, epoch: int, member_loss: torch.Tensor, penalty: torch.Tensor | None) -> None:
        """The row at `epoch` (its step), straight to the loggers: Lightning's own logging keeps
        one value per key per Lightning step, and a chunk holds many epochs."""
        row = {key: float(v) for key, v in self.row(member_loss, penalty).items()}
        row["epoch"] = epoch
        self.logged_epochs.append(epoch)
        self.logged_losses.append(member_loss.detach().double().cpu().tolist())
        for logger in self.loggers:
            logger.log_metrics(row, step=epoch)


class EveryEpochs(L.Callback):
    """A callback due every `every` epochs: a training chunk ends at each multiple."""

    def __init__(self, every: int):
        self.every = every

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
        self.every = every

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
    (runner.results.atomic_path) after the loggers flush, so metrics.csv covers every step it
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


def progress(kind: str, every: int) -> ProgressPrinter | EpochBar:
    """The progress callback of `progress=`: log lines (`log`) or a terminal bar (`bar`), every
    `every` epochs."""
    if kind == "bar":
        return EpochBar(every)
    if kind == "log":
        return ProgressPrinter(every)
    raise ValueError(f"progress={kind!r} is invalid: must be one of log, bar")


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
