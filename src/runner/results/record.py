"""summary.json as a type: `RunRecord`, what runner.run writes at the end of a run and what every
table, plot, claim, screen, tracker and export reads.

A field a run did not reach is None and left out of the file: a run that failed has no metrics,
a task that trains nothing has no member fates, and summaries written before a key existed lack
it. Keys the record does not know are kept in `extra`, so `RunRecord.from_json(d).to_json() == d`
for every summary on disk, old ones included (tests/test_record.py loads every committed one).

The reading rules live here, once:
- `current_status`: the status read by today's rule (runner.results.summary.run_status);
- `fates`: each member's fate, the one rule of which members failed;
- `members`: the members that count (fate ok, finite), for every table, plot, claim and export;
- `used_init`: the init as numbers, also from summaries that predate `resolved_init`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from runner.results.files import write_json_atomic
from runner.results.summary import FINISHED, INTERRUPTED, RUNNING, run_status

MISSING = "missing"  # the status of a run directory without summary.json (still running, or killed)
NOT_ENDED = (MISSING, RUNNING, INTERRUPTED)  # a job with one of these has not ended: it runs again (skip_completed)
FILE = "summary.json"


def written_with(other: str) -> Any:
    """A field written whenever field `other` is, even when it is None (null in the file)."""
    return field(default=None, metadata={"written_with": other})


@dataclass
class RunRecord:
    """One run's summary.json (module docstring). The fields come in the order the file has them."""

    status: str                                  # runner.results.summary.FINISHED, failed, interrupted, running
    # who the run is (runner.run.job_identity) and where it ran
    task: str | None = None                      # the task's own name
    activation: str | None = None                # the activation's own name (a formula's activation.name)
    overrides: list[str] | None = None           # the command line's overrides of this job
    seed: int | None = None
    ensemble_size: int | None = None
    name: str | None = None
    group: str | None = None
    tags: list[str] | None = None
    host: str | None = None
    slurm_job_id: str | None = written_with("host")  # null off SLURM
    # the init, and what the theory says of it before training
    init: dict | None = None                     # conf/init as written (C_W may read "auto")
    resolved_init: dict | None = None            # the numbers it drew from: {scheme, C_W_first, C_W, C_b}
    init_forecast: dict | None = None            # runner.theory.forecast.Forecast.as_dict()
    criticality: dict | None = None              # runner.theory.criticality.Criticality.as_dict()
    numerics: dict | None = None                 # the float kernels behind the numbers (runner.numerics.record)
    # a run that trained to the end
    compile: dict | None = None                  # whether its steps were compiled, from which epoch, and why
    member_status: list[str] | None = None       # each member's fate (runner.results.summary.member_status)
    diverged_members: int | None = None          # how many members are not ok
    loss_history: dict | None = None             # {"epochs": [...], "members": [[loss per logged epoch] per member]}
    member_converged: list[bool] | None = None   # runner.results.summary.member_convergence, per member
    member_improvement: list[float | None] | None = None
    # a run that finished: per final metric, runner.results.summary.member_stats of its members
    metrics: dict[str, dict] | None = None
    # a run that Ctrl-C or SIGTERM stopped: the signal's name and the epochs its checkpoint holds
    signal: str | None = None
    epoch: int | None = written_with("signal")
    # a run that failed: the exception in one line, and where it was raised
    error: str | None = None
    traceback: str | None = None
    # every run that got as far as starting
    duration_s: float | None = None
    config: dict | None = None                   # the whole composed config, resolved
    extra: dict = field(default_factory=dict)    # keys of the file this record does not know

    # ---- the file -------------------------------------------------------------------------------
    @classmethod
    def from_json(cls, data: dict) -> RunRecord:
        """The record of a summary.json's contents (any summary the runner ever wrote)."""
        names = {f.name for f in fields(cls)} - {"extra"}
        known = {key: value for key, value in data.items() if key in names}
        known.setdefault("status", "unknown")
        return cls(**known, extra={key: value for key, value in data.items() if key not in names})

    def to_json(self) -> dict:
        """summary.json's contents: every field that is not None (and the ones written with it),
        then `extra`. The nested values are the record's own, not copies."""
        out = {}
        for f in fields(self):
            if f.name == "extra":
                continue
            value, partner = getattr(self, f.name), f.metadata.get("written_with")
            if value is not None or (partner and getattr(self, partner) is not None):
                out[f.name] = value
        return {**out, **self.extra}

    @classmethod
    def read(cls, run_dir: Path) -> RunRecord | None:
        """The record of a run directory, or None when it has no summary.json (yet)."""
        path = Path(run_dir) / FILE
        return cls.from_json(json.loads(path.read_text())) if path.exists() else None

    def write(self, run_dir: Path) -> None:
        """summary.json in `run_dir`, written atomically (runner.results.files)."""
        write_json_atomic(Path(run_dir) / FILE, self.to_json())

    # ---- reading it -----------------------------------------------------------------------------
    def current_status(self) -> str:
        """The status by today's rule: a run that trained to the end and records its members'
        fates gets run_status of them (summaries written before `partly_learned` and `not_learned`
        existed call a run whose members ended no better than zero `diverged` or
        `partly_diverged`); any other status (failed, interrupted, running, missing) as written."""
        if self.status in FINISHED and self.member_status:
            return run_status(list(self.member_status))
        return self.status

    def metric_names(self) -> list[str]:
        """The final metrics the run recorded (none for a run that did not finish)."""
        return list(self.metrics or {})

    def stats(self, metric: str) -> dict | None:
        """runner.results.summary.member_stats of `metric`, or None when the run has no such metric."""
        return (self.metrics or {}).get(metric)

    def values(self, metric: str) -> list[float | None]:
        """Every member's value of `metric` as recorded (None where it was not finite); [] when
        the run has no such metric. One value for a metric of the whole run (a theory quantity)."""
        return list((self.stats(metric) or {}).get("members") or [])

    def fates(self, metric: str) -> list[str]:
        """Each member's fate, one per value of `metric`: the run's member_status
        (runner.results.summary.member_status); for a run without one (a task that trains nothing,
        a metric with one value per run, a summary from before fates) `ok` where the value is
        finite, else `diverged`. The one rule of which members failed."""
        values = self.values(metric)
        if self.member_status and len(self.member_status) == len(values):
            return list(self.member_status)
        return ["ok" if v is not None else "diverged" for v in values]

    def members(self, metric: str) -> list[float | None]:
        """Every member's value of `metric`; None where it is not finite, or where the member
        diverged, blew up or ended no better than the zero function (`fates`). The one rule of
        which members count, for every table, plot and claim."""
        return [v if fate == "ok" else None for v, fate in zip(self.values(metric), self.fates(metric))]

    def converged(self, n: int) -> list[bool]:
        """Whether each of `n` members converged; False where the record does not say (a member
        not known to have converged is undecided)."""
        flags = [bool(c) for c in self.member_converged or []]
        return (flags + [False] * n)[:n]

    def improvement(self, n: int) -> list[float | None]:
        """Each of `n` members' improvement over the convergence tail; None where not recorded."""
        return (list(self.member_improvement or []) + [None] * n)[:n]

    def used_init(self) -> dict | None:
        """The init the run used, as numbers ({scheme, C_W_first, C_W, C_b}): `resolved_init`
        (a summary without one holds the numbers in `init`); None for a run that failed before
        its init was resolved."""
        init = self.resolved_init or self.init or {}
        return dict(init) if isinstance(init.get("C_W"), (int, float)) else None

    def setting(self, dotted: str) -> Any:
        """A value of the run's config by dotted key, e.g. 'model.depth'; None when absent."""
        node: Any = self.config or {}
        for part in dotted.split("."):
            if not isinstance(node, dict) or part not in node:
                return None
            node = node[part]
        return node
