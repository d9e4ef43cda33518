"""Figures of a PDE's PINN: solution maps, slices and training curves."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from runner.results.files import pyplot, save_figure


def _orient(names: tuple[str, ...], axes: list[np.ndarray], u: np.ndarray, horizontal: int):
    """(horizontal name, its axis), (vertical name, its axis), u as (vertical, horizontal): the
    first two variables of u (n_0, n_1, ...), the others at their middle grid value."""
    u = u[(slice(None), slice(None), *(len(a) // 2 for a in axes[2:]))]
    h, v = horizontal, 1 - horizontal
    return (names[h], axes[h]), (names[v], axes[v]), (u if h == 1 else u.T)


def plot_solution(names: tuple[str, ...], axes: list[np.ndarray], u_pred: np.ndarray, u_exact: np.ndarray,
                  title: str, path: Path, horizontal: int = 1) -> None:
    """Predicted, exact and |error|: heat maps over the first two variables (`horizontal` one
    along x; u arrays on the grid of `axes`), or curves over a single variable."""
    plt = pyplot()
    if len(names) == 1:
        fig, axs = plt.subplots(2, 1, figsize=(7, 5.5), sharex=True)
        axs[0].plot(axes[0], u_exact, "b-", lw=2, label="exact")
        axs[0].plot(axes[0], u_pred, "r--", lw=2, label="predicted")
        axs[0].set(ylabel=f"u({names[0]})")
        axs[0].legend(fontsize=8)
        axs[1].plot(axes[0], np.abs(u_pred - u_exact), "k-")
        axs[1].set(xlabel=names[0], ylabel="|predicted - exact|", yscale="log")
    else:
        (h, h_axis), (v, v_axis), pred = _orient(names, axes, u_pred, horizontal)
        exact = _orient(names, axes, u_exact, horizontal)[2]
        fig, axs = plt.subplots(3, 1, figsize=(7, 7.5), sharex=True)
        extent = (h_axis[0], h_axis[-1], v_axis[0], v_axis[-1])
        vmax = np.abs(exact).max()
        for ax, data, name, cmap, lim in (
                (axs[0], pred, "predicted", "rainbow", (-vmax, vmax)),
                (axs[1], exact, "exact", "rainbow", (-vmax, vmax)),
                (axs[2], np.abs(pred - exact), "|predicted - exact|", "viridis", (None, None))):
            im = ax.imshow(data, extent=extent, origin="lower", aspect="auto", cmap=cmap,
                           vmin=lim[0], vmax=lim[1], interpolation="nearest")
            fig.colorbar(im, ax=ax)
            ax.set(ylabel=v, title=f"{name} u({', '.join(names)})")
        axs[-1].set_xlabel(h)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    save_figure(fig, path)


def plot_slices(names: tuple[str, ...], axes: list[np.ndarray], u_pred: np.ndarray, u_exact: np.ndarray,
                title: str, path: Path, horizontal: int, at: list[float]) -> None:
    """u against the vertical variable at the grid values of the horizontal one nearest to `at`,
    predicted vs exact."""
    plt = pyplot()
    (h, h_axis), (v, v_axis), exact = _orient(names, axes, u_exact, horizontal)
    pred = _orient(names, axes, u_pred, horizontal)[2]
    fig, axs = plt.subplots(1, len(at), figsize=(4 * len(at), 3.4), sharey=True)
    for ax, when in zip(np.atleast_1d(axs), at):
        j = int(np.abs(h_axis - when).argmin())
        ax.plot(v_axis, exact[:, j], "b-", lw=2, label="exact")
        ax.plot(v_axis, pred[:, j], "r--", lw=2, label="predicted")
        ax.set(xlabel=v, title=f"{h} = {h_axis[j]:.3g}")
    np.atleast_1d(axs)[0].set_ylabel("u")
    np.atleast_1d(axs)[0].legend(fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    save_figure(fig, path)


def plot_history(history: list[dict], label: str, path: Path) -> None:
    """Loss terms and rel_l2 against epoch: member mean (line) and min-max band."""
    plt = pyplot()
    epochs = np.array([row["epoch"] for row in history])
    names = [k for k in history[0] if k != "epoch"]
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    for name in names:
        vals = np.stack([np.asarray(row[name], dtype=float) for row in history if name in row])
        vals[~np.isfinite(vals) | (vals <= 0)] = np.nan  # diverged members leave gaps
        if np.isnan(vals).all():
            continue
        ax = axes[1] if name == "rel_l2" else axes[0]
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN rows
            mean, low, high = np.nanmean(vals, 1), np.nanmin(vals, 1), np.nanmax(vals, 1)
        line, = ax.plot(epochs[:len(vals)], mean, label=name.removeprefix("train/"))
        ax.fill_between(epochs[:len(vals)], low, high, color=line.get_color(), alpha=0.2)
    for ax, title in zip(axes, ("training loss terms", "relative L2 error")):
        ax.set(xlabel="epoch", title=title, yscale="log" if ax.lines else "linear")
    if axes[0].lines:
        axes[0].legend(fontsize=8)
    fig.suptitle(label, fontsize=10)
    fig.tight_layout()
    save_figure(fig, path)
