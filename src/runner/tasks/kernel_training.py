"""Paper B, Tables 2-3 and Figs. 2-3, 7-8: what happens to the kernel while an ensemble trains.

Synthetic regression on the plane: `target` (a name in TARGETS; default sin_cos,
y = sin(pi x1) cos(pi x2), because the paper's target is lost) on n_train points drawn uniformly
from x_range², tested on a grid of about n_test points. Inputs are standardized (normalize) and
then multiplied by input_scale, so K0 = |x|²/2 is about input_scale² on average.

At every epoch the kernel recorder lists (KernelRecorder, conf/callbacks/kernel_training.yaml:
callbacks.kernel_recorder.epochs; epoch e = after e optimizer steps) it records, per hidden
layer and over the ensemble: the kernel (per member, E[z²] over neurons and training
inputs) as mean and variance over members, the empirical perpendicular susceptibility
(runner.theory.measurements.empirical_chi_perp), the four-point vertex from the members' fourth cumulant
(model-free, so valid for trained weights), the ensemble mean ± std of the output on the test
set, and the number of overflowed members (non-finite anywhere), which every statistic excludes.
Epoch 0 is compared with the theory (C_W_first, C_W, C_b: the model's initialization).
"""

from __future__ import annotations

import math
from pathlib import Path

import lightning as L
import numpy as np
import torch

from runner import checks
from runner.nets.mlp import EnsembleMLP
from runner.results.files import json_safe, pyplot, save_figure, write_bytes_atomic, write_csv, write_json_atomic
from runner.tasks.base import RegressionTask
from runner.theory import finite_width, kernels
from runner.theory.measurements import empirical_chi_perp, ensemble_cumulants

TARGETS = {
    "sin_cos": lambda x: torch.sin(math.pi * x[:, :1]) * torch.cos(math.pi * x[:, 1:2]),
    "quadratic": lambda x: x[:, :1] ** 2 + x[:, 1:2] ** 2,
    "product": lambda x: x[:, :1] * x[:, 1:2],
    "gaussian": lambda x: torch.exp(-(x**2).sum(1, keepdim=True)),
}


