"""Run records for tests: what runner.run writes to summary.json (runner.results.record.RunRecord),
built from the few values a test is about, as a record, a job or a run directory on disk."""

from __future__ import annotations

from pathlib import Path

from runner.results.jobs import Job
from runner.results.record import RunRecord
from runner.results.summary import member_stats


def record(metrics: dict[str, list[float | None]] | None = None, *, status: str = "completed",
           fates: list[str] | None = None, converged: list[bool] | None = None,
           improvement: list[float | None] | None = None, **fields) -> RunRecord:
    """A record whose final metrics are these members' values (None: not finite), with each
    metric's statistics as a run computes them (member_stats); `fates`, `converged` and
    `improvement` are member_status, member_converged and member_improvement (None: not recorded,
    as for a task that trains nothing); any other field of RunRecord by name."""
    stats = None if metrics is None else {name: member_stats(values) for name, values in metrics.items()}
    return RunRecord(status, metrics=stats, member_status=fates, member_converged=converged,
                     member_improvement=improvement, **fields)


def job(rec: RunRecord, overrides: dict[str, str] | None = None, path: str = "/fake") -> Job:
    """A job of `rec` that lives nowhere on disk."""
    return Job(Path(path), rec, overrides or {})


def write_run(run_dir: Path, rec: RunRecord | None, overrides: list[str] = ()) -> Path:
    """A run directory as a sweep leaves it: .hydra/overrides.yaml and, unless `rec` is None (a job
    still running, or killed), summary.json."""
    (run_dir / ".hydra").mkdir(parents=True)
    (run_dir / ".hydra" / "overrides.yaml").write_text("".join(f"- {o}\n" for o in overrides))
    if rec is not None:
        rec.write(run_dir)
    return run_dir
