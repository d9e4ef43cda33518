"""Paper A (Tsvetkova 2020): how activations extrapolate x² and x³, and spectral-norm regularization.

Sweep `tsvetkova` (conf/reproduce/<scale>.yaml; experiment=tsvetkova_sn): targets x2, x3 x
activations relu, leaky_relu, tanh, sin x penalty coefficients λ.
"""

from __future__ import annotations

from runner.results import verdicts, wording
from runner.results.jobs import Job
from runner.results.claims import PAIRED, SHARE, Claim, Outcome, decide, nothing, paired_test, per_member_rule, select
from runner.papers.base import Paper, SweepView
from runner.tasks.extrapolation import SHAPE

TARGETS, ACTS = ("x2", "x3"), ("relu", "leaky_relu", "tanh", "sin")


def lam0(target: str, act: str) -> dict:
    return {"task": target, "activation": act, "regularizer__coef": 0}


def _name(where: dict) -> str:
    return " ".join(str(v) for k, v in where.items() if k != "regularizer__coef")


def spectral_norm_check(jobs: list[Job], alpha: float) -> Outcome:
    """Per (target, activation): member k's extrapolation MSE with the penalty below member k's
    without it (the same seed and member: the same initial weights) for some λ > 0 (Bonferroni
    over the λ values), for every (target, activation)."""
    tests = []
    for target in TARGETS:
        for act in ACTS:
            runs = select(jobs, task=target, activation=act)
            coefs = sorted({float(j.value("regularizer.coef")) for j in runs})
            if 0.0 not in coefs or len(coefs) < 2:
                continue
            zero = ("λ=0", [j for j in runs if float(j.value("regularizer.coef")) == 0])
            per_coef = [paired_test(f"λ={c:g}", (f"λ={c:g}", [j for j in runs if float(j.value("regularizer.coef")) == c]),
                                    zero, "extrap_mse") for c in coefs if c > 0]
            tests.append(verdicts.union(f"{target} {act}", per_coef))
    if not tests:
        return nothing("no runs with λ = 0 and λ > 0")
    return decide("extrapolation MSE, penalty λ > 0 < λ = 0: " + "; ".join(wording.text(t) for t in tests), tests, alpha)


def shape_rule(groups: list[dict], shape: str):
    """The check that more than half of each group's trained members take `shape` (SHAPES' rule)."""
    return per_member_rule(groups, SHAPE[shape].metric, SHAPE[shape].holds, _name)


CLAIMS = [
    Claim("A1", "A, Fig. 1", "ReLU and Leaky ReLU nets continue linearly outside the training range",
          ("tsvetkova",), f"per trained member: {SHAPE['linear'].rule}; for both targets, both activations, λ = 0, "
          f"{SHARE}", shape_rule([lam0(t, a) for t in TARGETS for a in ("relu", "leaky_relu")], "linear")),
    Claim("A2", "A, Fig. 2", "Tanh nets saturate to a constant outside the training range", ("tsvetkova",),
          f"per trained member: {SHAPE['saturating'].rule}; for both targets, λ = 0, {SHARE}",
          shape_rule([lam0(t, "tanh") for t in TARGETS], "saturating")),
    Claim("A3", "A, Fig. 3", "sin (SiNU) nets oscillate outside the training range", ("tsvetkova",),
          f"per trained member: {SHAPE['oscillating'].rule}; for both targets, λ = 0, {SHARE}",
          shape_rule([lam0(t, "sin") for t in TARGETS], "oscillating")),
    Claim("A4", "A, §3.2", "spectral-norm regularization improves generalization (here: extrapolation)",
          ("tsvetkova",), "per (target, activation), extrapolation MSE with the penalty below λ = 0 for some λ > 0: "
          f"{PAIRED}, Bonferroni over the λ values; every (target, activation)", spectral_norm_check),
]

PAPER = Paper(
    claims=CLAIMS,
    views={"tsvetkova": SweepView("test_mse", ("activation", "task.target"),
                                  {"metric": "extrap_mse", "extra": ("tail_line_residual", "tail_rel_range"),
                                   "by": ["task", "activation", "regularizer.coef"]})})
