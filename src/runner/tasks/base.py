"""The task interface every experiment implements, and the shared regression machinery."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from runner.nets.mlp import EnsembleMLP
from runner.results.files import save_npz_atomic
from runner.theory.activations import Activation
from runner.theory.init import Init


@dataclass(frozen=True)
class Networks:
    """The networks of a run as a measuring task draws them: the activation, the resolved init,
    the architecture, and the ensemble's size and random streams (member k draws from stream
    (seed, member_offset + k), as a trained ensemble's member k does)."""

    activation: Activation
    init: Init
    depth: int
    width: int
    size: int
    seed: int
    member_offset: int = 0


class Task:
    """One experiment: data, per-member loss, metrics and artifacts.

    Trained tasks implement `train_batch`, `loss`, `evaluate` and `save_outputs`; tasks that
    train nothing (theory measurements) set `trains = False` and implement `measure` instead.
    All metrics are tensors of shape (K,): one value per ensemble member. A task of your own is a
    subclass in your own module, named by `_target_` in your own conf/task/*.yaml; its constructor
    checks its arguments (runner.checks) and takes a `name` (docs/extending.md).
    """

    name: str = "task"
    in_dim: int = 1
    out_dim: int = 1
    trains: bool = True

    def train_batch(self) -> dict[str, torch.Tensor]:
        """The full training batch (full-batch training, as in both papers)."""
        raise NotImplementedError

    def loss(self, model: EnsembleMLP, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Training loss per member, shape (K,)."""
        raise NotImplementedError

    def network_inputs(self) -> torch.Tensor | None:
        """The (N, in_dim) inputs the network sees in training, as fed to it (after any scaling),
        for the kernel forecast before training (runner.theory.forecast); None: unit-scale inputs."""
        batch = self.train_batch() if self.trains else {}
        return batch.get("x")

    def target_moment(self) -> float | None:
        """The targets' mean square in the network's units: the loss of predicting 0, which
        `init.C_W=auto` holds the network's starting output against (runner.theory.schemes); None
        where the task has no such targets (classification, tasks that train nothing)."""
        return None

    def cost(self, width: int) -> float:
        """The work of one step per member and layer, relative to other runs (sweep estimates):
        network inputs x width²."""
        inputs = self.network_inputs()
        return float(len(inputs) if inputs is not None else 1) * width**2

    def on_epoch_start(self, epoch: int) -> None:
        """Called before each training epoch (e.g. to resample PINN collocation points)."""

    def compiled_step_refusal(self) -> str | None:
        """Why `loss` cannot be traced into one compiled optimizer step (runner.training.compiled),
        or None: it is a function of the parameters and the batch alone."""
        return None

    def monitor(self, model: EnsembleMLP) -> dict[str, torch.Tensor]:
        """Extra metrics logged periodically during training (e.g. a PINN's error)."""
        return {}

    def evaluate(self, model: EnsembleMLP) -> dict[str, torch.Tensor]:
        """Final metrics per member."""
        raise NotImplementedError

    def save_outputs(self, model: EnsembleMLP, run_dir: Path, label: str) -> None:
        """Write predictions and plots into the run directory."""

    def measure(self, networks: Networks, run_dir: Path) -> dict[str, torch.Tensor]:
        """Entry point for tasks with trains = False: measure `networks` (the run's activation,
        resolved init, architecture and ensemble), write outputs into run_dir, return final metrics."""
        raise NotImplementedError


def grid(low: float, high: float, n: int) -> torch.Tensor:
    """n evenly spaced points on [low, high] as a column (n, 1)."""
    return torch.linspace(low, high, n).unsqueeze(1)


class RegressionTask(Task):
    """Supervised regression with optional standardization of inputs and targets.

    The network sees standardized x and predicts standardized y (statistics of the training
    set); `predict` returns original units, which is what every metric and plot uses.
    """

    def __init__(self, x_train: torch.Tensor, y_train: torch.Tensor, normalize: bool = True):
        self.x_train, self.y_train = x_train, y_train
        self.in_dim, self.out_dim = x_train.shape[1], y_train.shape[1]
        if normalize:
            self.x_mean, self.x_std = x_train.mean(0), x_train.std(0)
            self.y_mean, self.y_std = y_train.mean(0), y_train.std(0)
        else:
            self.x_mean, self.x_std = torch.zeros(self.in_dim), torch.ones(self.in_dim)
            self.y_mean, self.y_std = torch.zeros(self.out_dim), torch.ones(self.out_dim)

    def train_batch(self) -> dict[str, torch.Tensor]:
        return {"x": (self.x_train - self.x_mean) / self.x_std,
                "y": (self.y_train - self.y_mean) / self.y_std}

    def loss(self, model: EnsembleMLP, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return (model(batch["x"]) - batch["y"]).pow(2).mean(dim=(1, 2))

    def target_moment(self) -> float:
        """Mean of y² over the training targets as the network sees them (standardized when `normalize`)."""
        return float(self.train_batch()["y"].double().pow(2).mean())

    def predict(self, model: EnsembleMLP, x: torch.Tensor) -> torch.Tensor:
        """Predictions in original units, (K, N, d_out), for x in original units (N, d_in)."""
        device = model.weights[0].device
        xn = ((x - self.x_mean) / self.x_std).to(device)
        return model(xn) * self.y_std.to(device) + self.y_mean.to(device)

    @staticmethod
    def mse(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Mean squared error per member: pred (K, N, d), target (N, d) -> (K,)."""
        return (pred - target.to(pred.device)).pow(2).mean(dim=(1, 2))

    def save_predictions(self, path: Path, x: torch.Tensor, y_true: torch.Tensor,
                         y_pred: torch.Tensor) -> None:
        """predictions.npz: x (N, d_in), y_true (N, d_out), y_pred (K, N, d_out)."""
        save_npz_atomic(path, x=x.cpu().numpy(), y_true=y_true.cpu().numpy(),
                        y_pred=y_pred.detach().cpu().numpy().astype(np.float32))