class KernelTraining(RegressionTask):
    """Train an ensemble on a 2-D regression and record kernel statistics at chosen epochs."""

    def __init__(self, name: str, target: str, x_range: tuple[float, float], n_train: int, n_test: int,
                 normalize: bool, input_scale: float, data_seed: int):
        self.name, self.target = name, checks.one_of("target", target, list(TARGETS))
        gen = torch.Generator().manual_seed(checks.nonnegative_int("data_seed", data_seed))
        lo, hi = checks.interval("x_range", x_range)
        n_train, n_test = checks.positive_int("n_train", n_train), checks.positive_int("n_test", n_test)
        x = lo + (hi - lo) * torch.rand(n_train, 2, generator=gen)
        super().__init__(x, TARGETS[target](x), checks.boolean("normalize", normalize))
        # the network sees standardized inputs x input_scale
        self.x_std = self.x_std / checks.positive("input_scale", input_scale)
        side = max(2, round(math.sqrt(n_test)))
        g = torch.linspace(lo, hi, side)
        self.x_test = torch.cartesian_prod(g, g)
        self.y_test = TARGETS[target](self.x_test)
        self.side = side
        self.records: list[dict] = []

    def layer_stats(self, model: EnsembleMLP) -> dict:
        """Per hidden layer statistics on the training inputs for every member."""
        x = self.train_batch()["x"].to(model.weights[0].device)
        with torch.no_grad():
            out, zs = model(x, return_preactivations=True)
        valid = torch.isfinite(out).all(-1).all(-1)
        for z in zs:
            valid &= torch.isfinite(z).flatten(1).all(1) & torch.isfinite(z.double().pow(2).sum((1, 2)))
        kernel = torch.stack([z.double().pow(2).mean((1, 2)) for z in zs], 1)  # (K, L)
        chi = torch.stack([empirical_chi_perp(model.activation, z, w)
                           for z, w in zip(zs, list(model.weights)[1:])], 1)
        cumulants = [ensemble_cumulants(z, valid) for z in zs]
        n_prev = [x.shape[1]] + [z.shape[-1] for z in zs[:-1]]
        vertex = [n * k4 / 3 for n, (_, k4) in zip(n_prev, cumulants)]
        kurt = [k4 / k2**2 if k2 > 0 else math.nan for k2, k4 in cumulants]
        return {"valid": valid.cpu(), "kernel": kernel.cpu(), "chi_perp": chi.cpu(),
                "vertex": vertex, "kurtosis": kurt, "n_prev": n_prev}

    def record(self, model: EnsembleMLP, epoch: int) -> dict:
        """One row of the training tables: statistics over the finite members at `epoch`."""
        s = self.layer_stats(model)
        v = s["valid"]
        with torch.no_grad():
            pred = self.predict(model, self.x_test)[..., 0].double().cpu()
        pv = pred[v] if v.any() else pred[:0]
        rec = {"epoch": epoch, "n_members": len(v), "overflowed": int((~v).sum()),
               "kernel_mean": s["kernel"][v].mean(0).tolist(),
               "kernel_var": s["kernel"][v].var(0).tolist() if v.sum() > 1 else [math.nan] * s["kernel"].shape[1],
               "chi_perp_mean": s["chi_perp"][v].mean(0).tolist(),
               "chi_perp_std": s["chi_perp"][v].std(0).tolist() if v.sum() > 1 else [math.nan] * s["kernel"].shape[1],
               "vertex": s["vertex"], "kurtosis": s["kurtosis"],
               "test_mse": float((pv - self.y_test[:, 0].double()).pow(2).mean()) if len(pv) else math.nan,
               "test_mean": pv.mean(0).tolist(), "test_std": pv.std(0).tolist() if len(pv) > 1 else []}
        self.records = [r for r in self.records if r["epoch"] != epoch] + [rec]
        return rec

    def theory_at_init(self, model: EnsembleMLP) -> dict:
        """Leading-order kernel, χ⊥ and kurtosis per layer, averaged over the training inputs."""
        x = self.train_batch()["x"].double()
        K0 = (x**2).sum(1).numpy() / x.shape[1]
        depth, width = model.depth, model.weights[0].shape[-1]
        act, init = model.activation, model.init
        C_W, C_b, first = init.C_W, init.C_b, init.C_W_first
        with np.errstate(all="ignore"):
            K = kernels.kernel_flow(act, C_b, C_W, K0, depth, C_W_first=first)
            chi = kernels.chi_perp(act, K, C_W)
            V = finite_width.vertex_flow(act, C_b, C_W, K0, depth, width, C_W_first=first)
            n_prev = np.array([x.shape[1]] + [width] * (depth - 1), dtype=float)
            kurt = finite_width.excess_kurtosis(V, K, n_prev)
        return {"kernel": K.mean(0).tolist(), "chi_perp": chi.mean(0).tolist(),
                "kurtosis": kurt.mean(0).tolist()}

    def evaluate(self, model: EnsembleMLP) -> dict[str, torch.Tensor]:
        s = self.layer_stats(model)
        with torch.no_grad():
            metrics = {"train_mse": self.mse(self.predict(model, self.x_train), self.y_train).cpu(),
                       "test_mse": self.mse(self.predict(model, self.x_test), self.y_test).cpu()}
        metrics["overflowed"] = (~s["valid"]).float()
        for l in range(s["kernel"].shape[1]):
            metrics[f"kernel/layer{l + 1}"] = torch.where(s["valid"], s["kernel"][:, l], math.nan)
            metrics[f"chi_perp/layer{l + 1}"] = torch.where(s["valid"], s["chi_perp"][:, l], math.nan)
        return metrics

    def save_outputs(self, model: EnsembleMLP, run_dir: Path, label: str) -> None:
        run_dir = Path(run_dir)
        with torch.no_grad():
            pred = self.predict(model, self.x_test).cpu()
        self.save_predictions(run_dir / "predictions.npz", self.x_test, self.y_test, pred)
        records = sorted(self.records, key=lambda r: r["epoch"])
        if not records:
            return
        init = self.theory_at_init(model)
        write_json_atomic(run_dir / "kernel_records.json",
                          json_safe({"theory_at_init": init, "records": records}))
        depth = len(records[0]["kernel_mean"])
        rows = [{"epoch": r["epoch"], "layer": l + 1, "kernel_mean": r["kernel_mean"][l],
                 "kernel_var": r["kernel_var"][l], "chi_perp_mean": r["chi_perp_mean"][l],
                 "chi_perp_std": r["chi_perp_std"][l], "vertex": r["vertex"][l],
                 "kurtosis": r["kurtosis"][l], "overflowed": r["overflowed"], "test_mse": r["test_mse"]}
                for r in records for l in range(depth)]
        write_csv(run_dir / "kernel_table.csv", rows)
        write_bytes_atomic(run_dir / "kernel_table.md", markdown_table(records, init, label).encode())
        plot_training(records, init, self, label, run_dir / "plots")


