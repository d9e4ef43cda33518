"""Comparison plots of a sweep's jobs: loss curves, fits of f and f', heat maps, group curves,
and every member's value per activation."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
from scipy import stats

from runner.results.files import pyplot, save_figure, write_json_atomic
from runner.results.jobs import Job, collect
from runner.results.summary import COMPLETED, FINISHED, median_member, member_stats
from runner.results.tables import groups, label, pivot
from runner.results.verdicts import Kind


def _first_jobs(jobs: list[Job], rows: str, cols: str) -> dict[tuple[str, str], Job]:
    """The first completed job of every (row, column) cell, for plots."""
    first = {}
    for job in jobs:
        if job.status == COMPLETED:
            first.setdefault((label(job.value(rows)), label(job.value(cols))), job)
    return first


def _read_loss(path: Path) -> dict[str, np.ndarray] | None:
    """step and train/loss/{mean,min,max} rows of a metrics.csv (None without one)."""
    if not path.exists():
        return None
    with path.open() as f:
        rows = [r for r in csv.DictReader(f) if r.get("train/loss/mean")]
    if not rows:
        return None
    return {k: np.array([float(r[f"train/loss/{k}"] if k != "step" else r["step"]) for r in rows])
            for k in ("step", "mean", "min", "max")}


def plot_loss_curves(jobs: list[Job], rows: str, cols: str, path: Path) -> bool:
    """Per column, the member-mean training loss of every row with a min-max band."""
    first = _first_jobs(jobs, rows, cols)
    col_keys = list(dict.fromkeys(c for _, c in first))
    curves = {key: _read_loss(job.path / "metrics.csv") for key, job in first.items()}
    if not any(v is not None for v in curves.values()):
        return False
    plt = pyplot()
    fig, axes = plt.subplots(1, len(col_keys), figsize=(4.5 * len(col_keys), 3.8), squeeze=False)
    for ax, c in zip(axes[0], col_keys):
        for i, ((r, cc), curve) in enumerate((k, v) for k, v in curves.items() if k[1] == c):
            if curve is None:
                continue
            ax.plot(curve["step"], curve["mean"], color=f"C{i}", lw=1.4, label=r)
            ax.fill_between(curve["step"], curve["min"], curve["max"], color=f"C{i}", alpha=0.2, lw=0)
        ax.set(yscale="log", xlabel="epoch", ylabel="training loss", title=c)
        ax.legend(fontsize=8)
    fig.tight_layout()
    save_figure(fig, path)
    return True


def _load_predictions(job: Job) -> dict | None:
    path = job.path / "predictions.npz"
    if not path.exists():
        return None
    with np.load(path) as data:
        return {k: data[k] for k in data.files} if "dy_pred" in data.files else None


def _median_member(pred: dict, ok: list[bool]) -> int:
    """The member with the median test error among the ok members (runner.results.summary.median_member)."""
    return median_member(((pred["y_pred"] - pred["y_true"][None]) ** 2).mean(axis=(1, 2)), ok)


def plot_function_fits(jobs: list[Job], rows: str, cols: str, plot_dir: Path) -> list[Path]:
    """f and f' per one-input column, or error contours per two-input column.

    Each row shows its median member (by test error, among the ok members), as a single trained
    network.
    """
    plt = pyplot()
    first = _first_jobs(jobs, rows, cols)
    preds = {key: (p, [f == "ok" for f in job.record.member_status or []])
             for key, job in first.items() if (p := _load_predictions(job)) is not None}
    written = []
    for c in dict.fromkeys(cc for _, cc in preds):
        entries = [(r, p, ok) for (r, cc), (p, ok) in preds.items() if cc == c]
        dim = entries[0][1]["x"].shape[1]
        if dim == 1:
            fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
            x = entries[0][1]["x"][:, 0]
            for i, (r, p, ok) in enumerate(entries):
                k = _median_member(p, ok)
                axes[0].plot(x, p["y_pred"][k, :, 0], color=f"C{i}", lw=1.2, label=r)
                axes[1].plot(x, p["dy_pred"][k, :, 0], color=f"C{i}", lw=1.2, label=r)
            axes[0].plot(x, entries[0][1]["y_true"][:, 0], "k--", lw=1, label="exact")
            axes[1].plot(x, entries[0][1]["dy_true"][:, 0], "k--", lw=1, label="exact")
            axes[0].set(xlabel="x", ylabel="f(x)", title=c)
            axes[1].set(xlabel="x", ylabel="f'(x)", title=f"{c}: derivative")
            for ax in axes:
                ax.legend(fontsize=8)
        elif dim == 2:
            shape = tuple(int(s) for s in entries[0][1]["grid_shape"])
            x1, x2 = (entries[0][1]["x"][:, i].reshape(shape) for i in range(2))
            fig, axes = plt.subplots(len(entries), 3, figsize=(12.5, 3.6 * len(entries)), squeeze=False)
            for row_axes, (r, p, ok) in zip(axes, entries):
                k = _median_member(p, ok)
                err = (p["y_pred"][k, :, 0] - p["y_true"][:, 0]).reshape(shape)
                gerr = (np.linalg.norm(p["dy_pred"][k], axis=1) - np.linalg.norm(p["dy_true"], axis=1)).reshape(shape)
                panels = [(p["y_pred"][k, :, 0].reshape(shape), "viridis", f"{r}: prediction"),
                          (err, "RdBu_r", f"{r}: error"), (gerr, "RdBu_r", f"{r}: gradient-norm error")]
                for ax, (values, cmap, title) in zip(row_axes, panels):
                    finite = np.isfinite(values).all()
                    if finite and cmap == "RdBu_r":
                        bound = float(np.abs(values).max()) or 1.0
                        cs = ax.contourf(x1, x2, values, levels=21, cmap=cmap, vmin=-bound, vmax=bound)
                    elif finite:
                        cs = ax.contourf(x1, x2, values, levels=21, cmap=cmap)
                    if finite:
                        fig.colorbar(cs, ax=ax)
                    ax.set(title=title, xlabel="x1", ylabel="x2", aspect="equal")
            fig.suptitle(c)
        else:
            continue
        fig.tight_layout()
        name = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in c)[:60]
        out = plot_dir / f"fit_{name}.png"
        save_figure(fig, out)
        written.append(out)
    return written


def plot_heatmap(jobs: list[Job], metric: str, rows: str, cols: str, path: Path) -> bool:
    """Rows x columns colored by the median of `metric` over each cell's finite members (log
    scale), each cell annotated with it and, when members were left out, finite/total."""
    row_keys, col_keys, cells = pivot(jobs, metric, rows, cols)
    medians = np.full((len(row_keys), len(col_keys)), np.nan)
    for (r, c), cell in cells.items():
        if (median := cell.stats["median"]) is not None:
            medians[row_keys.index(r), col_keys.index(c)] = median
    positive = medians[np.isfinite(medians) & (medians > 0)]
    if not len(positive):
        return False
    from matplotlib.colors import LogNorm  # startup: matplotlib loads only where a figure is drawn

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(1.3 * len(col_keys) + 2.5, 0.6 * len(row_keys) + 1.8))
    im = ax.imshow(np.where(medians > 0, medians, np.nan), cmap="viridis_r", aspect="auto",
                   norm=LogNorm(vmin=positive.min(), vmax=max(positive.max(), positive.min() * 1.01)))
    for (r, c), cell in cells.items():
        i, j = row_keys.index(r), col_keys.index(c)
        value = medians[i, j]
        text = "none finite" if np.isnan(value) else f"{value:.2g}"
        if len(cell.values) < cell.total:
            text += f"\n({len(cell.values)}/{cell.total})"
        dark = value > 0 and im.norm(value) > 0.5  # the dark end of viridis_r
        ax.text(j, i, text, ha="center", va="center", fontsize=8,
                color="red" if np.isnan(value) else "w" if dark else "k")
    ax.set_xticks(range(len(col_keys)), col_keys, rotation=30, ha="right")
    ax.set_yticks(range(len(row_keys)), row_keys)
    ax.set(xlabel=cols, ylabel=rows, title=f"median {metric} over members")
    fig.colorbar(im, ax=ax, label=metric)
    fig.tight_layout()
    save_figure(fig, path)
    return True


def plot_group_curves(jobs: list[Job], by: list[str], path: Path) -> bool:
    """Each group's training-loss curve: mean over its jobs of the member mean, min-max band."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    drawn = 0
    for i, (key, group) in enumerate(groups(jobs, by).items()):
        curves = [c for c in (_read_loss(j.path / "metrics.csv") for j in group) if c is not None]
        if not curves:
            continue
        n = min(len(c["step"]) for c in curves)  # a running job's curve is shorter
        mean = np.mean([c["mean"][:n] for c in curves], axis=0)
        low = np.min([c["min"][:n] for c in curves], axis=0)
        high = np.max([c["max"][:n] for c in curves], axis=0)
        ax.plot(curves[0]["step"][:n], mean, color=f"C{i % 10}", lw=1.4, label=", ".join(key))
        ax.fill_between(curves[0]["step"][:n], low, high, color=f"C{i % 10}", alpha=0.15, lw=0)
        drawn += 1
    if drawn:
        ax.set(yscale="log", xlabel="epoch", ylabel="training loss", title=" × ".join(by))
        ax.legend(fontsize=8)
        fig.tight_layout()
        save_figure(fig, path)
    plt.close(fig)
    return bool(drawn)


