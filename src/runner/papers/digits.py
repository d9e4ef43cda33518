"""Beyond the papers: the vision stand-in (sweep `digits`, experiment=digits), a report section
of test and train accuracy per activation; no claim."""

from __future__ import annotations

from runner.results.jobs import Job
from runner.results.claims import members, select, stats
from runner.papers.base import Checked, Paper, SweepView


def section(sweeps: dict[str, list[Job]], checked: Checked, alpha: float) -> list[str]:
    """Test and train accuracy per activation: mean ± std, median over members."""
    lines = ["## Beyond the papers: digits (vision stand-in)", ""]
    digits = sweeps.get("digits", [])
    if not digits:
        return lines + ["Not run at this scale."]
    lines += ["| activation | test accuracy | train accuracy |", "|---|---|---|"]
    for act in dict.fromkeys(j.value("activation") for j in digits):
        chosen = select(digits, activation=act)
        lines.append(f"| {act} | {stats(members(chosen, 'test_acc'))} | {stats(members(chosen, 'train_acc'))} |")
    return lines


PAPER = Paper(claims=[], views={"digits": SweepView("test_acc", ("activation", "task.target"))}, section=section,
              beyond_papers=True)
