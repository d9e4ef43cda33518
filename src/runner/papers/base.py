"""What a paper (or your own study) gives the report: its claims, how its sweeps are shown, and
any section of its own."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from runner.results.jobs import Job
from runner.results.claims import Claim, Outcome

# (claim, its outcome, the jobs it read), in the order of the paper's claims
Checked = list[tuple[Claim, Outcome, list[Job]]]


@dataclass(frozen=True)
class SweepView:
    """How the report shows one sweep of conf/reproduce/<scale>.yaml.

    A sweep of several jobs is aggregated (runner.aggregate) with `aggregate`'s arguments, or by
    activation with `metric` when there are none; a sweep of one job shows that job's own plots.
    """

    metric: str | None        # whose left-out members the report lists per job; None: each job's first metric
    labels: tuple[str, ...]   # config keys that name a job in that list
    aggregate: dict | None = None    # runner.aggregate.aggregate's keyword arguments
    per_job_plot: str | None = None  # instead of the sweep's figures, this plot of every job, named by activation


DEFAULT_VIEW = SweepView(metric=None, labels=("activation", "task.name"))


@dataclass(frozen=True)
class Paper:
    """One module of runner.papers: its claims on the sweeps they name, its views of sweeps, and
    optionally a section of its own.

    Every claim is a row of the report's first table and has a section of its own (runner.papers.report);
    `section(sweeps, checked, alpha)` adds what else the paper shows (Markdown lines; `sweeps`: the
    jobs of every sweep that ran, by name). `beyond_papers`: a study beyond the two papers, whose
    claims the report's count of verdicts leaves out.
    """

    claims: list[Claim]
    views: dict[str, SweepView] = field(default_factory=dict)
    section: Callable[[dict[str, list[Job]], Checked, float], list[str]] | None = None
    beyond_papers: bool = False