def compare_sweep(sweep_dir: Path, metric: str = "rel_l2") -> dict[str, list[float]] | None:
    """Every ok member's `metric` (runner.results.jobs.Job.members: the members every table counts)
    of every run below `sweep_dir` that trained to the end, per activation; plot them side by side
    (plots/<metric>_by_activation.png) and write the numbers as JSON."""
    sweep_dir = Path(sweep_dir)
    by_activation: dict[str, list[float]] = {}
    for job in collect([sweep_dir]) if sweep_dir.is_dir() else []:
        if job.status not in FINISHED or metric not in job.record.metric_names():
            continue
        values = [v for v in job.members(metric) if v is not None]
        by_activation.setdefault(job.record.activation, []).extend(values)
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


COLORS = {"supports": "tab:green", "against": "tab:red", "undecided": "0.55"}  # a test's decision


def forest_rows(groups: list[tuple[str, list]]) -> list[dict]:
    """One row per test with an effect size (paired sign tests, their unions, Mann-Whitney), in
    order: group (a claim), test, the effect, its 95% interval and the decision. `groups`: (name,
    [runner.results.verdicts.Decision]) pairs. The numbers of plot_forest, for a table or a check."""
    rows = []
    for group, decided in groups:
        for d in decided:
            t = d.test
            if t.kind not in (Kind.SIGN, Kind.MANN_WHITNEY, Kind.UNION):
                continue
            low, high = t.interval or (None, None)
            note = "" if t.effect is not None else "no pair left" if not t.n else "no pair with both finite"
            rows.append({"group": group, "test": t.label, "effect_name": t.effect_name, "effect": t.effect,
                         "low": low, "high": high, "decision": d.decision, "note": note})
    return rows


