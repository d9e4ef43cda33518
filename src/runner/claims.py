"""The papers' claims as checks on sweep results: what was measured, and a verdict by a rule.

Each `Claim` names the sweeps it reads (a name from conf/reproduce/<scale>.yaml), says what the
paper says, states its rule in words, and computes (measured text, verdict, why) from the jobs
of that sweep. Verdicts come from the numbers only: `reproduced`, `not reproduced`, or
`inconclusive` when there is nothing to judge (no finite members, a sweep that did not run).
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

from runner.aggregate import Job
from runner.results import FINISHED

SHARE = 0.8  # a per-member rule "holds" when it holds for at least this share of members


@dataclass(frozen=True)
class Outcome:
    """What a check found: the measured numbers, the verdict and, when it fails, why."""

    measured: str
    verdict: str
    why: str = ""


@dataclass(frozen=True)
class Claim:
    id: str
    paper: str          # where in which paper, e.g. "A, Fig. 1"
    says: str
    sweeps: tuple[str, ...]  # whose jobs, pooled, the check reads
    rule: str
    check: Callable[[list[Job]], Outcome]


# ---------------------------------------------------------------- reading jobs


def select(jobs: list[Job], **where) -> list[Job]:
    """Jobs that trained to the end whose config values match `where` (dots as '__')."""
    return [j for j in jobs if j.status in FINISHED
            and all(_same(j.value(k.replace("__", ".")), v) for k, v in where.items())]


def _same(value, wanted) -> bool:
    try:
        return math.isclose(float(value), float(wanted))
    except (TypeError, ValueError):
        return str(value) == str(wanted)


def members(jobs: list[Job], metric: str) -> np.ndarray:
    """Every member's value of `metric` in these jobs, NaN where it was not finite."""
    return np.array([np.nan if v is None else v for j in jobs for v in j.members(metric)], dtype=float)


def scalar(jobs: list[Job], metric: str) -> float:
    """A whole-job metric (one value per job, e.g. a theory quantity) of the first job, or NaN."""
    values = members(jobs[:1], metric)
    return float(values[0]) if len(values) else math.nan


def stats(values: np.ndarray) -> str:
    """'mean ± std, median m (n=finite/total)' in 3 significant digits (the median because one
    blown-up member dominates a mean)."""
    finite = values[np.isfinite(values)]
    if not len(finite):
        return f"no finite value (n=0/{len(values)})"
    return (f"{finite.mean():.3g} ± {finite.std():.2g}, median {np.median(finite):.3g} "
            f"(n={len(finite)}/{len(values)})")


def share(condition: np.ndarray) -> float:
    return float(np.mean(condition)) if len(condition) else math.nan


def verdict(passed: bool | None) -> str:
    return "inconclusive" if passed is None else "reproduced" if passed else "not reproduced"


def read_rows(job: Job, name: str) -> list[dict]:
    with open(job.path / name, newline="") as f:
        return [{k: float(v) if v not in ("", None) else math.nan for k, v in row.items()}
                for row in csv.DictReader(f)]


# ---------------------------------------------------------------- Paper A


def per_member_rule(sweep_where: list[dict], metric: str, test: Callable[[np.ndarray], np.ndarray],
                    label: Callable[[dict], str]) -> Callable[[list[Job]], Outcome]:
    """Holds when `test` is true for >= SHARE of the members in every group of `sweep_where`."""
    def check(jobs: list[Job]) -> Outcome:
        parts, failed, empty = [], [], False
        for where in sweep_where:
            values = members(select(jobs, **where), metric)
            ok = share(test(values[np.isfinite(values)])) if np.isfinite(values).any() else math.nan
            empty |= math.isnan(ok)
            parts.append(f"{label(where)}: {stats(values)}, rule met by {ok:.0%}")
            if not ok >= SHARE:
                failed.append(label(where))
        passed = None if empty else not failed
        return Outcome("; ".join(parts), verdict(passed), f"fails for {', '.join(failed)}" if failed else "")
    return check


def lam0(target: str, act: str) -> dict:
    return {"task": target, "activation": act, "regularizer__coef": 0}


def _name(where: dict) -> str:
    return " ".join(str(v) for k, v in where.items() if k != "regularizer__coef")


