"""The LightningModule that trains an ensemble on a task: chunks of full-batch optimizer steps,
metrics rows and the references a member's fate is judged against."""

from __future__ import annotations

import logging
import math
import time
from typing import Callable

import lightning as L
import torch
from torch.utils.data import DataLoader, Dataset

from runner.nets.mlp import EnsembleMLP
from runner.results.summary import member_stats
from runner.tasks.base import Task
from runner.training.compiled import StepCompiler
from runner.training.regularizers import NoRegularizer

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
    """ROW_STATS of a per-member tensor over its finite members (runner.results.summary.member_stats),
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

    `compile` (auto, true, false): where it says so, each step is one compiled function of forward,
    loss, backward, penalty and Adam (runner.training.compiled), writing the same parameters and
    optimizer state as the eager step; a fresh run's first step, which records the references a
    member's fate is judged against, is always eager.
    """

    def __init__(self, model: EnsembleMLP, task: Task, regularizer: NoRegularizer,
                 optimizer: Callable, log_every: int, compile: bool | str = False):
        super().__init__()
        self.automatic_optimization = False
        self.model = model
        self.regularizer = regularizer
        regularizer.setup(model)
        self.task = task
        self.optimizer_factory = optimizer
        self.log_every = log_every
        self.compile = compile
        self.compiler: StepCompiler | None = None  # made at the start of training, when the optimizer exists
        self.member_loss = torch.full((model.size,), float("nan"))
        self.member_loss_epoch = -1  # the epoch member_loss belongs to
        # the references a blown-up member is judged against (runner.results.summary.member_status);
        # buffers, so a resumed run keeps the values of its first step
        self.register_buffer("initial_loss", torch.full((model.size,), float("nan"), dtype=torch.float64))
        self.register_buffer("zero_output_loss", torch.full((model.size,), float("nan"), dtype=torch.float64))
        # every member's training loss at each logged epoch (the metrics rows), for the
        # convergence rule (runner.results.summary.member_convergence); kept in checkpoints
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
        optimizer = self.optimizers()
        self.compiler = StepCompiler(self.compile, self.model, self.task, self.regularizer,
                                     getattr(optimizer, "optimizer", optimizer), str(self.trainer.precision),
                                     self.lightning_steps)
        self.compiler.start(self.global_step, self.trainer.max_epochs, fresh=bool(torch.isnan(self.initial_loss).all()))

    def on_train_end(self) -> None:
        if self.compiler is not None:
            self.compiler.finish(self.global_step)

    def compile_record(self) -> dict | None:
        """Whether the steps were compiled, from which epoch and why, with the numbers behind it
        (summary.json's `compile`); None before training."""
        return self.compiler.record() if self.compiler is not None else None

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
        compiler, arguments = self.compiler, None
        for epoch in range(self.global_step, self.chunk_end(self.global_step)):
            self.task.on_epoch_start(epoch)
            compiler.before_step(epoch, trainer.max_epochs)
            if compiler.active:
                arguments = arguments or compiler.arguments()  # the tensors the compiled step updates in place
            if not (compiler.active and self.compiled_step(batch, epoch, arguments)):
                start = time.perf_counter()
                step(lambda: self.closure(optimizer, batch, epoch))
                compiler.eager_done(time.perf_counter() - start)
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
        if not logged_already and self.row_due(epoch):
            self.write_row(epoch, member_loss, penalty)
        total = (member_loss if penalty is None else member_loss + penalty).sum()
        optimizer.zero_grad()
        if self.lightning_steps:
            self.manual_backward(total)
        else:
            total.backward()
        return total.detach()

    def compiled_step(self, batch: dict[str, torch.Tensor], epoch: int, arguments: tuple) -> bool:
        """One compiled optimizer step, counted in trainer.global_step, with the metrics row where
        due (the task's monitors read before the update, as in the eager step); False where
        inductor could not build the step (nothing was changed: the caller steps eagerly)."""
        monitors = self.task.monitor(self.model) if self.row_due(epoch) else None
        out = self.compiler.step(batch, arguments)
        if out is None:
            return False
        progress = self.trainer.fit_loop.epoch_loop.manual_optimization.optim_step_progress
        progress.increment_ready()
        progress.increment_completed()
        member_loss, penalty = out
        self.__dict__.update(member_loss=member_loss, member_loss_epoch=epoch)
        if monitors is not None:
            self.write_row(epoch, member_loss, penalty if self.regularizer.has_penalty else None, monitors)
        return True

    def row_due(self, epoch: int) -> bool:
        """Whether `epoch` has a metrics row: every log_every epochs and the last."""
        return epoch % self.log_every == 0 or epoch == self.trainer.max_epochs - 1

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

    def row(self, member_loss: torch.Tensor, penalty: torch.Tensor | None,
            monitors: dict[str, torch.Tensor] | None = None) -> dict[str, float]:
        """A metrics row: train/loss, the penalty and the task's monitors (read now unless given),
        each as mean/std/min/max over members."""
        values = {"train/loss": member_loss}
        if penalty is not None:
            values["train/penalty"] = penalty
        values.update(self.task.monitor(self.model) if monitors is None else monitors)
        return {f"{name}/{k}": v for name, member_values in values.items()
                for k, v in finite_stats(member_values.detach().float()).items()}

    def loss_history(self) -> dict:
        """{"epochs": [logged epochs], "members": [[loss at each logged epoch] per member]}, None
        where a loss was not finite (summary.json's `loss_history`)."""
        size = self.model.size
        members = [[v if math.isfinite(v) else None for v in (row[k] for row in self.logged_losses)]
                   for k in range(size)]
        return {"epochs": list(self.logged_epochs), "members": members}

    def write_row(self, epoch: int, member_loss: torch.Tensor, penalty: torch.Tensor | None,
                  monitors: dict[str, torch.Tensor] | None = None) -> None:
        """The row at `epoch` (its step), straight to the loggers: Lightning's own logging keeps
        one value per key per Lightning step, and a chunk holds many epochs."""
        row = {key: float(v) for key, v in self.row(member_loss, penalty, monitors).items()}
        row["epoch"] = epoch
        self.logged_epochs.append(epoch)
        self.logged_losses.append(member_loss.detach().double().cpu().tolist())
        for logger in self.loggers:
            logger.log_metrics(row, step=epoch)


