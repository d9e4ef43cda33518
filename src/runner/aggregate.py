"""Multirun directories -> tables and comparison plots.

    python -m runner.aggregate outputs/multirun/<date> [more dirs]
    python -m runner.aggregate <sweep> --metric train_mse --extra test_mse,deriv_mse --cols task.target
    python -m runner.aggregate <sweep> --by task,activation --metric test_mse,extrap_mse

Each job directory's summary.json is one run. Jobs are grouped into a table with one row per
value of `--rows` and one column per value of `--cols` (dotted config keys, default
activation.name x task.name); a cell pools the members of every job that trained to the end and
shows mean ± std of `--metric` (default final_train_loss) over the ok members (one status rule:
Job.members). `--extra` metrics get their own tables below it. `--heatmap` adds
plots/<metric>_heatmap.png, the cells' median over ok members on a log color scale. Failed,
interrupted, diverged, unfinished and partly diverged jobs are listed under the table, never
dropped silently. Writes table.md and table.csv (main metric) into --out (default: the first
directory), and comparison plots in plots/: loss curves with a band over members (from
metrics.csv), and for tasks that save predictions.npz with derivatives, fits of f and f' (one
input) or error contours (two).

With --by, jobs are grouped by any override or config keys (`activation`, `optimizer.lr`,
`task.name`, ...; an override's value as typed, else the config value, else `<key>.name`):
one row per group with mean ± std over every member of every job for each metric, and
plots/curves.png overlays each group's training-loss curve (mean over jobs of the member mean,
min-max band).

`--wandb` also logs the tables (one per metric) and the plots to one summary run in the jobs'
W&B group (runner.tracking.report_sweep), with the jobs' logger settings. A preset can have its
sweep aggregated when it ends: the Hydra callback AggregateSweep with these arguments.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import logging
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from hydra.experimental.callback import Callback

from runner.results import FINISHED, INTERRUPTED, member_stats, pyplot, save_figure, write_bytes_atomic

log = logging.getLogger("runner")

METRIC, ROWS, COLS = "final_train_loss", "activation.name", "task.name"  # what any trained run has


class TrackerError(RuntimeError):
    """The tables and plots are written, but the experiment tracker did not take them."""


@dataclass
class Job:
    """One run directory and what its summary says (status `missing` when it has none)."""

    path: Path
    status: str
    summary: dict = field(default_factory=dict)
    overrides: dict = field(default_factory=dict)

    def value(self, dotted: str):
        """An override as typed, else a config value by dotted key, e.g. 'activation.name', else
        `<key>.name` (so `activation` and `task` name the choice); None when absent."""
        if dotted in self.overrides:
            return self.overrides[dotted]
        for key in (dotted, f"{dotted}.name"):
            node = self.summary.get("config", {})
            for part in key.split("."):
                if not isinstance(node, dict) or part not in node:
                    node = None
                    break
                node = node[part]
            if node is not None and not isinstance(node, dict):
                return node
        return None

    def fates(self, metric: str) -> list[str]:
        """Each member's fate, one per value of `metric`: the run's member_status
        (runner.results.member_status); for a run without one (a task that trains nothing, or a
        metric with one value per run) `ok` where the value is finite, else `diverged`."""
        values = self.summary.get("metrics", {}).get(metric, {}).get("members", [])
        status = self.summary.get("member_status")
        if status and len(status) == len(values):
            return list(status)
        return ["ok" if v is not None else "diverged" for v in values]

    def members(self, metric: str) -> list[float | None]:
        """Every member's value of `metric`; None where it is not finite, or where the member
        diverged, blew up or ended no better than the zero function (Job.fates). The one rule of
        which members count, for every table, plot and claim."""
        values = self.summary.get("metrics", {}).get(metric, {}).get("members", [])
        return [v if fate == "ok" else None for v, fate in zip(values, self.fates(metric))]


def _job_number(path: Path):
    return (0, int(path.name)) if path.name.isdigit() else (1, path.name)


def collect(dirs: list[Path]) -> list[Job]:
    """Every job under the given directories (a run directory itself, or a sweep of them)."""
    jobs = []
    for root in map(Path, dirs):
        candidates = [root] if (root / "summary.json").exists() or (root / ".hydra").exists() else sorted(
            (p for p in root.iterdir() if p.is_dir() and ((p / "summary.json").exists() or (p / ".hydra").exists())),
            key=_job_number)
        for path in candidates:
            overrides = read_overrides(path)
            summary_path = path / "summary.json"
            if not summary_path.exists():
                jobs.append(Job(path, "missing", overrides=overrides))
                continue
            summary = json.loads(summary_path.read_text())
            jobs.append(Job(path, summary.get("status", "unknown"), summary, overrides))
    return jobs


def read_overrides(path: Path) -> dict[str, str]:
    """{key: value} from a job's .hydra/overrides.yaml (group choices and key=value alike)."""
    import yaml

    file = path / ".hydra" / "overrides.yaml"
    items = yaml.safe_load(file.read_text()) if file.exists() else []
    pairs = (item.lstrip("+~").split("=", 1) for item in items or [] if "=" in item)
    return {key: value for key, value in pairs}