def spectral_norm_check(jobs: list[Job]) -> Outcome:
    """Extrapolation MSE at the best lambda > 0 vs lambda = 0, per (target, activation)."""
    better, parts = [], []
    for target in ("x2", "x3"):
        for act in ("relu", "leaky_relu", "tanh", "sin"):
            runs = select(jobs, task=target, activation=act)
            by_coef = {float(j.value("regularizer.coef")): np.nanmean(members([j], "extrap_mse")) for j in runs}
            if 0.0 not in by_coef or len(by_coef) < 2:
                continue
            best = min((v, c) for c, v in by_coef.items() if c > 0)
            better.append(best[0] < by_coef[0.0])
            parts.append(f"{target} {act}: {by_coef[0.0]:.3g} → {best[0]:.3g} (λ={best[1]:g})")
    if not better:
        return Outcome("no runs with λ = 0 and λ > 0", verdict(None))
    ok = share(np.array(better))
    why = "" if ok >= SHARE else f"the penalty lowers extrapolation MSE in {ok:.0%} of pairs only"
    return Outcome("extrapolation MSE, λ = 0 → best λ > 0: " + "; ".join(parts), verdict(ok >= SHARE), why)


# ---------------------------------------------------------------- Paper B: theory


def repu_ratio_check(jobs: list[Job]) -> Outcome:
    small, large = scalar(jobs, "repu_p2/ratio_at_smallest_K"), scalar(jobs, "repu_p2/ratio_at_largest_K")
    critical = scalar(jobs, "repu_p2/critical_C_W")
    if math.isnan(small):
        return Outcome("no susceptibility run", verdict(None))
    passed = min(small, large) > 1 and math.isnan(critical)
    return Outcome(f"RePU p=2: χ∥/χ⊥ = {small:.4g} at the smallest K, {large:.4g} at the largest "
                   f"(theory (2p−1)/p = 1.5); critical C_W: {'none' if math.isnan(critical) else critical}",
                   verdict(passed))


def mrepu_ratio_check(jobs: list[Job]) -> Outcome:
    ratios = {p: scalar(jobs, f"mrepu_p{p}_shift1/ratio_at_smallest_K") for p in (2, 3)}
    if any(math.isnan(r) for r in ratios.values()):
        return Outcome("no susceptibility run", verdict(None))
    passed = all(abs(r - 1) < 1e-2 for r in ratios.values())
    return Outcome(", ".join(f"MRePU p={p}: χ∥/χ⊥ = {r:.5g} at the smallest K" for p, r in ratios.items()),
                   verdict(passed))


def kernel_fates(jobs: list[Job]) -> dict[str, float]:
    """Per C_W tag: share of members that overflowed, exploded or collapsed by the last layer."""
    if not jobs:
        return {}
    job, out = jobs[0], {}
    size = job.summary["config"]["ensemble"]["size"]
    for name in job.summary.get("metrics", {}):
        if name.endswith("/overflowed"):
            tag = name.rsplit("/", 1)[0]
            bad = sum(scalar([job], f"{tag}/{k}") for k in ("overflowed", "exploded", "collapsed"))
            out[tag] = bad / size
    return out


def repu_kernel_check(jobs: list[Job]) -> Outcome:
    fates = kernel_fates(jobs)
    if not fates:
        return Outcome("no kernel run", verdict(None))
    passed = all(v >= SHARE for v in fates.values())
    stable = [t for t, v in fates.items() if v < SHARE]
    return Outcome("members that overflow, explode or collapse by layer 10: "
                   + ", ".join(f"{t}: {v:.0%}" for t, v in fates.items()),
                   verdict(passed), f"stays finite and O(1) at {', '.join(stable)}" if stable else "")


def mrepu_kernel_check(jobs: list[Job]) -> Outcome:
    fates = kernel_fates(jobs)
    if not fates:
        return Outcome("no kernel run", verdict(None))
    unstable = [t for t, v in fates.items() if v > 1 - SHARE]
    why = (f"unstable at {', '.join(unstable)}: with the working MRePU z·max(0, z+1)², ⟨σ²⟩_K > K, so the "
           "kernel grows wherever C_W is not small (a nonzero fixed point exists only for C_W < 0.81, "
           "and it is unstable; see the susceptibility run)") if unstable else ""
    return Outcome("members that overflow, explode or collapse by layer 10: "
                   + ", ".join(f"{t}: {v:.0%}" for t, v in fates.items()), verdict(not unstable), why)


