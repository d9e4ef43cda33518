"""Paper A (Tsvetkova 2020): learn y = x^power on a training range, look far outside it.

The claim is about shape: outside the data the activation imposes its own structure (ReLU
continues as a line, tanh saturates to a constant, sin oscillates). The tail metrics make
that checkable from numbers: on the far tail (the outer half of each extrapolation side)
`tail_line_residual` is the RMS residual of a straight-line fit, `tail_rel_range` the tail's
range (both averaged over the two sides); `extrap_turning_points` counts slope sign changes
over everything beyond the data, both sides together (ReLU: 0). Residual and range are
relative to the range of the target on the training interval.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from runner import checks
from runner.nets.mlp import EnsembleMLP
from runner.results.files import pyplot, save_figure
from runner.tasks.base import RegressionTask, grid


@dataclass(frozen=True)
class Shape:
    """An extrapolation shape as a rule on one member's tail metric (`holds` takes an array)."""

    name: str
    metric: str
    rule: str
    holds: Callable[[np.ndarray], np.ndarray]


# What the tail metrics say of a member's shape outside the data: the rules of Paper A's claims
# A1-A3 (runner.papers.tsvetkova) and of the screen's extrapolation panel (runner.screen).
SHAPES = (Shape("linear", "tail_line_residual", "tail_line_residual < 1% of the target's in-range span",
                lambda v: v < 0.01),
          Shape("saturating", "tail_rel_range", "tail_rel_range < 0.25 of the in-range span", lambda v: v < 0.25),
          Shape("oscillating", "extrap_turning_points", "≥ 2 turning points beyond the data", lambda v: v >= 2))
SHAPE = {shape.name: shape for shape in SHAPES}

# One shape per member: the rules overlap (a flat tail is a line too, a small wiggle has a small
# range), so a member takes the first of these whose rule it meets: oscillating, then saturating
# (a flat line says more as saturating), then linear; else none of them.
PRECEDENCE = ("oscillating", "saturating", "linear")
NO_SHAPE = "none"


def member_shapes(metrics: dict[str, np.ndarray]) -> np.ndarray:
    """Each member's one shape (PRECEDENCE) from its tail metrics (`metrics`: SHAPES' metric name ->
    one value per member); NaN where the member has no value (it failed to train)."""
    n = len(next(iter(metrics.values())))
    shapes = np.full(n, NO_SHAPE, dtype=object)
    undecided = np.ones(n, dtype=bool)
    for name in PRECEDENCE:
        values = np.asarray(metrics[SHAPE[name].metric], dtype=float)
        with np.errstate(invalid="ignore"):
            meets = undecided & np.isfinite(values) & SHAPE[name].holds(values)
        shapes[meets], undecided = name, undecided & ~meets
    missing = ~np.all([np.isfinite(np.asarray(metrics[s.metric], dtype=float)) for s in SHAPES], axis=0)
    shapes[missing] = np.nan
    return shapes


