"""Figures of a PDE's PINN: solution maps, slices, training curves, and a sweep's rel_l2 per
activation (written by a Hydra callback at the end of a multirun, or by
`python -m runner.tasks.pde_plots <sweep dir>`)."""

from __future__ import annotations

import json
import logging
import sys
import warnings
from pathlib import Path

import numpy as np
from hydra.experimental.callback import Callback

from runner.results.jobs import collect
from runner.results.summary import FINISHED, member_stats
from runner.results.files import pyplot, save_figure, write_json_atomic

log = logging.getLogger("runner")


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


def compare_sweep(sweep_dir: Path, metric: str = "rel_l2") -> dict[str, list[float]] | None:
    """Every ok member's `metric` (runner.results.jobs.Job.members: the members every table counts)
    of every run below `sweep_dir` that trained to the end, per activation; plot them side by side
    (plots/<metric>_by_activation.png) and write the numbers as JSON."""
    sweep_dir = Path(sweep_dir)
    by_activation: dict[str, list[float]] = {}
    for job in collect([sweep_dir]) if sweep_dir.is_dir() else []:
        if job.status not in FINISHED or metric not in job.summary.get("metrics", {}):
            continue
        values = [v for v in job.members(metric) if v is not None]
        by_activation.setdefault(job.summary["activation"], []).extend(values)
    if not by_activation:
        return None
    medians = {name: member_stats(vals)["median"] for name, vals in by_activation.items()}
    names = sorted(by_activation, key=lambda a: np.inf if medians[a] is None else medians[a])
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(1.4 * len(names) + 2, 3.8))
    for i, name in enumerate(names):
        vals = by_activation[name]
        ax.scatter(np.full(len(vals), i), vals, color=f"C{i}", alpha=0.7)
        if vals:
            ax.hlines(medians[name], i - 0.3, i + 0.3, color=f"C{i}", lw=2)
    ax.set_xticks(range(len(names)), names)
    ax.set(yscale="log", ylabel=metric, title=f"{metric} per activation (line: median)")
    fig.tight_layout()
    save_figure(fig, sweep_dir / "plots" / f"{metric}_by_activation.png")
    write_json_atomic(sweep_dir / f"{metric}_by_activation.json", by_activation)
    return by_activation


class CompareActivations(Callback):
    """Hydra callback: after a multirun, plot `metric` per activation in the sweep directory."""

    def __init__(self, metric: str):
        self.metric = metric

    def on_multirun_end(self, config, **kwargs) -> None:
        result = compare_sweep(Path(config.hydra.sweep.dir), self.metric)
        if result:
            for name, vals in sorted(result.items()):
                if vals:
                    log.info("%s %-10s median %.3e over %d members", self.metric, name,
                             member_stats(vals)["median"], len(vals))


if __name__ == "__main__":
    if len(sys.argv) not in (2, 3):
        sys.exit("usage: python -m runner.tasks.pde_plots SWEEP_DIR [METRIC]")
    print(json.dumps(compare_sweep(Path(sys.argv[1]), *sys.argv[2:]), indent=1))