def vertex_check(jobs: list[Job]) -> Outcome:
    """Excess kurtosis from the four-point vertex: grows with depth, shrinks with width."""
    if not jobs or not (jobs[0].path / "metrics.csv").exists():
        return Outcome("no vertex run", verdict(None))
    rows = read_rows(jobs[0], "metrics.csv")
    depth_ok, width_ok, parts = [], [], []
    for C_W in sorted({r["C_W"] for r in rows}):
        last = {}
        for n in sorted({r["width"] for r in rows if r["C_W"] == C_W}):
            kurt = [r["kurtosis_G"] for r in rows if r["C_W"] == C_W and r["width"] == n]
            depth_ok.append(kurt[-1] > kurt[1])  # layer 1's vertex vanishes identically
            last[n] = kurt[-1]
            parts.append(f"C_W={C_W:g}, n={n:g}: kurtosis {kurt[1]:.3g} (layer 2) → {kurt[-1]:.3g} "
                         f"(layer {len(kurt)})")
        widths = sorted(last)
        width_ok += [last[a] > last[b] for a, b in zip(widths, widths[1:])]
    passed = all(depth_ok) and all(width_ok)
    why = "" if passed else ("does not grow with depth everywhere" if not all(depth_ok)
                            else "not larger at the smaller width everywhere")
    return Outcome("; ".join(parts), verdict(passed), why)


def records(job: Job) -> list[dict]:
    return json.loads((job.path / "kernel_records.json").read_text())["records"]


def repu_depth_check(jobs: list[Job]) -> Outcome:
    """Median final train MSE (overflowed members as +inf) rises with depth."""
    medians, parts = {}, []
    for job in sorted(select(jobs), key=lambda j: j.summary["config"]["model"]["depth"]):
        depth = job.summary["config"]["model"]["depth"]
        mse = np.nan_to_num(members([job], "train_mse"), nan=np.inf)
        medians[depth] = float(np.median(mse))
        parts.append(f"depth {depth}: median train MSE {medians[depth]:.3g}, "
                     f"{int(np.isinf(mse).sum())}/{len(mse)} overflowed; {stats(members([job], 'train_mse'))}")
    if len(medians) < 2:
        return Outcome("fewer than two depths ran", verdict(None))
    values = [medians[d] for d in sorted(medians)]
    passed = all(a < b for a, b in zip(values, values[1:]))
    return Outcome("; ".join(parts), verdict(passed), "" if passed else "the error does not rise with depth")


def mrepu_trains_check(jobs: list[Job]) -> Outcome:
    """At 5 layers, >= SHARE of members stay finite and the test MSE falls 10-fold from epoch 0."""
    runs = select(jobs)
    if not runs:
        return Outcome("no run", verdict(None))
    job = runs[0]
    rec = records(job)
    finite = share(np.isfinite(members([job], "train_mse")))
    drop = rec[0]["test_mse"] / rec[-1]["test_mse"]
    passed = finite >= SHARE and drop >= 10
    why = "" if passed else (f"only {finite:.0%} of members finite" if finite < SHARE
                             else f"test MSE fell only {drop:.3g}-fold")
    return Outcome(f"{finite:.0%} of members finite; test MSE {rec[0]['test_mse']:.3g} (epoch 0) → "
                   f"{rec[-1]['test_mse']:.3g} (epoch {rec[-1]['epoch']}); train MSE "
                   f"{stats(members([job], 'train_mse'))}", verdict(passed), why)


