"""The screen's findings, read from its runs: the test networks at `init.C_W=auto`, the stable
window of the card's phase diagram, the candidate against each baseline (the claims' own
versus_check) and the extrapolation shapes of Paper A's targets."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
from hydra.core.override_parser.overrides_parser import OverridesParser

from runner.config import compose, expand
from runner.results.claims import members, select, versus_check
from runner.results.jobs import Job, collect
from runner.results.record import RunRecord
from runner.results.tables import evidence
from runner.results.verdicts import CONTRADICTED, REPRODUCED, decisions, share
from runner.run import build
from runner.screen.plan import Screen
from runner.tasks.extrapolation import SHAPES, member_shapes

WORDS = {REPRODUCED: "better", CONTRADICTED: "worse"}  # a comparison's verdict, read for a screen


def networks(screen: Screen) -> list[dict]:
    """Per panel group, its first job's network: the init `init.C_W=auto` picks for its inputs
    and the kernel forecast there, and at the preset's own init (the paper's C_W)."""
    rows = []
    for group, spec in screen.plan["panel"].items():
        first = expand(OverridesParser.create().parse_overrides(spec["overrides"]))[0]  # the sweep's first job
        base = [f"experiment={spec['experiment']}", *(o for o in first if not o.startswith(("init=", "init.C_W="))),
                *screen.overrides]
        auto = build(compose(*base, "init=critical", "init.C_W=auto", config_dir=screen.config_dir))
        preset = build(compose(*base, config_dir=screen.config_dir))
        (init, fc), (p_init, p_fc) = auto.resolve_init(), preset.resolve_init()
        rows.append({"group": group, "task": auto.task.name, "network": f"{auto.model.depth}x{auto.model.width}",
                     "auto": init.as_dict(), "forecast": fc.as_dict(), "preset": p_init.as_dict(),
                     "preset_forecast": p_fc.as_dict()})
    return rows

def comparisons(screen: Screen) -> list[dict]:
    """Per group and metric, the candidate against each baseline (versus_check): the verdict
    read as better / worse / cannot tell, the evidence, and the tests."""
    out = []
    for group, spec in screen.plan["panel"].items():
        jobs = group_jobs(screen, group)
        for metric, what in (spec.get("metrics") or {}).items():
            for baseline in screen.plan["baselines"]:
                outcome = versus_check(metric, baseline, spec["key"], candidates=(screen.name,))(jobs, screen.alpha)
                decided = decisions(list(outcome.tests), screen.alpha)
                out.append({"group": group, "metric": metric, "what": what, "baseline": baseline,
                            "verdict": WORDS.get(outcome.verdict, "cannot tell"), "outcome": outcome,
                            "decided": decided, "evidence": evidence(outcome, decided, screen.alpha)})
    return out

def group_jobs(screen: Screen, group: str) -> list[Job]:
    """The candidate's and the baselines' jobs of one panel group."""
    runs = screen.out / "runs"
    return [job for side in ("candidate", "baselines") if (runs / f"{group}-{side}").is_dir()
            for job in collect([runs / f"{group}-{side}"])]

def shapes(screen: Screen) -> list[dict]:
    """Per group with `shapes`, activation and target: how many trained members take each shape
    (one shape per member: runner.tasks.extrapolation.member_shapes) and the shape a majority
    takes (one-sided Clopper-Pearson above 0.5), if any."""
    rows = []
    for group, spec in screen.plan["panel"].items():
        if not spec.get("shapes"):
            continue
        jobs = group_jobs(screen, group)
        for act in [screen.name, *screen.plan["baselines"]]:
            for column in dict.fromkeys(j.value(spec["key"]) for j in select(jobs)):
                chosen = select(jobs, activation=act, **{spec["key"].replace(".", "__"): column})
                shapes = member_shapes({shape.metric: members(chosen, shape.metric) for shape in SHAPES})
                trained = [x for x in shapes if isinstance(x, str)]  # one shape per trained member
                counts = {shape.name: (trained.count(shape.name), len(trained)) for shape in SHAPES}
                taken = [name for name, (k, n) in counts.items()
                         if n and share(name, k, n, 0.5, screen.alpha).p < screen.alpha]
                rows.append({"activation": act, "target": column, "shape": ", ".join(taken) or "none clear",
                             **{f"{name} members": f"{k}/{n}" for name, (k, n) in counts.items()}})
    return rows


def pd_window(run_dir: Path) -> dict:
    """The theory's stable C_W range at the input scale nearest K0 = 1 (phase_diagram.csv)."""
    with open(run_dir / "phase_diagram.csv") as f:
        rows = [{k: float(v) if k != "theory_fate" else v for k, v in r.items()} for r in csv.DictReader(f)]
    depth = RunRecord.read(run_dir).setting("model.depth")
    K0 = min({r["K0"] for r in rows}, key=lambda k: abs(np.log(k)))
    stable = sorted(r["C_W"] for r in rows if r["K0"] == K0 and r["theory_fate"] == "stable")
    text = (f"C_W {stable[0]:.3g} to {stable[-1]:.3g} at K0 = {K0:.3g}" if stable
            else f"no stable C_W at K0 = {K0:.3g}")
    return {"depth": depth, "K0": K0, "C_W": stable, "text": text}
