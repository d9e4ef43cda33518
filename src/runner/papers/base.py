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

    Without `section`, the claims are rows of the report's claims table (and its count of
    verdicts); with one, the report checks the claims and `section(sweeps, checked, alpha)`
    renders them with whatever else it shows, after the rules (Markdown lines; `sweeps`: the jobs
    of every sweep that ran, by name).
    """

    claims: list[Claim]
    views: dict[str, SweepView] = field(default_factory=dict)
    section: Callable[[dict[str, list[Job]], Checked, float], list[str]] | None = None


MEASURED = "runner measured (per test: n, p, effect [95% interval], converged members)"


def cell(text: str) -> str:
    """Text as one Markdown table cell."""
    return text.replace("|", "\\|").replace("\n", " ")


def claim_row(claim: Claim, outcome: Outcome) -> str:
    """| claim | paper says | runner measured | verdict | for one claim."""
    why = outcome.why if outcome.why != outcome.measured else ""
    verdict = f"**{outcome.verdict}**" + (f": {why}" if why else "")
    return f"| {claim.id} ({claim.paper}) | {cell(claim.says)} | {cell(outcome.measured)} | {cell(verdict)} |"


def claims_table(checked: Checked) -> list[str]:
    """The checked claims as a Markdown table, one row each."""
    return [f"| claim | paper says | {MEASURED} | verdict |", "|---|---|---|---|",
            *(claim_row(claim, outcome) for claim, outcome, _ in checked)]
