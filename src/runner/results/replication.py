"""Two runs of the same sweep, member by member: how many members came out with identical bits,
and how far the others moved (the median |ln ratio| of each final metric). A rerun under another
kernel set (runner.numerics) is compared with the committed runs this way."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from runner.results.jobs import Job

# Overrides that say how a job ran, not what it computed: left out when matching jobs.
HOW = ("numerics.kernels", "threads", "skip_completed", "resume")


def job_key(job: Job) -> frozenset:
    """What a job computed: its overrides, without those of HOW."""
    return frozenset((k, str(v)) for k, v in job.overrides.items() if k not in HOW and not k.startswith("hydra"))


@dataclass(frozen=True)
class SweepComparison:
    """One sweep run twice: jobs matched by their overrides; members compared on every final metric
    both runs have (every member's value, whatever its fate)."""

    jobs: int                  # jobs present in both
    unmatched: int             # jobs present in only one of them
    members: int               # members compared
    identical: int             # members whose every final metric has the same bits in both
    moved: dict[str, float]    # metric -> median |ln(b/a)| over members with both values finite and positive
    fates_changed: int         # members whose fate differs


def member_values(job: Job) -> dict[str, list[float | None]]:
    """Every final metric with one value per member (a run's whole-ensemble numbers left out)."""
    n = len(job.record.member_status or []) or job.record.ensemble_size
    return {name: job.record.values(name) for name in job.record.metric_names() if len(job.record.values(name)) == n}


def compare(original: list[Job], replica: list[Job]) -> SweepComparison:
    """Member by member, the jobs of `original` against those of `replica` with the same overrides."""
    theirs = {job_key(j): j for j in original if j.record.metrics}
    ours = {job_key(j): j for j in replica if j.record.metrics}
    both = [k for k in theirs if k in ours]
    members = identical = fates_changed = 0
    ratios: dict[str, list[float]] = {}
    for key in both:
        a, b = member_values(theirs[key]), member_values(ours[key])
        names = [m for m in a if m in b and len(a[m]) == len(b[m])]
        n = len(a[names[0]]) if names else 0
        members += n
        for k in range(n):
            identical += all(a[m][k] == b[m][k] for m in names)  # None == None: both non-finite
        for m in names:
            x, y = np.array([np.nan if v is None else v for v in a[m]]), np.array([np.nan if v is None else v for v in b[m]])
            ok = np.isfinite(x) & np.isfinite(y) & (x > 0) & (y > 0)
            ratios.setdefault(m, []).extend(np.abs(np.log(y[ok] / x[ok])).tolist())
        fa, fb = theirs[key].record.member_status or [], ours[key].record.member_status or []
        fates_changed += sum(x != y for x, y in zip(fa, fb))
    moved = {m: float(np.median(r)) if r else math.nan for m, r in ratios.items()}
    return SweepComparison(len(both), len(set(theirs) ^ set(ours)), members, identical, moved, fates_changed)
