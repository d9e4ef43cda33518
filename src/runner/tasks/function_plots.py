"""Plots of fitted functions: prediction and derivative in 1D (Fig. 10), contours in 2D (Figs. 11-14)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from runner.results.files import pyplot, save_figure


def plot_fit_1d(x: torch.Tensor, y: torch.Tensor, dy: torch.Tensor, pred: torch.Tensor,
                dpred: torch.Tensor, title: str, path: Path) -> None:
    """Target and its derivative against every member (thin) and the member mean."""

    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for ax, truth, members, what in ((axes[0], y, pred, "f(x)"), (axes[1], dy, dpred, "f'(x)")):
        for member in members:
            ax.plot(x, member, color="C0", lw=0.6, alpha=0.35)
        ax.plot(x, members.mean(0), color="C0", lw=1.6, label=f"member mean (K={len(members)})")
        ax.plot(x, truth, "k--", lw=1.2, label="exact")
        ax.set(xlabel="x", ylabel=what)
        ax.legend(fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    save_figure(fig, path)


def plot_contours_2d(x: torch.Tensor, shape: tuple[int, int], y: torch.Tensor, dy: torch.Tensor,
                     pred: torch.Tensor, dpred: torch.Tensor, title: str, path: Path) -> None:
    """Target, prediction and error (top); gradient norms and their error (bottom), one member."""

    plt = pyplot()
    x1, x2 = (x[:, i].reshape(shape).numpy() for i in range(2))
    grid = lambda v: np.asarray(v).reshape(shape)  # noqa: E731
    gn, gn_pred = dy.norm(dim=1), dpred.norm(dim=1)
    panels = [("target f", grid(y), "viridis"), ("prediction", grid(pred), "viridis"),
              ("error (prediction - f)", grid(pred - y), "RdBu_r"),
              ("|grad f|", grid(gn), "magma"), ("|grad prediction|", grid(gn_pred), "magma"),
              ("gradient-norm error", grid(gn_pred - gn), "RdBu_r")]
    fig, axes = plt.subplots(2, 3, figsize=(13, 7.5))
    for ax, (name, values, cmap) in zip(axes.flat, panels):
        if cmap == "RdBu_r":  # errors: symmetric color scale around 0
            bound = float(np.abs(values).max()) or 1.0
            cs = ax.contourf(x1, x2, values, levels=21, cmap=cmap, vmin=-bound, vmax=bound)
        else:
            cs = ax.contourf(x1, x2, values, levels=21, cmap=cmap)
        fig.colorbar(cs, ax=ax)
        ax.set(title=name, xlabel="x1", ylabel="x2", aspect="equal")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    save_figure(fig, path)
