"""Phase diagram of initialization: over C_W x input scale K0 at one depth, the kernel's fate.

For every (C_W, K0) cell, with C_W on every layer (C_W_first = C_W) and C_b fixed:
- theory: the single-input kernel K(l) of runner.theory.kernels through `model.depth` hidden layers;
  the fate of K(L)/K(1) by the one rule of runner.theory.fate (`explodes` above `band`, or not
  finite; `vanishes` below 1/band; else `stable`; `band` defaults to its BAND, 10);
- measured: `ensemble.size` freshly drawn networks of `model.width` (runner.theory.measurements.sample_init)
  on an input with |x|²/n0 = K0; each member's last-layer kernel (mean z² over its neurons)
  gets the same rule, giving the fraction of members that explode, vanish or stay in band.

`agreement` is the share of cells away from the theory's boundary (|log K(L)/K(1)| farther than
`margin` from log band) where the measured majority fate is the theory's. Nothing trains.
`marks` places settings on the diagram (Paper B's, for MRePU), each with the theory's fate at
its own depth.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from runner import checks
from runner.results.files import pyplot, save_figure, write_csv
from runner.tasks.base import Networks, Task
from runner.theory import kernels
from runner.theory.activations import Activation
from runner.theory.fate import BAND, FATES, kernel_fate
from runner.theory.measurements import sample_init


class PhaseDiagram(Task):
    """Theory and measured fates of the kernel over a C_W x K0 grid at one depth."""

    trains = False
    in_dim = 2

    def __init__(self, name: str, C_W_range: tuple[float, float], n_C_W: int, K0_range: tuple[float, float],
                 n_K0: int, C_b: float, band: float | None, margin: float, marks: list | None):
        band = BAND if band is None else band
        if not (checks.is_real(band) and band > 1):
            raise checks.invalid("band", band, "a number > 1")
        self.name = name
        C_W_range, K0_range = checks.interval("C_W_range", C_W_range), checks.interval("K0_range", K0_range)
        checks.positive("C_W_range", C_W_range[0])
        checks.positive("K0_range", K0_range[0])
        self.C_W = np.geomspace(*C_W_range, checks.positive_int("n_C_W", n_C_W))
        self.K0 = np.geomspace(*K0_range, checks.positive_int("n_K0", n_K0))
        self.C_b, self.band, self.margin = checks.nonnegative("C_b", C_b), float(band), checks.nonnegative("margin", margin)
        self.marks = [dict(m) for m in marks or []]

    def theory_log_ratio(self, act: Activation, depth: int) -> np.ndarray:
        """log K(L)/K(1) over the grid, shape (n_C_W, n_K0)."""
        with np.errstate(all="ignore"):
            K = kernels.kernel_flow(act, self.C_b, self.C_W[:, None], self.K0[None, :], depth)
            return np.nan_to_num(np.log(K[..., -1] / K[..., 0]), nan=np.inf)

    def measured_fractions(self, act, depth: int, width: int, members: int, seed: int) -> np.ndarray:
        """Fraction of members per fate, shape (3, n_C_W, n_K0)."""
        x = torch.from_numpy(np.sqrt(self.K0))[:, None].expand(-1, self.in_dim)  # |x|²/n0 = K0
        out = np.zeros((3, len(self.C_W), len(self.K0)))
        for i, C_W in enumerate(self.C_W):
            stats = sample_init(act, x, depth, width, float(C_W), self.C_b, members, seed=seed)
            K1 = self.C_b + C_W * self.K0
            with np.errstate(all="ignore"):
                codes = kernel_fate(stats.kernel[:, -1, :] / K1, self.band)  # (members, n_K0)
            for f in range(3):
                out[f, i] = (codes == f).mean(0)
        return out

    def measure(self, networks: Networks, run_dir: Path) -> dict[str, torch.Tensor]:
        act, depth, width, members = networks.activation, networks.depth, networks.width, networks.size
        log_ratio = self.theory_log_ratio(act, depth)
        with np.errstate(over="ignore"):  # an exploded kernel: exp overflows to inf, which explodes
            theory_fate = kernel_fate(np.exp(log_ratio), self.band)
        measured = self.measured_fractions(act, depth, width, members, networks.seed)
        majority = measured.argmax(0)
        clear = np.abs(np.abs(log_ratio) - math.log(self.band)) > self.margin
        agreement = float((majority == theory_fate)[clear].mean()) if clear.any() else math.nan
        rows = [{"C_W": float(cw), "K0": float(k0), "theory_log_ratio": float(log_ratio[i, j]),
                 "theory_fate": FATES[theory_fate[i, j]],
                 **{f"measured_{f}": float(measured[n, i, j]) for n, f in enumerate(FATES)}}
                for i, cw in enumerate(self.C_W) for j, k0 in enumerate(self.K0)]
        write_csv(run_dir / "phase_diagram.csv", rows)
        marks = [self.mark_fate(act, m) for m in self.marks if m.get("activation", act.name) == act.name]
        self.plot(act, depth, width, members, log_ratio, measured, marks, run_dir / "plots" / "phase_diagram.png")
        metrics = {"agreement": agreement, "clear_cells": float(clear.sum()),
                   **{f"theory_share_{f}": float((theory_fate == n).mean()) for n, f in enumerate(FATES)},
                   **{f"measured_share_{f}": float(measured[n].mean()) for n, f in enumerate(FATES)}}
        for m in marks:
            metrics[f"mark/{m['label']}/log_ratio"] = m["log_ratio"]
        return {k: torch.tensor([v], dtype=torch.float64) for k, v in metrics.items()}

    def mark_fate(self, act, mark: dict) -> dict:
        """A marked setting with the theory's log K(L)/K(1) and fate at its own depth."""
        with np.errstate(all="ignore"):
            K = kernels.kernel_flow(act, self.C_b, float(mark["C_W"]), float(mark["K0"]), int(mark["depth"]))
            r = float(np.nan_to_num(np.log(K[-1] / K[0]), nan=np.inf))
        return {**mark, "log_ratio": r, "fate": FATES[int(kernel_fate(np.exp(r), self.band))]}

    def plot(self, act, depth, width, members, log_ratio, measured, marks, path: Path) -> None:
        plt = pyplot()

        fig, axes = plt.subplots(1, 3, figsize=(15, 4.6), sharey=True, constrained_layout=True)
        for ax, n, cmap in zip(axes, (0, 1, 2), ("Blues", "Greens", "Reds")):
            mesh = ax.pcolormesh(self.C_W, self.K0, measured[n].T, cmap=cmap, vmin=0, vmax=1, shading="nearest")
            bounded = np.clip(log_ratio, -50, 50)
            ax.contour(self.C_W, self.K0, bounded.T, levels=[-math.log(self.band), math.log(self.band)],
                       colors="k", linewidths=1.5, linestyles=["--", "-"])
            ax.set(xscale="log", yscale="log", xlabel="C_W (every layer)",
                   title=f"measured: {FATES[n]} (share of {members} nets)")
            fig.colorbar(mesh, ax=ax, shrink=0.85)
            for m in marks:
                style = {"stable": "o", "explodes": "X", "vanishes": "v"}[m["fate"]]
                ax.plot(m["C_W"], m["K0"], style, color="m", ms=9, mec="k")
        axes[0].set_ylabel("input scale K0 = |x|²/n0")
        for m in marks:
            axes[2].plot([], [], {"stable": "o", "explodes": "X", "vanishes": "v"}[m["fate"]], color="m", mec="k",
                         label=f"{m['label']}: {m['fate']} at depth {m['depth']}")
        axes[2].plot([], [], "k-", label=f"theory: K(L)/K(1) = {self.band:g}")
        axes[2].plot([], [], "k--", label=f"theory: K(L)/K(1) = 1/{self.band:g}")
        axes[2].legend(fontsize=7, loc="lower left")
        fig.suptitle(f"{act!r}: kernel fate at layer {depth} (width {width}, C_b {self.C_b:g})")
        save_figure(fig, path)