def markdown_table(records: list[dict], init: dict, label: str) -> str:
    """Tables 2-3: kernel mean and variance over the ensemble per layer (columns) and epoch (rows)."""
    depth = len(records[0]["kernel_mean"])
    head = ["epoch"] + [f"layer {l + 1} mean" for l in range(depth)] + [f"layer {l + 1} var" for l in range(depth)] + ["overflowed"]
    lines = [f"# {label}: kernel over the ensemble during training", "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    theory_row = ["theory (init)"] + [f"{k:.4g}" for k in init["kernel"]] + [""] * depth + [""]
    lines.append("| " + " | ".join(theory_row) + " |")
    for r in records:
        cells = [str(r["epoch"])] + [f"{v:.4g}" for v in r["kernel_mean"]] + [f"{v:.4g}" for v in r["kernel_var"]]
        lines.append("| " + " | ".join(cells + [f"{r['overflowed']}/{r['n_members']}"]) + " |")
    return "\n".join(lines) + "\n"


def plot_training(records: list[dict], init: dict, task: KernelTraining, label: str, plots: Path) -> None:
    """Kernel, χ⊥ and vertex per layer over epochs; ensemble output against the target."""
    plt = pyplot()

    epochs = [r["epoch"] for r in records]
    depth = len(records[0]["kernel_mean"])
    fig, axes = plt.subplots(1, 3, figsize=(14, 4))
    for l in range(depth):
        c = f"C{l % 10}"
        mean = np.array([r["kernel_mean"][l] for r in records])
        std = np.sqrt(np.array([r["kernel_var"][l] for r in records]))
        axes[0].errorbar(epochs, mean, std, color=c, marker="o", ms=3, capsize=2, label=f"layer {l + 1}")
        axes[0].plot([0], [init["kernel"][l]], "x", color=c, ms=8)
        chi = np.array([r["chi_perp_mean"][l] for r in records])
        axes[1].errorbar(epochs, chi, np.array([r["chi_perp_std"][l] for r in records]), color=c,
                         marker="o", ms=3, capsize=2)
        axes[1].plot([0], [init["chi_perp"][l]], "x", color=c, ms=8)
        axes[2].plot(epochs, [r["kurtosis"][l] for r in records], color=c, marker="o", ms=3)
        axes[2].plot([0], [init["kurtosis"][l]], "x", color=c, ms=8)
    axes[0].set(yscale="log", xlabel="epoch", ylabel="kernel (mean ± std over members)")
    axes[1].set(yscale="log", xlabel="epoch", ylabel="empirical χ⊥")
    axes[2].set(xlabel="epoch", ylabel="4-pt / K² (ensemble kurtosis)")
    axes[0].legend(fontsize=7)
    overflow = ", ".join(f"{r['epoch']}:{r['overflowed']}" for r in records)
    fig.suptitle(f"{label}: x = theory at init; overflowed members by epoch {overflow}", fontsize=9)
    fig.tight_layout()
    save_figure(fig, plots / "kernel_training.png")

    last = records[-1]
    if len(last["test_std"]):
        mean, std = np.array(last["test_mean"]), np.array(last["test_std"])
        y = task.y_test[:, 0].numpy()
        fig, axes = plt.subplots(1, 2, figsize=(11, 4))
        axes[0].errorbar(y, mean, std, fmt="o", ms=2, alpha=0.5, capsize=0)
        span = [y.min(), y.max()]
        axes[0].plot(span, span, "k--", lw=1)
        axes[0].set(xlabel="target", ylabel="ensemble mean ± std", title=f"test set, epoch {last['epoch']}")
        row = task.side // 2  # the slice x2 ≈ middle of the range
        idx = np.arange(task.side) * task.side + row
        x1 = task.x_test[idx, 0].numpy()
        axes[1].plot(x1, y[idx], "k--", label="target")
        axes[1].plot(x1, mean[idx], "C0", label="ensemble mean")
        axes[1].fill_between(x1, mean[idx] - std[idx], mean[idx] + std[idx], color="C0", alpha=0.25)
        axes[1].set(xlabel="x1", title=f"slice x2 = {task.x_test[idx[0], 1]:.2f}")
        axes[1].legend(fontsize=8)
        fig.tight_layout()
        save_figure(fig, plots / "output.png")


class KernelRecorder(L.Callback):
    """Calls task.record at the start of each of `epochs` and after the last step."""

    def __init__(self, task: KernelTraining, epochs: list[int]):
        if not isinstance(task, KernelTraining):
            raise checks.ConfigError("", f": records the kernels of task=kernel_training, not of task {task.name!r}")
        self.task = task
        self.epochs = sorted(checks.nonempty_list("epochs", epochs, checks.nonnegative_int, "integers >= 0"))

    def next_due(self, epoch: int) -> int:
        """The next recorded epoch after `epoch`: a training chunk ends there (EnsembleModule)."""
        return min((e for e in self.epochs if e > epoch), default=epoch + 10**9)

    def on_train_epoch_start(self, trainer: L.Trainer, module) -> None:
        if trainer.global_step in self.epochs:
            self.task.record(module.model, trainer.global_step)

    def on_train_end(self, trainer: L.Trainer, module) -> None:
        if trainer.max_epochs in self.epochs:
            self.task.record(module.model, trainer.max_epochs)

    def state_dict(self) -> dict:
        """The records so far, saved in every checkpoint: a run resumed after a stop keeps the
        epochs it recorded before (epoch 0 above all, which it will not pass again)."""
        return {"records": self.task.records}

    def load_state_dict(self, state_dict: dict) -> None:
        self.task.records = list(state_dict.get("records", []))
