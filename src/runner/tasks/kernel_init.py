"""Paper B, Figs. 1, 5, 6: the kernel and four-point vertex of random networks, layer by layer.

M networks (ensemble.size) of model.depth hidden layers are drawn for every (C_W, width) pair
and run on one fixed input x_fixed plus `n_random_inputs` inputs x ~ N(0, input_std² I). Two
views of the kernel, both averaged over neurons: over weights (the fixed input, mean over
members) and over inputs (per member the mean over the random inputs, then over members). Each
sits next to the theory: the leading-order recursion K(l) and its 1/n-corrected version.

Four-point vertex (fixed input): V̂(l) = n_{l-1} Var_members(Ĝ(l)) with Ĝ(l) the conditional
variance of layer l given layer l-1 (see runner.theory.measurements.vertex_from_G); the direct estimator
(n_{l-1}/3)(E[z⁴] − 3E[z²]²) is reported beside it. Plots show the normalized four-point function
3V/(n_{l-1}K²), which grows with depth and shrinks with width. Members whose kernel overflows
are counted per layer and excluded; finite members whose kernel left the band of
runner.theory.fate (x10 of their layer-1 kernel) count as exploded or collapsed.

Neural tangent kernel (runner.theory.ntk): each member's empirical NTK of its scalar output,
Θ(x, x) = Σ_θ λ_θ (∂f(x)/∂θ)² over every weight and bias (λ_b = 1, λ_W = 1/fan_in: the NTK
parameterization's unit learning rate), on every input, from the same members with a readout
layer drawn as a trained ensemble draws it; its member mean ± standard error next to the
infinite-width recursion through the hidden layers and the readout.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from runner import checks
from runner.results.files import pyplot, save_figure, save_npz_atomic, write_csv
from runner.tasks.base import Networks, Task
from runner.theory.finite_width import excess_kurtosis, kernel_flow_nlo, vertex_flow
from runner.theory.init import Init
from runner.theory.kernels import kernel_flow
from runner.theory.measurements import mean_and_se, sample_init, sample_ntk, vertex_direct, vertex_from_G
from runner.theory.ntk import ntk_flow

DTYPES = {"float64": torch.float64, "float32": torch.float32}


class KernelInit(Task):
    """Empirical kernels and vertex of freshly initialized ensembles against the theory."""

    trains = False

    def __init__(self, name: str, x_fixed: list[float], n_random_inputs: int, input_std: float,
                 C_W_values: list | None, widths: list | None, chunk: int, dtype: str):
        self.name = name
        self.x_fixed = torch.tensor([checks.nonempty_list("x_fixed", x_fixed, checks.number, "numbers")],
                                    dtype=torch.float64)
        self.in_dim = self.x_fixed.shape[1]
        self.n_random = checks.nonnegative_int("n_random_inputs", n_random_inputs)
        self.input_std = checks.positive("input_std", input_std)
        self.C_W_values = (checks.nonempty_list("C_W_values", C_W_values, checks.positive, "numbers > 0")
                           if C_W_values is not None else None)
        self.widths = (checks.nonempty_list("widths", widths, checks.positive_int, "integers >= 1")
                       if widths is not None else None)
        self.chunk = checks.positive_int("chunk", chunk)
        self.dtype = DTYPES[checks.one_of("dtype", dtype, list(DTYPES))]

    def cost(self, width: int) -> float:
        """Every (C_W, width) ensemble on the fixed and random inputs."""
        widths = self.widths or [width]
        return float(1 + self.n_random) * sum(n * n for n in widths) * len(self.C_W_values or [1])

    def inputs(self, seed: int) -> torch.Tensor:
        gen = torch.Generator().manual_seed(seed)
        rand = torch.randn(self.n_random, self.in_dim, generator=gen, dtype=torch.float64) * self.input_std
        return torch.cat([self.x_fixed, rand])

    def measure(self, networks: Networks, run_dir: Path) -> dict[str, torch.Tensor]:
        act, init, depth, M = networks.activation, networks.init, networks.depth, networks.size
        C_b = init.C_b
        C_Ws = self.C_W_values or [init.C_W]
        # the init's first-layer variance, unless C_W_values sweeps one C_W for every layer
        first = None if self.C_W_values else init.C_W_first
        widths = self.widths or [networks.width]
        x = self.inputs(networks.seed)
        K0 = (x**2).sum(1).numpy() / self.in_dim
        rows, metrics, arrays, results = [], {}, {}, []
        for C_W in C_Ws:
            K_th = kernel_flow(act, C_b, C_W, K0, depth, C_W_first=first)  # (N, L)
            for n in widths:
                tag = f"cw{C_W:g}_n{n}"
                stats = sample_init(act, x, depth, n, C_W, C_b, M, seed=networks.seed,
                                    member_offset=networks.member_offset, chunk=self.chunk,
                                    dtype=self.dtype, C_W_first=first)
                res = self.layer_estimates(act, stats, K_th, K0, C_b, C_W, n, depth, first)
                results.append((C_W, n, res))
                for l in range(depth):
                    rows.append({"C_W": C_W, "width": n, "layer": l + 1,
                                 **{k: float(v[l]) for k, v in res.items() if np.ndim(v) == 1}})
                finite = stats.finite
                with np.errstate(all="ignore"):
                    z = np.abs(res["K_weights"] - res["K_theory"]) / res["K_weights_se"]
                    rel = np.abs(res["K_weights"] / res["K_theory"] - 1)
                metrics[f"{tag}/kernel_max_abs_z"] = torch.tensor([np.nanmax(z) if np.isfinite(z).any() else np.nan])
                metrics[f"{tag}/kernel_max_rel_err"] = torch.tensor([np.nanmax(rel) if np.isfinite(rel).any() else np.nan])
                metrics[f"{tag}/overflowed"] = torch.tensor([float(res["overflowed"][-1])])
                metrics[f"{tag}/exploded"] = torch.tensor([float(res["exploded"][-1])])
                metrics[f"{tag}/collapsed"] = torch.tensor([float(res["collapsed"][-1])])
                with np.errstate(divide="ignore"):  # log10: exploded kernels would overflow std
                    last = np.where(finite[:, -1], np.log10(stats.kernel[:, -1, 0]), np.nan)
                    metrics[f"{tag}/log10_kernel_last_layer"] = torch.from_numpy(last)
                    metrics[f"{tag}/log10_kernel_theory_last_layer"] = torch.tensor([np.log10(K_th[0, -1])])
                ntk = self.ntk(act, x, K0, init, C_W, C_b, first, n, depth, M, networks)
                for key, value in ntk.items():
                    metrics[f"{tag}/{key}"] = torch.tensor([value])
                metrics[f"{tag}/vertex_last_layer"] = torch.tensor([res["V_G"][-1]])
                metrics[f"{tag}/vertex_theory_last_layer"] = torch.tensor([res["V_theory"][-1]])
                arrays[f"{tag}_kernel"] = stats.kernel
                arrays[f"{tag}_G"] = stats.G
        run_dir = Path(run_dir)
        write_csv(run_dir / "metrics.csv", rows)
        save_npz_atomic(run_dir / "kernels.npz", x=x.numpy(), K0=K0, **arrays)
        self.plot(results, act, run_dir / "plots")
        return metrics

    def ntk(self, act, x: torch.Tensor, K0: np.ndarray, init: Init, C_W: float, C_b: float, first: float | None,
            n: int, depth: int, M: int, networks: Networks) -> dict[str, float]:
        """The output's NTK on the fixed input and averaged over the random ones: member mean, its
        standard error, the theory, and |mean - theory|/SE."""
        drawn = Init(init.scheme, C_W if first is None else first, C_W, C_b)
        chunk = max(1, self.chunk // (depth + 1))  # every layer's weights of a chunk are held at once
        theta = sample_ntk(act, x, depth, n, drawn, M, seed=networks.seed, member_offset=networks.member_offset,
                           chunk=chunk)  # (M, N)
        _, theory = ntk_flow(act, C_b, C_W, K0, depth + 1, C_W_first=first)  # (N, depth + 1)
        out = {}
        views = [("ntk", theta[:, 0], theory[0, -1])]
        if self.n_random:
            views.append(("ntk_inputs", theta[:, 1:].mean(1), theory[1:, -1].mean()))
        for name, values, th in views:
            mean, se = mean_and_se(values)
            with np.errstate(all="ignore"):
                z = abs(mean - th) / se
            out.update({name: float(mean), f"{name}_se": float(se), f"{name}_theory": float(th), f"{name}_abs_z": float(z)})
        return out

    def layer_estimates(self, act, stats, K_th, K0, C_b, C_W, n, depth, first=None) -> dict[str, np.ndarray]:
        """Per-layer theory and estimates for one (C_W, width) ensemble."""
        finite = stats.finite
        K_w, K_w_se = mean_and_se(stats.kernel[:, :, 0], finite)
        res = {"K_theory": K_th[0],
               "K_theory_nlo": kernel_flow_nlo(act, C_b, C_W, K0[0], depth, n, C_W_first=first),
               "K_weights": K_w, "K_weights_se": K_w_se}
        if self.n_random:
            per_member = stats.kernel[:, :, 1:].mean(2)  # fixed weights, averaged over inputs
            res["K_inputs"], res["K_inputs_se"] = mean_and_se(per_member, finite)
            res["K_inputs_theory"] = K_th[1:].mean(0)
        V = vertex_flow(act, C_b, C_W, K0[0], depth, n, C_W_first=first)
        V_G, V_G_se = vertex_from_G(stats)
        with np.errstate(all="ignore"):
            res.update(V_theory=V, V_G=V_G, V_G_se=V_G_se, V_direct=vertex_direct(stats),
                       kurtosis_theory=excess_kurtosis(V, K_th[0], stats.n_prev),
                       kurtosis_G=excess_kurtosis(V_G, K_w, stats.n_prev))
        res.update(overflowed=stats.overflowed().astype(float), exploded=stats.exploded().astype(float),
                   collapsed=stats.collapsed().astype(float), valid=finite.sum(0).astype(float))
        return res

    def plot(self, results, act, plots: Path) -> None:
        plt = pyplot()

        # exploded ensembles give inf or values whose error bars overflow, which a log axis
        # cannot place: leave points beyond 1e100 out (the legend counts exploded members)
        results = [(C_W, n, {k: np.where(np.abs(v) < 1e100, v, np.nan) for k, v in r.items()})
                   for C_W, n, r in results]
        layers = np.arange(1, len(results[0][2]["K_theory"]) + 1)
        fig, ax = plt.subplots(figsize=(7, 4.5))
        for i, (C_W, n, r) in enumerate(results):
            c = f"C{i % 10}"
            lbl = f"C_W={C_W:g}, n={n}"
            ax.plot(layers, r["K_theory"], c, lw=1.5, label=f"{lbl}: theory")
            ax.plot(layers, r["K_theory_nlo"], c, lw=1, ls=":")
            ax.errorbar(layers, r["K_weights"], r["K_weights_se"], fmt="o", color=c, ms=4, capsize=2,
                        label=f"{lbl}: over weights (overflowed {int(r['overflowed'][-1])}, "
                              f"exploded {int(r['exploded'][-1])}, collapsed {int(r['collapsed'][-1])})")
            if "K_inputs" in r:
                ax.errorbar(layers + 0.15, r["K_inputs"], r["K_inputs_se"], fmt="s", mfc="none", color=c,
                            ms=4, capsize=2)
                ax.plot(layers, r["K_inputs_theory"], c, lw=0.8, ls="--")
        ax.set(yscale="log", xlabel="layer", ylabel="kernel E[z²]",
               title=f"{act!r}: kernel at initialization (solid: theory; dotted: with 1/n; "
                     "squares: over inputs)")
        ax.title.set_fontsize(9)
        ax.legend(fontsize=6)
        fig.tight_layout()
        save_figure(fig, plots / "kernel.png")

        fig, ax = plt.subplots(figsize=(7, 4.5))
        for i, (C_W, n, r) in enumerate(results):
            c = f"C{i % 10}"
            ax.plot(layers, r["kurtosis_theory"], c, label=f"C_W={C_W:g}, n={n}: theory")
            with np.errstate(all="ignore"):
                err = r["kurtosis_G"] * r["V_G_se"] / r["V_G"]
            ax.errorbar(layers, r["kurtosis_G"], err, fmt="o", color=c, ms=4, capsize=2,
                        label=f"C_W={C_W:g}, n={n}: ensemble (Var of Ĝ)")
        ax.set(xlabel="layer", ylabel="3V/(n K²)", yscale="log",
               title=f"{act!r}: normalized four-point vertex at initialization")
        ax.legend(fontsize=6)
        fig.tight_layout()
        save_figure(fig, plots / "vertex.png")