@dataclass
class Cell:
    """Pooled members of every completed job in one (row, column) of the table."""

    values: list[float] = field(default_factory=list)
    total: int = 0
    unpooled: set[str] = field(default_factory=set)  # statuses of jobs without members: failed, interrupted

    @property
    def stats(self) -> dict:
        """runner.results.member_stats of the pooled values."""
        return member_stats(self.values)

    def add(self, job: Job, metric: str) -> None:
        """Pool a job's members of `metric` (jobs that trained to the end; others have none)."""
        if job.status in FINISHED:
            members = job.members(metric)
            self.total += len(members)
            self.values += [v for v in members if v is not None]
        else:
            self.unpooled.add(job.status)

    def csv_fields(self) -> list:
        """mean, std (empty without finite members), n_finite, n."""
        stats = self.stats
        fields = [f"{stats['mean']:.6e}", f"{stats['std']:.6e}"] if self.values else ["", ""]
        return fields + [len(self.values), self.total]


def _label(value) -> str:
    return "-" if value is None else str(value)


def pivot(jobs: list[Job], metric: str, rows: str, cols: str):
    """(row labels, column labels, {(row, col): Cell}) over completed jobs, in order of appearance."""
    row_keys, col_keys, cells = [], [], {}
    for job in jobs:
        r, c = _label(job.value(rows)), _label(job.value(cols))
        if job.status == "missing":
            continue
        row_keys += [r] if r not in row_keys else []
        col_keys += [c] if c not in col_keys else []
        cells.setdefault((r, c), Cell()).add(job, metric)
    return row_keys, col_keys, cells


def problems(jobs: list[Job], metric: str, keys: list[str]) -> list[str]:
    """One line per job that is not a clean completed run, labelled by its values of `keys`."""
    lines = []
    for job in jobs:
        where = f"{job.path} ({', '.join(_label(job.value(k)) for k in keys)})"
        if job.status == "missing":
            lines.append(f"{job.path}: no summary.json (still running, or killed)")
        elif job.status == "failed":
            lines.append(f"{where}: failed: {job.summary.get('error', '?')}")
        elif job.status == "diverged":
            lines.append(f"{where}: diverged: every member {_member_fates(job) or 'non-finite'}")
        elif job.status == INTERRUPTED:
            lines.append(f"{where}: interrupted by {job.summary.get('signal', '?')} after epoch "
                         f"{job.summary.get('epoch', '?')}; resume=true continues it")
        elif job.status not in FINISHED:
            lines.append(f"{where}: status {job.status}")
        else:
            members = job.members(metric)
            bad = sum(v is None for v in members)
            if bad:
                lines.append(f"{where}: {bad}/{len(members)} members left out of the mean "
                             f"({_member_fates(job) or 'non-finite'})")
            elif not members:
                lines.append(f"{where}: no metric {metric!r}")
    return lines


