"""Beyond the papers: Paper B's Burgers ranking on every PDE preset (sweep `pinn_suite`,
experiment=pinn_suite), with its own report section: median rel_l2 per activation x equation
and the claim S1."""

from __future__ import annotations

from runner.results.jobs import Job
from runner.results.claims import PAIRED, Claim, members, ranking_check, select
from runner.papers.base import Checked, Paper, SweepView
from runner.papers.kimkang import PINN_ORDER, note_mrepu_failures
from runner.results.summary import member_stats

CLAIMS = [
    Claim("S1", "B, Figs. 15-17, on the PINN suite",
          "Paper B's Burgers ranking holds on every equation of the suite: GELU < Tanh < MRePU < ReLU",
          ("pinn_suite",), f"per equation (task.name), relative L2 error GELU < Tanh, Tanh < MRePU and MRePU < "
          f"ReLU: {PAIRED} (B13's rule); every activation at init.C_W=auto (the default)",
          note_mrepu_failures(ranking_check("rel_l2", PINN_ORDER, key="task.name"), "rel_l2",
                              "at init.C_W=auto")),
]


def section(sweeps: dict[str, list[Job]], checked: Checked, alpha: float) -> list[str]:
    """Median rel_l2 over members per activation x equation (the claim S1 has its own section)."""
    jobs = sweeps.get("pinn_suite", [])
    lines = ["## Beyond the papers: PINN suite", "",
             "Paper B's PINN comparison on every PDE preset (`experiment=pinn_suite`, docs/pde.md). Median "
             "rel_l2 over members (finite/total); heat map: figure pinn_suite-rel_l2_heatmap below.", ""]
    if jobs:
        equations = list(dict.fromkeys(j.value("task.name") for j in select(jobs)))
        lines += ["| activation | " + " | ".join(equations) + " |", "|---" * (len(equations) + 1) + "|"]
        for act in dict.fromkeys(j.value("activation") for j in select(jobs)):
            cells = []
            for eq in equations:
                values = members(select(jobs, activation=act, task__name=eq), "rel_l2")
                stats = member_stats(values)
                cells.append(f"{stats['median']:.3g} ({stats['n_finite']}/{len(values)})" if stats["n_finite"]
                             else f"none finite (0/{len(values)})" if len(values) else "")
            lines.append(f"| {act} | " + " | ".join(cells) + " |")
    else:
        lines.append("Not run at this scale.")
    return lines


PAPER = Paper(
    claims=CLAIMS,
    views={"pinn_suite": SweepView("rel_l2", ("activation", "task.name"),
                                   {"metric": "rel_l2", "extra": ("max_abs_error",), "cols": "task.name",
                                    "heatmap": True})},
    section=section, beyond_papers=True)