class PowerExtrapolation(RegressionTask):
    """Regress y = x^power on `train_range`; evaluate on the wider `eval_range`."""

    def __init__(self, name: str, power: int, train_range: tuple[float, float], n_train: int,
                 eval_range: tuple[float, float], n_eval: int, normalize: bool):
        self.name, self.power = name, checks.positive_int("power", power)
        self.train_range, self.eval_range = checks.interval("train_range", train_range), checks.interval("eval_range", eval_range)
        x = grid(*self.train_range, checks.positive_int("n_train", n_train))
        super().__init__(x, x**power, checks.boolean("normalize", normalize))
        self.x_eval = grid(*self.eval_range, checks.positive_int("n_eval", n_eval))
        self.y_eval = self.x_eval**power
        lo, hi = self.train_range
        xe = self.x_eval[:, 0]
        self.inside = (xe >= lo) & (xe <= hi)
        left_cut = self.eval_range[0] + (lo - self.eval_range[0]) / 2
        right_cut = hi + (self.eval_range[1] - hi) / 2
        self.tails = [xe <= left_cut, xe >= right_cut]
        self.tails = [t for t in self.tails if int(t.sum()) >= 3]
        self.outside_sides = [t for t in (xe < lo, xe > hi) if int(t.sum()) >= 3]

    def evaluate(self, model: EnsembleMLP) -> dict[str, torch.Tensor]:
        with torch.no_grad():
            train_pred = self.predict(model, self.x_train)
            pred = self.predict(model, self.x_eval).cpu()
        y_in = self.y_eval[self.inside]
        in_range_span = (y_in.max() - y_in.min()).clamp_min(1e-12)
        metrics = {
            "train_mse": self.mse(train_pred, self.y_train).cpu(),
            "test_mse": self.mse(pred[:, self.inside], y_in),
            "extrap_mse": self.mse(pred[:, ~self.inside], self.y_eval[~self.inside]),
        }
        metrics["in_range_rel_rmse"] = metrics["test_mse"].sqrt() / y_in.std()
        metrics.update(self._tail_shape(pred[..., 0], in_range_span))
        return metrics

    def _tail_shape(self, pred: torch.Tensor, span: torch.Tensor) -> dict[str, torch.Tensor]:
        """Straight-line residual and relative range on each far tail; turning points beyond the data."""
        finite = torch.isfinite(pred).all(1)  # diverged members get NaN, not a crashed lstsq
        pred = torch.where(finite[:, None], pred, torch.zeros_like(pred))
        residual, rel_range = [], []
        xe = self.x_eval[:, 0].double()
        for tail in self.tails:
            x, y = xe[tail], pred[:, tail].double()  # (n,), (K, n)
            design = torch.stack([x, torch.ones_like(x)], dim=1)
            coef = torch.linalg.lstsq(design.expand(len(y), -1, -1), y.unsqueeze(2)).solution
            fit = (design @ coef).squeeze(2)
            residual.append((y - fit).pow(2).mean(1).sqrt() / span)
            rel_range.append((y.max(1).values - y.min(1).values) / span)
        turns = torch.zeros(len(pred), dtype=torch.float64)
        for side in self.outside_sides:
            slope = torch.diff(pred[:, side].double(), dim=1)
            sign = torch.sign(slope) * (slope.abs() > 1e-6 * span)  # ignore numerically flat steps
            turns += torch.stack([(s[s != 0][1:] != s[s != 0][:-1]).sum() for s in sign])
        shape = {"tail_line_residual": torch.stack(residual).mean(0),
                 "tail_rel_range": torch.stack(rel_range).mean(0), "extrap_turning_points": turns}
        return {k: v.float().masked_fill(~finite, float("nan")) for k, v in shape.items()}

    def save_outputs(self, model: EnsembleMLP, run_dir: Path, label: str) -> None:
        with torch.no_grad():
            pred = self.predict(model, self.x_eval).cpu()
        self.save_predictions(run_dir / "predictions.npz", self.x_eval, self.y_eval, pred)
        plot_extrapolation(self.x_eval[:, 0], self.y_eval[:, 0], pred[..., 0], self.train_range,
                           f"{label}: y = x^{self.power}", run_dir / "plots" / "extrapolation.png")


def plot_extrapolation(x, y_true, y_pred, train_range, title: str, path: Path) -> None:
    """Target, every member (thin) and the ensemble mean on the evaluation range (Figs. 1-3)."""
    plt = pyplot()

    fig, ax = plt.subplots(figsize=(6, 4))
    ax.axvspan(*train_range, color="0.9", label="training range")
    for member in y_pred:
        ax.plot(x, member, color="C0", lw=0.6, alpha=0.35)
    ax.plot(x, y_pred.mean(0), color="C0", lw=1.8, label=f"ensemble mean (K={len(y_pred)})")
    ax.plot(x, y_true, "k--", lw=1.2, label="target")
    ax.set(xlabel="x", ylabel="y", title=title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    save_figure(fig, path)
