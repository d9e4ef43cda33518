"""A sweep as a table a notebook loads: one row per ensemble member of every run.

    from runner.results import load
    df = load("outputs/multirun/2026-12-05_10-00-00")      # a run, a sweep, or a report's runs/ folder
    df[df.counted].groupby("activation").rel_l2.median()

Columns: `path` and `status` of the run; the sweep's overrides as typed (one column per key that
is not one of the standard columns); `activation`, `task`, `seed`; `member` (its random stream,
ensemble.member_offset + k); the resolved init (`init_scheme`, `C_W_first`, `C_W`, `C_b`); the
member's `fate` (runner.results.record.RunRecord.fates), `converged` and `improvement`; then the
two rules every table, plot, claim and `runner.aggregate --vs` applies, one column each:

- `counted`: the member is ok, so its value counts: it enters every mean, median and table
  (runner.results.record.RunRecord.members, which also leaves out non-finite values); a member not counted
  enters a comparison only as the worst value (+inf).
- `decided`: the member converged or failed (runner.results.verdicts.Arm.decided), so where it
  stands is final. A paired comparison (--vs, the claims) keeps a pair whose members are both
  decided, or whose order is settled anyway; it drops the others, and says how many.

`df[df.counted]` is what a table pools; `df[df.counted & df.decided]` what a comparison is sure of.
Then every final metric, the member's value as summary.json records it (NaN where it has none).
A run without members (failed before training) is one row with no member.
"""

from __future__ import annotations

import math
from pathlib import Path

from runner.results.files import atomic_path
from runner.results.jobs import Job, collect
from runner.results.verdicts import Arm

STANDARD = ("path", "status", "activation", "task", "seed", "member", "init_scheme", "C_W_first", "C_W", "C_b",
            "fate", "converged", "improvement", "counted", "decided")


def find_jobs(path: Path) -> list[Job]:
    """The jobs under `path`: a run directory, a sweep of them, or a folder of sweeps (a report's runs/)."""
    path = Path(path)
    jobs = collect([path])
    if jobs:
        return jobs
    return [job for sweep in sorted(p for p in path.iterdir() if p.is_dir()) for job in collect([sweep])]


def member_rows(job: Job) -> list[dict]:
    """The rows of one run (module docstring)."""
    record = job.record
    init = record.used_init() or {}
    offset = int(record.setting("ensemble.member_offset") or 0)
    base = {"path": str(job.path), "status": job.status,
            **{k: v for k, v in job.overrides.items() if k not in STANDARD},
            "activation": record.activation or job.value("activation"),
            "task": record.task or job.value("task"), "seed": job.value("seed") if record.seed is None else record.seed,
            "init_scheme": init.get("scheme"), "C_W_first": init.get("C_W_first"), "C_W": init.get("C_W"),
            "C_b": init.get("C_b")}
    names = record.metric_names()
    size = max([len(record.values(name)) for name in names] + [0])
    if not size:
        return [{**base, "member": None}]
    fates = job.fates(names[0])
    converged = record.member_converged or []
    improvement = record.improvement(size)
    values = job.members(names[0])
    flags = record.converged(len(values))
    decided = Arm("", values, fates, flags).decided if len(fates) == len(values) else [False] * len(values)
    rows = []
    for k in range(size):
        fate = fates[k] if k < len(fates) else None
        row = {**base, "member": offset + k, "fate": fate,
               "converged": converged[k] if k < len(converged) else None,
               "improvement": improvement[k], "counted": fate == "ok",
               "decided": bool(decided[k]) if k < len(decided) else False}
        for name in names:
            values = record.values(name)
            value = values[k] if k < len(values) else None
            row[name] = math.nan if value is None else value
        rows.append(row)
    return rows


def load(path: str | Path):
    """A pandas DataFrame with one row per member of every run under `path` (module docstring)."""
    import pandas as pd  # startup: pandas loads only where a DataFrame is asked for

    jobs = find_jobs(Path(path))
    if not jobs:
        raise FileNotFoundError(f"no run under {path}")
    frame = pd.DataFrame([row for job in jobs for row in member_rows(job)])
    order = [c for c in STANDARD if c in frame.columns]
    return frame[order + [c for c in frame.columns if c not in order]]


def export(path: str | Path, out: str | Path) -> Path:
    """load(path) written to `out`: parquet for .parquet, CSV for .csv."""
    out = Path(out)
    if out.suffix not in (".parquet", ".csv"):
        raise ValueError(f"{out}: the file must end in .parquet or .csv")
    frame = load(path)
    with atomic_path(out) as tmp:
        frame.to_parquet(tmp, index=False) if out.suffix == ".parquet" else frame.to_csv(tmp, index=False)
    return out