def phase_diagram_check(jobs: list[Job]) -> Outcome:
    """Per activation: theory agrees with fresh networks away from the boundary (agreement >=
    0.9), and MRePU has a measured stable window; where Paper B's MRePU settings fall."""
    runs = {j.value("activation"): j for j in select(jobs)}
    if not runs:
        return Outcome("no phase-diagram run", verdict(None))
    parts, failed = [], []
    for act, job in runs.items():
        agree, stable = scalar([job], "agreement"), scalar([job], "measured_share_stable")
        parts.append(f"{act}: agreement {agree:.0%} of {scalar([job], 'clear_cells'):.0f} cells, "
                     f"{stable:.0%} of cells measured stable")
        if not agree >= 0.9 or (act == "mrepu" and not stable > 0):
            failed.append(act)
    if "mrepu" in runs:
        marks = [(name.split("/")[1], scalar([runs["mrepu"]], name)) for name in runs["mrepu"].summary["metrics"]
                 if name.startswith("mark/")]
        parts.append("MRePU, log K(L)/K(1) at the paper's settings: " + ", ".join(
            f"{label} {r:.3g} ({'explodes' if r > math.log(10) else 'vanishes' if r < -math.log(10) else 'stable'})"
            for label, r in marks))
    return Outcome("; ".join(parts), verdict(not failed), f"fails for {', '.join(failed)}" if failed else "")


# ---------------------------------------------------------------- Paper B: regression and PINN


def ranking_check(metric: str, order: tuple[str, ...], key: str = "task.target",
                  reference: str | None = None) -> Callable[[list[Job]], Outcome]:
    """Per column (`key`), the share of seeds (member k of every activation: the same initial
    weights stream) for which `metric` follows `order`, best first; with `reference`, the
    reference activation must beat every other one, nothing else ordered. Overflowed members
    count as +inf. Holds when the share is >= SHARE in every column."""
    def check(jobs: list[Job]) -> Outcome:
        parts, failed = [], []
        columns = list(dict.fromkeys(j.value(key) for j in select(jobs)))
        for col in columns:
            values = {act: np.nan_to_num(members(select(jobs, activation=act, **{key.replace(".", "__"): col}),
                                                 metric), nan=np.inf) for act in order}
            n = min(len(v) for v in values.values())
            if n == 0:
                continue
            v = np.stack([values[act][:n] for act in order])  # (activations, seeds)
            if reference:
                ok = (v[0] < v[1:]).all(0)
            else:
                ok = (v[:-1] < v[1:]).all(0)
            means = ", ".join(f"{act} {stats(np.where(np.isinf(values[act]), np.nan, values[act]))}"
                              for act in order)
            parts.append(f"{col}: holds for {ok.mean():.0%} of {n} seeds ({means})")
            if ok.mean() < SHARE:
                failed.append(str(col))
        if not parts:
            return Outcome("no runs with every activation", verdict(None))
        why = f"fails for {', '.join(failed)}" if failed else ""
        return Outcome("; ".join(parts), verdict(not failed), why)
    return check


def mrepu_failures(jobs: list[Job], metric: str) -> str:
    """How many MRePU members diverged or blew up (the run's member_status; for summaries
    without it, no finite `metric`); empty when none did."""
    runs = select(jobs, activation="mrepu")
    fates = [s for j in runs for s in j.summary.get("member_status")
             or ["ok" if v is not None else "diverged" for v in j.members(metric)]]
    parts = [f"{fates.count(s)}/{len(fates)} MRePU members {what}"
             for s, what in (("diverged", "overflowed (non-finite)"), ("blown_up", "blew up"))
             if fates.count(s)]
    return ", ".join(parts)


def note_mrepu_failures(check: Callable[[list[Job]], Outcome], metric: str,
                        setting: str) -> Callable[[list[Job]], Outcome]:
    """Add to a failed check the MRePU members that overflowed or blew up, the usual reason here."""
    def wrapped(jobs: list[Job]) -> Outcome:
        out, failures = check(jobs), mrepu_failures(jobs, metric)
        if out.verdict == "not reproduced" and failures:
            return Outcome(out.measured, out.verdict, f"{out.why}; {failures} {setting}")
        return out
    return wrapped