def _member_fates(job: Job) -> str:
    """'2 blown up, 1 diverged' from a job's member_status ('' for a summary without it)."""
    status = job.summary.get("member_status") or []
    counts = {"blown up": status.count("blown_up"), "diverged (non-finite)": status.count("diverged"),
              "no better than the zero function": status.count("no_better_than_zero")}
    return ", ".join(f"{n} {what}" for what, n in counts.items() if n)


def _fmt(cell: Cell | None) -> str:
    if cell is None:
        return ""
    if not cell.values:
        return "diverged" if cell.total else "/".join(sorted(cell.unpooled)) or "failed"
    stats = cell.stats
    text = f"{stats['mean']:.3e} ± {stats['std']:.1e}"
    return text + (f" ({len(cell.values)}/{cell.total})" if len(cell.values) < cell.total else "")


def markdown(jobs: list[Job], metric: str, rows: str, cols: str) -> str:
    """The table as Markdown: mean ± std over members; (n/N) when members were left out."""
    row_keys, col_keys, cells = pivot(jobs, metric, rows, cols)
    out = [f"| {rows} \\ {cols} | " + " | ".join(col_keys) + " |",
           "|---" * (len(col_keys) + 1) + "|"]
    for r in row_keys:
        out.append(f"| {r} | " + " | ".join(_fmt(cells.get((r, c))) for c in col_keys) + " |")
    return "\n".join(out)


def csv_text(jobs: list[Job], metric: str, rows: str, cols: str) -> str:
    """The table as CSV: per column, mean, std and the number of finite/total members."""
    row_keys, col_keys, cells = pivot(jobs, metric, rows, cols)
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow([rows] + [f"{c} {k}" for c in col_keys for k in ("mean", "std", "n_finite", "n")])
    for r in row_keys:
        writer.writerow([r] + [x for c in col_keys for x in cells.get((r, c), Cell()).csv_fields()])
    return buf.getvalue()


def problem_section(issues: list[str]) -> str:
    return "\n## Failed, diverged or incomplete jobs\n\n" + ("\n".join(f"- {i}" for i in issues) or "none")


def report(jobs: list[Job], metric: str, extra: list[str], rows: str, cols: str,
           issues: list[str]) -> str:
    """table.md: the main table, tables of the extra metrics present, and the problem list."""
    parts = [f"# {metric} (mean ± std over members)\n", markdown(jobs, metric, rows, cols)]
    for name in extra:
        if any(name in job.summary.get("metrics", {}) for job in jobs):
            parts += [f"\n## {name}\n", markdown(jobs, name, rows, cols)]
    return "\n".join(parts + [problem_section(issues)]) + "\n"


