"""Paper B, Fig. 4: parallel and perpendicular susceptibilities versus C_W, from the theory alone.

For each C_W on a log grid (C_b fixed, 0 by default) the susceptibilities are evaluated at the
kernel's smallest nonzero fixed point K*(C_W) (NaN where there is none, e.g. MRePU at C_W ≥ 1)
and at the kernel reached after `layers` layers from K0. χ∥/χ⊥ depends on K only, so a second
figure shows it against K: for MRePU it tends to 1 as K -> 0, for RePU_p it is (2p−1)/p.
Nothing is trained; metrics.csv holds one row per (activation, C_W).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from runner import checks
from runner.results.files import pyplot, save_figure, write_csv
from runner.tasks.base import Networks, Task
from runner.theory import kernels
from runner.theory.activations import Activation
from runner.theory.criticality import criticality


class Susceptibility(Task):
    """χ∥, χ⊥ and χ∥/χ⊥ over a log range of C_W for one or more activations."""

    trains = False

    def __init__(self, name: str, C_W_range: tuple[float, float], n_C_W: int, C_b: float, K0: float,
                 layers: int, K_range: tuple[float, float], activations: list[Activation] | None):
        self.name = name
        low, high = checks.interval("C_W_range", C_W_range)
        checks.positive("C_W_range", low)
        self.C_W = np.logspace(np.log10(low), np.log10(high), checks.positive_int("n_C_W", n_C_W))
        self.C_b, self.K0 = checks.nonnegative("C_b", C_b), checks.positive("K0", K0)
        self.layers = checks.positive_int("layers", layers)
        low, high = checks.interval("K_range", K_range)
        checks.positive("K_range", low)
        self.K = np.logspace(np.log10(low), np.log10(high), 200)
        if activations is not None and not all(isinstance(a, Activation) for a in activations):
            raise checks.invalid("activations", activations, "null, or a list of activations (each with a _target_)")
        self.activations = list(activations) if activations else None

    def measure(self, networks: Networks, run_dir: Path) -> dict[str, torch.Tensor]:
        rows, curves, metrics = [], [], {}
        for act in self.activations or [networks.activation]:
            tag = act.label
            K_star = kernels.lowest_fixed_point(act, self.C_b, self.C_W)
            K_L = kernels.kernel_flow(act, self.C_b, self.C_W, self.K0, self.layers)[:, -1]
            with np.errstate(all="ignore"):
                par_s = kernels.chi_par(act, np.nan_to_num(K_star, nan=1.0), self.C_W)
                perp_s = kernels.chi_perp(act, np.nan_to_num(K_star, nan=1.0), self.C_W)
                par_s, perp_s = np.where(np.isnan(K_star), np.nan, par_s), np.where(np.isnan(K_star), np.nan, perp_s)
                par_L, perp_L = kernels.chi_par(act, K_L, self.C_W), kernels.chi_perp(act, K_L, self.C_W)
                ratio_K = kernels.chi_par(act, self.K, 1.0) / kernels.chi_perp(act, self.K, 1.0)
            for i, cw in enumerate(self.C_W):
                with np.errstate(all="ignore"):
                        rows.append({"activation": tag, "C_W": cw, "K_star": K_star[i], "chi_par_star": par_s[i],
                                 "chi_perp_star": perp_s[i], "ratio_star": par_s[i] / perp_s[i],
                                 "K_L": K_L[i], "chi_par_L": par_L[i], "chi_perp_L": perp_L[i],
                                 "ratio_L": par_L[i] / perp_L[i]})
            crit = criticality(act)
            has_fp = self.C_W[np.isfinite(K_star)]
            metrics[f"{tag}/ratio_at_smallest_K"] = torch.tensor([ratio_K[0]])
            metrics[f"{tag}/ratio_at_largest_K"] = torch.tensor([ratio_K[-1]])
            metrics[f"{tag}/critical_C_W"] = torch.tensor([crit.C_W if crit.exists else float("nan")])
            metrics[f"{tag}/max_C_W_with_fixed_point"] = torch.tensor(
                [has_fp.max() if has_fp.size else float("nan")])
            curves.append((tag, K_star, par_s, perp_s, par_L, perp_L, ratio_K))
        write_csv(Path(run_dir) / "metrics.csv", rows)
        self.plot(curves, Path(run_dir) / "plots")
        return metrics

    def plot(self, curves, plots: Path) -> None:
        plt = pyplot()

        fig, axes = plt.subplots(2, 3, figsize=(13, 7), sharex=True)
        for i, (tag, K_star, par_s, perp_s, par_L, perp_L, _) in enumerate(curves):
            c = f"C{i}"
            for row, (par, perp, where) in enumerate(((par_s, perp_s, "at K*(C_W)"),
                                                      (par_L, perp_L, f"at K({self.layers}), K0={self.K0:g}"))):
                axes[row, 0].plot(self.C_W, par, c, label=tag)
                axes[row, 1].plot(self.C_W, perp, c, label=tag)
                with np.errstate(all="ignore"):
                    axes[row, 2].plot(self.C_W, par / perp, c, label=tag)
                for col, what in enumerate(("χ∥", "χ⊥", "χ∥/χ⊥")):
                    # a log axis needs a positive value (no C_W of the grid may have a fixed point)
                    positive = any((np.isfinite(y) & (y > 0)).any() for y in (line.get_ydata() for line in axes[row, col].lines))
                    axes[row, col].set(xscale="log", yscale="log" if col < 2 and positive else "linear",
                                       title=f"{what} {where}")
                axes[row, 2].ticklabel_format(axis="y", useOffset=False)
        for ax in axes[1]:
            ax.set_xlabel(f"C_W (C_b = {self.C_b:g})")
        axes[0, 0].legend(fontsize=8)
        fig.tight_layout()
        save_figure(fig, plots / "susceptibility.png")

        fig, ax = plt.subplots(figsize=(6, 4))
        for i, (tag, *_, ratio_K) in enumerate(curves):
            ax.plot(self.K, ratio_K, f"C{i}", label=tag)
        ax.axhline(1.0, color="k", lw=0.8, ls="--")
        ax.set(xscale="log", xlabel="K", ylabel="χ∥/χ⊥ (independent of C_W)",
               title="susceptibility ratio versus the kernel")
        ax.legend(fontsize=8)
        fig.tight_layout()
        save_figure(fig, plots / "ratio_vs_K.png")