def mrepu_auto(check: Callable[[list[Job]], Outcome], key: str) -> Callable[[list[Job]], Outcome]:
    """`check` with only the MRePU runs at init.C_W=auto (the others kept as they are); the
    measured text starts with the values auto chose, per column `key`."""
    def filtered(jobs: list[Job]) -> Outcome:
        auto = [j for j in select(jobs, activation="mrepu") if j.value("init.C_W") == "auto"]
        chosen = "; ".join(dict.fromkeys(
            f"{j.value(key)}: C_W_first {i['C_W_first']:.3g}, C_W {i['C_W']:.3g}, C_b {i['C_b']:.3g}"
            for j in auto if (i := j.summary.get("init"))))
        out = check([j for j in jobs if j.value("activation") != "mrepu" or j in auto])
        return Outcome(f"MRePU init.C_W=auto chose {chosen or 'nothing (no run)'}. {out.measured}",
                       out.verdict, out.why)
    return filtered


def with_auto_init(id: str, paper: str, says: str, sweep: str, rule: str, metric: str,
                   order: tuple[str, ...], **ranking) -> list[Claim]:
    """A ranking claim twice: with the paper's settings (sweep `sweep`), and with MRePU at
    init.C_W=auto, the theory's choice for each data set and depth (sweep `<sweep>_auto`, the
    other activations from `sweep`), because the paper's C_W overflows with the working MRePU
    definition (README)."""
    check = ranking_check(metric, order, **ranking)
    key = ranking.get("key", "task.target")
    return [Claim(id, paper, says, (sweep,), rule + " (paper's settings)",
                  note_mrepu_failures(check, metric, "at the paper's C_W with the working MRePU definition")),
            Claim(f"{id}a", paper, says + " (MRePU at init.C_W=auto)", (f"{sweep}_auto", sweep),
                  rule + f" (MRePU from {sweep}_auto, the others from {sweep})",
                  mrepu_auto(note_mrepu_failures(check, metric, "at init.C_W=auto"), key))]


# ---------------------------------------------------------------- the list