def _first_jobs(jobs: list[Job], rows: str, cols: str) -> dict[tuple[str, str], Job]:
    """The first completed job of every (row, column) cell, for plots."""
    first = {}
    for job in jobs:
        if job.status == "completed":
            first.setdefault((_label(job.value(rows)), _label(job.value(cols))), job)
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
    """The member with the median test error among the ok members (any member when none is ok)."""
    err = ((pred["y_pred"] - pred["y_true"][None]) ** 2).mean(axis=(1, 2))
    if len(ok) == len(err) and any(ok):
        err = np.where(ok, err, np.inf)
    err = np.where(np.isfinite(err), err, np.inf)
    return int(np.argsort(err)[(np.isfinite(err).sum() - 1) // 2 if np.isfinite(err).any() else 0])


def plot_function_fits(jobs: list[Job], rows: str, cols: str, plot_dir: Path) -> list[Path]:
    """f and f' per one-input column, or error contours per two-input column.

    Each row shows its median member (by test error, among the ok members), as a single trained
    network.
    """
    plt = pyplot()
    first = _first_jobs(jobs, rows, cols)
    preds = {key: (p, [f == "ok" for f in job.summary.get("member_status") or []])
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
    from matplotlib.colors import LogNorm

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


def groups(jobs: list[Job], by: list[str]) -> dict[tuple, list[Job]]:
    """Jobs (every status) by their values of the `by` keys, in order of appearance."""
    grouped: dict[tuple, list[Job]] = {}
    for job in jobs:
        grouped.setdefault(tuple(_label(job.value(k)) for k in by), []).append(job)
    return grouped


def grouped_report(jobs: list[Job], by: list[str], metrics: list[str],
                   issues: list[str]) -> tuple[str, str]:
    """(Markdown, CSV) of one row per group: job counts and mean ± std of each metric."""
    head = by + ["completed", "jobs"]
    md = ["| " + " | ".join(head + metrics) + " |", "|---" * (len(head) + len(metrics)) + "|"]
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(head + [f"{m} {k}" for m in metrics for k in ("mean", "std", "n_finite", "n")])
    for key, group in groups(jobs, by).items():
        done = sum(job.status == "completed" for job in group)
        cells = [Cell() for _ in metrics]
        for cell, m in zip(cells, metrics):
            for job in group:
                cell.add(job, m)
        md.append("| " + " | ".join([*key, str(done), str(len(group))] + [_fmt(c) for c in cells]) + " |")
        writer.writerow([*key, done, len(group)] + [x for c in cells for x in c.csv_fields()])
    text = "\n".join([f"# Final metrics by {', '.join(by)} (mean ± std over jobs and members)\n",
                      "\n".join(md), problem_section(issues)]) + "\n"
    return text, buf.getvalue()


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


def wandb_target(jobs: list[Job], out: Path) -> dict:
    """Where a sweep's summary run goes: the jobs' W&B group (the one they share, else the output
    directory's name) and the logger settings of a job that used W&B (else conf/logger/wandb.yaml)."""
    from omegaconf import OmegaConf

    from runner.config import CONF_DIR
    from runner.loggers import wandb_mode

    settings = next((job.summary["config"]["logger"] for job in jobs
                     if job.summary.get("config", {}).get("logger", {}).get("kind") == "wandb"), None)
    if settings is None:
        settings = OmegaConf.to_container(OmegaConf.load(Path(CONF_DIR) / "logger" / "wandb.yaml"))
    group_names = {job.summary["group"] for job in jobs if job.summary.get("group")}
    return {"project": settings.get("project") or "runner", "entity": settings.get("entity"),
            "mode": wandb_mode(settings.get("mode") or "auto"),
            "group": group_names.pop() if len(group_names) == 1 else out.name}


def aggregate(dirs: list[Path], out: Path | None = None, metric: str = METRIC, extra: tuple[str, ...] = (),
              rows: str = ROWS, cols: str = COLS, plots: bool = True,
              by: list[str] | None = None, heatmap: bool = False, wandb: bool = False) -> dict:
    """Write table.md, table.csv and plots/ for the jobs under `dirs`; return what was written.
    With `by`, one row per group of those keys and `metric` + `extra` as columns; with `heatmap`
    (rows x columns layout), also plots/<metric>_heatmap.png; with `wandb`, the tables and plots
    also go to one W&B summary run of the jobs' group (its directory under `wandb_run`)."""
    jobs = collect(dirs)
    if not jobs:
        raise FileNotFoundError(f"no job directories under {', '.join(map(str, dirs))}")
    out = Path(out or dirs[0])
    issues = problems(jobs, metric, by or [rows, cols])
    if by:
        text, table = grouped_report(jobs, by, [metric, *extra], issues)
        tables = {"by_" + "_".join(by): table}
    else:
        text, table = report(jobs, metric, list(extra), rows, cols, issues), csv_text(jobs, metric, rows, cols)
        tables = {name: table if name == metric else csv_text(jobs, name, rows, cols) for name in [metric, *extra]
                  if name == metric or any(name in job.summary.get("metrics", {}) for job in jobs)}
    write_bytes_atomic(out / "table.md", text.encode())
    write_bytes_atomic(out / "table.csv", table.encode())
    written = {"table.md": out / "table.md", "table.csv": out / "table.csv", "plots": [],
               "problems": issues}
    if plots and by:
        if plot_group_curves(jobs, by, out / "plots" / "curves.png"):
            written["plots"].append(out / "plots" / "curves.png")
    elif plots:
        if plot_loss_curves(jobs, rows, cols, out / "plots" / "loss_curves.png"):
            written["plots"].append(out / "plots" / "loss_curves.png")
        written["plots"] += plot_function_fits(jobs, rows, cols, out / "plots")
        if heatmap and plot_heatmap(jobs, metric, rows, cols, out / "plots" / f"{metric}_heatmap.png"):
            written["plots"].append(out / "plots" / f"{metric}_heatmap.png")
    if wandb:
        from runner.tracking import report_sweep

        counts: dict[str, int] = {}
        for job in jobs:
            counts[job.status] = counts.get(job.status, 0) + 1
        try:
            written["wandb_run"] = report_sweep(tables, written["plots"], counts, save_dir=out,
                                                **wandb_target(jobs, out))
        except Exception as exc:  # noqa: BLE001 - W&B's own errors (network, login)
            raise TrackerError(f"{type(exc).__name__}: {exc}") from exc
    return written


class AggregateSweep(Callback):
    """Hydra callback: when a multirun ends, `aggregate` of its sweep directory with the preset's
    arguments (e.g. experiment=pinn_suite: rel_l2 per activation x equation, with its heat map)."""

    def __init__(self, metric: str, extra: list[str], rows: str, cols: str, heatmap: bool, by: list[str] | None):
        self.arguments = {"metric": metric, "extra": tuple(extra), "rows": rows, "cols": cols, "heatmap": heatmap,
                          "by": list(by) if by else None}

    def on_multirun_end(self, config, **kwargs) -> None:
        try:
            written = aggregate([Path(config.hydra.sweep.dir)], **self.arguments)
        except FileNotFoundError:  # no job directory: the sweep started nothing
            return
        log.info("%s of the sweep: %s", self.arguments["metric"], written["table.md"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m runner.aggregate", description=__doc__.splitlines()[0])
    parser.add_argument("dirs", nargs="+", type=Path, help="multirun (sweep) or run directories")
    parser.add_argument("--metric", default=METRIC,
                        help="summary metric of the main table (with --by: comma-separated metrics)")
    parser.add_argument("--by", default=None,
                        help="comma-separated override/config keys to group by, e.g. task,activation")
    parser.add_argument("--extra", default="", help="comma-separated metrics tabulated below it in table.md")
    parser.add_argument("--rows", default=ROWS, help="dotted config key of the rows")
    parser.add_argument("--cols", default=COLS, help="dotted config key of the columns")
    parser.add_argument("--out", type=Path, default=None, help="where to write (default: first dir)")
    parser.add_argument("--heatmap", action="store_true",
                        help="also plots/<metric>_heatmap.png: median per row x column (not with --by)")
    parser.add_argument("--no-plots", action="store_true")
    parser.add_argument("--wandb", action="store_true",
                        help="also log the tables and plots to one summary run in the jobs' W&B group")
    args = parser.parse_args(argv)
    for d in args.dirs:
        if not d.is_dir():
            print(f"runner.aggregate: error: {d} is not a directory", file=sys.stderr)
            return 2
    try:
        metric, *more = args.metric.split(",")
        extra = more if args.by else list(filter(None, args.extra.split(",")))
        by = args.by.split(",") if args.by else None
        written = aggregate(args.dirs, args.out, metric, tuple(extra), args.rows, args.cols,
                            plots=not args.no_plots, by=by, heatmap=args.heatmap, wandb=args.wandb)
    except FileNotFoundError as exc:
        print(f"runner.aggregate: error: {exc}", file=sys.stderr)
        return 2
    except TrackerError as exc:
        print(f"runner.aggregate: error: the tables are written but W&B did not get them: {exc}",
              file=sys.stderr)
        return 1
    print(written["table.md"].read_text())
    print(f"wrote {written['table.md']}, {written['table.csv']}"
          + "".join(f", {p}" for p in written["plots"])
          + (f"; W&B summary run in {written['wandb_run']}" if written.get("wandb_run") else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
