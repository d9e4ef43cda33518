"""Figures of the Burgers PINN: solution maps, time slices, training curves, and a sweep's
rel_l2 per activation (written by a Hydra callback at the end of a multirun, or by
`python -m runner.tasks.burgers_plots <sweep dir>`)."""

from __future__ import annotations

import json
import logging
import sys
import warnings
from pathlib import Path

import numpy as np
from hydra.experimental.callback import Callback

from runner.results import save_figure, write_json_atomic

log = logging.getLogger("runner")
SLICE_TIMES = (0.25, 0.5, 0.75)


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_solution(x: np.ndarray, t: np.ndarray, u_pred: np.ndarray, u_exact: np.ndarray, title: str,
                  path: Path) -> None:
    """Heat maps of u(t, x): predicted, exact and |error| (u arrays are (nx, nt))."""
    plt = _pyplot()
    fig, axes = plt.subplots(3, 1, figsize=(7, 7.5), sharex=True)
    extent = (t[0], t[-1], x[0], x[-1])
    vmax = np.abs(u_exact).max()
    for ax, data, name, cmap, lim in (
            (axes[0], u_pred, "predicted u(t, x)", "rainbow", (-vmax, vmax)),
            (axes[1], u_exact, "exact u(t, x)", "rainbow", (-vmax, vmax)),
            (axes[2], np.abs(u_pred - u_exact), "|predicted - exact|", "viridis", (None, None))):
        im = ax.imshow(data, extent=extent, origin="lower", aspect="auto", cmap=cmap,
                       vmin=lim[0], vmax=lim[1], interpolation="nearest")
        fig.colorbar(im, ax=ax)
        ax.set(ylabel="x", title=name)
    axes[-1].set_xlabel("t")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    save_figure(fig, path)


def plot_slices(x: np.ndarray, t: np.ndarray, u_pred: np.ndarray, u_exact: np.ndarray, title: str,
                path: Path, times: tuple[float, ...] = SLICE_TIMES) -> None:
    """u(t, x) against x at the grid times nearest to `times`, predicted vs exact."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(times), figsize=(4 * len(times), 3.4), sharey=True)
    for ax, when in zip(np.atleast_1d(axes), times):
        j = int(np.abs(t - when).argmin())
        ax.plot(x, u_exact[:, j], "b-", lw=2, label="exact")
        ax.plot(x, u_pred[:, j], "r--", lw=2, label="predicted")
        ax.set(xlabel="x", title=f"t = {t[j]:.2f}")
    np.atleast_1d(axes)[0].set_ylabel("u(t, x)")
    np.atleast_1d(axes)[0].legend(fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    save_figure(fig, path)


def plot_history(history: list[dict], label: str, path: Path) -> None:
    """Loss terms and rel_l2 against epoch: member mean (line) and min-max band."""
    plt = _pyplot()
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
    """Collect `metric` of every member of every completed run below `sweep_dir`, per activation;
    plot them side by side (plots/<metric>_by_activation.png) and write the numbers as JSON."""
    sweep_dir = Path(sweep_dir)
    by_activation: dict[str, list[float]] = {}
    for path in sorted(sweep_dir.glob("**/summary.json")):
        summary = json.loads(path.read_text())
        stats = summary.get("metrics", {}).get(metric)
        if stats is None:
            continue
        values = [v for v in stats["members"] if v is not None]  # None: a diverged member
        by_activation.setdefault(summary["activation"], []).extend(values)
    if not by_activation:
        return None
    names = sorted(by_activation, key=lambda a: np.median(by_activation[a]) if by_activation[a] else np.inf)
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(1.4 * len(names) + 2, 3.8))
    for i, name in enumerate(names):
        vals = by_activation[name]
        ax.scatter(np.full(len(vals), i), vals, color=f"C{i}", alpha=0.7)
        if vals:
            ax.hlines(np.median(vals), i - 0.3, i + 0.3, color=f"C{i}", lw=2)
    ax.set_xticks(range(len(names)), names)
    ax.set(yscale="log", ylabel=metric, title=f"{metric} per activation (line: median)")
    fig.tight_layout()
    save_figure(fig, sweep_dir / "plots" / f"{metric}_by_activation.png")
    write_json_atomic(sweep_dir / f"{metric}_by_activation.json", by_activation)
    return by_activation


class CompareActivations(Callback):
    """Hydra callback: after a multirun, plot `metric` per activation in the sweep directory."""

    def __init__(self, metric: str = "rel_l2"):
        self.metric = metric

    def on_multirun_end(self, config, **kwargs) -> None:
        result = compare_sweep(Path(config.hydra.sweep.dir), self.metric)
        if result:
            for name, vals in sorted(result.items()):
                if vals:
                    log.info("%s %-10s median %.3e over %d members", self.metric, name, np.median(vals), len(vals))


if __name__ == "__main__":
    if len(sys.argv) not in (2, 3):
        sys.exit("usage: python -m runner.tasks.burgers_plots SWEEP_DIR [METRIC]")
    print(json.dumps(compare_sweep(Path(sys.argv[1]), *sys.argv[2:]), indent=1))
