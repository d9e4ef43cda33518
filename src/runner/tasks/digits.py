"""Image classification on scikit-learn's 8x8 digits (1797 images, 10 classes), as a stand-in
for the MNIST/CIFAR-10 experiments of Paper B's later version, which cannot be downloaded here.

Full-batch cross-entropy per member on a fixed stratified split; pixels scaled to [0, 1] and
then standardized with the training set's mean and std.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from runner import checks
from runner.nets.mlp import EnsembleMLP
from runner.results.files import pyplot, save_figure
from runner.tasks.base import Task


class Digits(Task):
    """MLP classifier on flattened 8x8 digit images; accuracy and cross-entropy per member."""

    def __init__(self, name: str, test_fraction: float, split_seed: int):
        # startup: scikit-learn loads only where this task is built
        from sklearn.datasets import load_digits
        from sklearn.model_selection import train_test_split

        checks.between("test_fraction", test_fraction, 0, 1, "()")
        self.name, self.in_dim, self.out_dim = name, 64, 10
        x, y = load_digits(return_X_y=True)
        x_tr, x_te, y_tr, y_te = train_test_split(x / 16.0, y, test_size=test_fraction,
                                                  random_state=split_seed, stratify=y)
        # pixels (almost) constant in the training images are centred, not scaled up
        mean, std = x_tr.mean(0), x_tr.std(0)
        std = np.where(std > 0.05, std, 1.0)
        as_x = lambda a: torch.tensor((a - mean) / std, dtype=torch.float32)
        self.x_train, self.y_train = as_x(x_tr), torch.tensor(y_tr)
        self.x_test, self.y_test = as_x(x_te), torch.tensor(y_te)

    def train_batch(self) -> dict[str, torch.Tensor]:
        return {"x": self.x_train, "y": self.y_train}

    @staticmethod
    def cross_entropy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Mean cross-entropy per member: logits (K, N, 10), labels (N,) -> (K,)."""
        k, n, c = logits.shape
        return F.cross_entropy(logits.reshape(k * n, c), labels.to(logits.device).repeat(k),
                               reduction="none").view(k, n).mean(1)

    def loss(self, model: EnsembleMLP, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.cross_entropy(model(batch["x"]), batch["y"])

    def _logits(self, model: EnsembleMLP, x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return model(x.to(model.weights[0].device)).float().cpu()

    def monitor(self, model: EnsembleMLP) -> dict[str, torch.Tensor]:
        logits = self._logits(model, self.x_test)
        return {"test_acc": (logits.argmax(-1) == self.y_test).float().mean(1)}

    def evaluate(self, model: EnsembleMLP) -> dict[str, torch.Tensor]:
        train, test = self._logits(model, self.x_train), self._logits(model, self.x_test)
        return {"train_acc": (train.argmax(-1) == self.y_train).float().mean(1),
                "test_acc": (test.argmax(-1) == self.y_test).float().mean(1),
                "train_loss": self.cross_entropy(train, self.y_train),
                "test_loss": self.cross_entropy(test, self.y_test)}

    def save_outputs(self, model: EnsembleMLP, run_dir: Path, label: str) -> None:
        """plots/confusion.png: confusion matrix of the ensemble's averaged probabilities."""
        plt = pyplot()

        probs = self._logits(model, self.x_test).softmax(-1)
        probs = torch.nan_to_num(probs).mean(0)  # a diverged member adds nothing
        confusion = np.zeros((10, 10), dtype=int)
        np.add.at(confusion, (self.y_test.numpy(), probs.argmax(-1).numpy()), 1)
        fig, ax = plt.subplots(figsize=(4.8, 4.2))
        ax.imshow(confusion, cmap="Blues")
        for (i, j), v in np.ndenumerate(confusion):
            if v:
                ax.text(j, i, str(v), ha="center", va="center", fontsize=7)
        accuracy = np.trace(confusion) / confusion.sum()
        ax.set(xlabel="predicted", ylabel="true", xticks=range(10), yticks=range(10),
               title=f"{label}: ensemble-mean test accuracy {accuracy:.3f}")
        fig.tight_layout()
        save_figure(fig, run_dir / "plots" / "confusion.png")
        plt.close(fig)