TARGETS, ACTS = ("x2", "x3"), ("relu", "leaky_relu", "tanh", "sin")
PINN_ORDER = ("gelu", "tanh", "mrepu", "relu")  # Paper B's Burgers ranking, best first
CLAIMS = [
    Claim("A1", "A, Fig. 1", "ReLU and Leaky ReLU nets continue linearly outside the training range",
          ("tsvetkova",), f"tail_line_residual < 1% of the target's in-range span for ≥ {SHARE:.0%} of members, "
          "both targets, both activations, λ = 0",
          per_member_rule([lam0(t, a) for t in TARGETS for a in ("relu", "leaky_relu")], "tail_line_residual",
                          lambda v: v < 0.01, _name)),
    Claim("A2", "A, Fig. 2", "Tanh nets saturate to a constant outside the training range", ("tsvetkova",),
          f"tail_rel_range < 0.25 of the in-range span for ≥ {SHARE:.0%} of members, both targets, λ = 0",
          per_member_rule([lam0(t, "tanh") for t in TARGETS], "tail_rel_range", lambda v: v < 0.25, _name)),
    Claim("A3", "A, Fig. 3", "sin (SiNU) nets oscillate outside the training range", ("tsvetkova",),
          f"≥ 2 turning points beyond the data for ≥ {SHARE:.0%} of members, both targets, λ = 0",
          per_member_rule([lam0(t, "sin") for t in TARGETS], "extrap_turning_points", lambda v: v >= 2, _name)),
    Claim("A4", "A, §3.2", "spectral-norm regularization improves generalization (here: extrapolation)",
          ("tsvetkova",), f"the best λ > 0 has lower mean extrapolation MSE than λ = 0 in ≥ {SHARE:.0%} of "
          "(target, activation) pairs", spectral_norm_check),
    Claim("B1", "B, §3 (Eq. χ∥/χ⊥)", "RePU (p > 1) has no criticality: χ∥/χ⊥ is a constant above 1",
          ("fig4",), "RePU p=2: χ∥/χ⊥ > 1 at the smallest and largest K, and no critical C_W exists",
          repu_ratio_check),
    Claim("B2", "B, Fig. 4", "MRePU's susceptibility ratio goes to 1 as K → 0", ("fig4",),
          "MRePU p=2 and p=3: |χ∥/χ⊥ − 1| < 0.01 at the smallest K of the sweep", mrepu_ratio_check),
    Claim("B3", "B, Fig. 1", "deep RePU kernels explode or collapse at initialization", ("fig1",),
          f"for every C_W, ≥ {SHARE:.0%} of members overflow, explode or collapse by the last layer",
          repu_kernel_check),
    Claim("B4", "B, Fig. 5", "MRePU kernels stay stable through depth at initialization", ("fig5",),
          f"for every C_W, ≤ {1 - SHARE:.0%} of members overflow, explode or collapse by the last layer",
          mrepu_kernel_check),
    Claim("B5", "B, Fig. 6", "the four-point vertex grows with depth and is larger at smaller width", ("fig6",),
          "excess kurtosis (vertex / n K²) at the last layer > at layer 2 for every (C_W, width), "
          "and larger at the smaller width for every C_W", vertex_check),
    Claim("B6", "B, Table 2", "RePU networks fail to train as depth grows (1, 3, 5 hidden layers)", ("table2",),
          "median final train MSE over members (overflowed = +inf) rises strictly with depth",
          repu_depth_check),
    Claim("B7", "B, Table 3 / Figs. 7-8", "MRePU trains stably at 5 hidden layers", ("table3",),
          f"≥ {SHARE:.0%} of members finite and the test MSE falls ≥ 10-fold from epoch 0",
          mrepu_trains_check),
    Claim("B14", "B (later version), phase diagrams", "MRePU has a stable initialization window in "
          "(C_W, input scale) that the effective theory locates", ("phase_diagram",),
          "per activation, the measured majority fate of 64 fresh 7x64 nets matches the theory's in ≥ 90% of "
          "cells away from the boundary, and some MRePU cells are measured stable", phase_diagram_check),
    *with_auto_init("B8", "B, Table 4", "polynomials: final loss MRePU < ReLU < GELU", "table4",
                     f"per target, the order holds for ≥ {SHARE:.0%} of seeds",
                     "train_mse", ("mrepu", "relu", "gelu")),
    *with_auto_init("B9", "B, Table 4", "polynomials: MRePU's final loss is below ReLU's (the headline)",
                     "table4", f"per target, MRePU's train MSE < ReLU's for ≥ {SHARE:.0%} of seeds",
                     "train_mse", ("mrepu", "relu")),
    *with_auto_init("B10", "B, Figs. 10-11", "polynomials: MRePU also fits the derivative, ReLU's is "
                     "discontinuous", "table4", f"per target, MRePU's derivative MSE < ReLU's for ≥ {SHARE:.0%} "
                     "of seeds", "deriv_mse", ("mrepu", "relu")),
    *with_auto_init("B11", "B, Table 5", "differentiable functions: ReLU has the lowest final loss", "table5",
                     f"per target, ReLU's train MSE < MRePU's and GELU's for ≥ {SHARE:.0%} of seeds",
                     "train_mse", ("relu", "mrepu", "gelu"), reference="relu"),
    *with_auto_init("B12", "B, Figs. 12-14", "differentiable functions: MRePU is best once derivatives count",
                     "table5", f"per target, MRePU's derivative MSE < ReLU's and GELU's for ≥ {SHARE:.0%} of seeds",
                     "deriv_mse", ("mrepu", "relu", "gelu"), reference="mrepu"),
    *with_auto_init("B13", "B, Figs. 15-17", "Burgers PINN: GELU best, Tanh close, then MRePU; ReLU fails",
                     "burgers", f"relative L2 error GELU < Tanh < MRePU < ReLU for ≥ {SHARE:.0%} of seeds",
                     "rel_l2", PINN_ORDER, key="task.name"),
]

# Beyond the papers: the papers' claims tested where the papers did not go (own report section).
BEYOND = [
    Claim("S1", "B, Figs. 15-17, on the PINN suite",
          "Paper B's Burgers ranking holds on every equation of the suite: GELU < Tanh < MRePU < ReLU",
          ("pinn_suite",), f"per equation (task.name), relative L2 error GELU < Tanh < MRePU < ReLU for "
          f"≥ {SHARE:.0%} of seeds: B13's rule; every activation at init.C_W=auto (the default)",
          note_mrepu_failures(ranking_check("rel_l2", PINN_ORDER, key="task.name"), "rel_l2",
                              "at init.C_W=auto")),
]