def interval_panel(rows: list[dict], value: str, path: Path, line: float, span: tuple[float, float],
                   shade: tuple[float, float], xlabel: str, title: str, legend: str) -> None:
    """One row per test, grouped by rows' `group` (a thin line between groups): its `value` with its
    [low, high] interval, coloured by its decision, or its `note` where it has no value; a line at
    `line`, the claimed direction shaded over `shade`."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(8.5, 1.2 + 0.24 * len(rows)))
    ax.axvspan(*shade, color="tab:green", alpha=0.06, lw=0)
    ax.axvline(line, color="k", lw=0.8)
    for i, r in enumerate(rows):
        y = len(rows) - 1 - i
        if i and r["group"] != rows[i - 1]["group"]:
            ax.axhline(y + 0.5, color="0.85", lw=0.6)
        color = COLORS[r["decision"]]
        if r[value] is None:
            ax.text(line, y, r["note"], ha="center", va="center", fontsize=6, color=color)
            continue
        if r["low"] is not None and np.isfinite(r["low"]) and np.isfinite(r["high"]):
            ax.plot([r["low"], r["high"]], [y, y], color=color, lw=1.6)
        ax.plot([r[value]], [y], "o", color=color, ms=4)
    ax.set_yticks(range(len(rows)), [f"{r['group']} · {r['test']}" for r in reversed(rows)], fontsize=6)
    ax.set_xlim(*span)
    ax.set_ylim(-0.7, len(rows) - 0.3)
    ax.set_xlabel(xlabel, fontsize=8)
    handles = [ax.plot([], [], "o-", color=c, label=d)[0] for d, c in COLORS.items()]
    ax.legend(handles=handles, fontsize=7, loc=legend, title="decision", title_fontsize=7)
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    save_figure(fig, path)


def plot_forest(rows: list[dict], path: Path, title: str = "") -> bool:
    """The forest plot of `forest_rows`: each test's effect (ln of its ratio, the claim's side over
    the other) with its 95% interval, grouped, coloured by its decision; left of 0 is the claim's
    direction. Tests without an effect (no pair left, or none with both values finite) are listed
    with the reason instead of a point."""
    if not rows:
        return False
    finite = [v for r in rows for v in (r["effect"], r["low"], r["high"]) if v is not None and np.isfinite(v)]
    span = max([abs(v) for v in finite] + [1.0]) * 1.1
    interval_panel(rows, "effect", path, 0.0, (-span, span), (-span, 0.0),
                   "effect: ln(claim's side / other side), median over pairs [95% bootstrap interval]",
                   title or "every paired comparison: left of 0 is the direction claimed", "upper right")
    return True


def improvement_rows(groups: list[tuple[str, list]], confidence: float = 0.95) -> list[dict]:
    """One row per paired sign test: P(a member of the claim's side beats its paired member of the
    other side) = wins / (wins + losses) over the pairs the test kept (ties are neither), with the
    two-sided exact (Clopper-Pearson) interval at `confidence` (rliable's probability of improvement,
    with member k of each side as a pair)."""
    rows = []
    for group, decided in groups:
        for d in decided:
            t = d.test
            if t.wins is None or t.losses is None:
                continue
            n = t.wins + t.losses
            if n:
                ci = stats.binomtest(t.wins, n).proportion_ci(confidence, method="exact")
                p, low, high = t.wins / n, float(ci.low), float(ci.high)
            else:
                p = low = high = None
            rows.append({"group": group, "test": t.label, "wins": t.wins, "losses": t.losses,
                         "probability": p, "low": low, "high": high, "decision": d.decision,
                         "note": "" if n else "every pair tied or dropped"})
    return rows


def plot_improvement(rows: list[dict], path: Path, title: str = "") -> bool:
    """The probability-of-improvement panel of `improvement_rows`: each comparison's P(the claim's
    side beats the paired other) with its 95% interval; right of 0.5 is the direction claimed."""
    if not rows:
        return False
    interval_panel(rows, "probability", path, 0.5, (-0.02, 1.02), (0.5, 1.02),
                   "P(claim's side beats its paired member) [95% Clopper-Pearson interval]",
                   title or "probability of improvement, member k against member k", "lower left")
    return True
