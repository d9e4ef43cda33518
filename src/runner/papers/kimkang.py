"""Paper B (Kim & Kang, arXiv 2408.02697): RePU's failure and MRePU, in theory and in training.

Sweeps (conf/reproduce/<scale>.yaml): fig4 (susceptibilities), fig1 and fig5 (kernels at
initialization), fig6 (four-point vertex), table2 and table3 (kernels while training),
phase_diagram, table4 and table5 (regressions, each also with MRePU at init.C_W=auto:
table4_auto, table5_auto) and burgers (PINN; burgers_auto).
"""

from __future__ import annotations

import json
import math
from dataclasses import replace

import numpy as np

from runner.results import verdicts, wording
from runner.results.jobs import Job
from runner.results.claims import MAJORITY, PAIRED, SHARE, Check, Claim, Outcome, arm, decide, members_by_stream, members, nothing, ranking_check, read_rows, scalar, select, stats
from runner.papers.base import Paper, SweepView
from runner.theory.fate import BAND, fate_of_log_ratio

AGREEMENT = 0.9  # B14: the share of phase-diagram cells where the theory matches the measurement
PINN_ORDER = ("gelu", "tanh", "mrepu", "relu")  # the Burgers ranking, best first


def repu_ratio_check(jobs: list[Job], alpha: float) -> Outcome:
    small, large = scalar(jobs, "repu_p2/ratio_at_smallest_K"), scalar(jobs, "repu_p2/ratio_at_largest_K")
    critical = scalar(jobs, "repu_p2/critical_C_W")
    if math.isnan(small):
        return nothing("no susceptibility run")
    measured = (f"RePU p=2: χ∥/χ⊥ = {small:.4g} at the smallest K, {large:.4g} at the largest "
                f"(theory (2p−1)/p = 1.5); critical C_W: {'none' if math.isnan(critical) else critical}")
    return decide(measured, [verdicts.exact("RePU p=2", min(small, large) > 1 and math.isnan(critical), measured)],
                  alpha)


def mrepu_ratio_check(jobs: list[Job], alpha: float) -> Outcome:
    ratios = {p: scalar(jobs, f"mrepu_p{p}_shift1/ratio_at_smallest_K") for p in (2, 3)}
    if any(math.isnan(r) for r in ratios.values()):
        return nothing("no susceptibility run")
    tests = [verdicts.exact(f"MRePU p={p}", abs(r - 1) < 1e-2, f"χ∥/χ⊥ = {r:.5g} at the smallest K")
             for p, r in ratios.items()]
    return decide(", ".join(wording.text(t) for t in tests), tests, alpha)


def kernel_fates(jobs: list[Job]) -> dict[str, tuple[int, int]]:
    """Per C_W tag: (members that overflowed, exploded or collapsed by the last layer, members);
    exploded and collapsed by the one band of runner.theory.fate (x10 of the member's layer-1
    kernel), as task=kernel_init counts them."""
    if not jobs:
        return {}
    job, out = jobs[0], {}
    size = job.record.setting("ensemble.size")
    for name in job.record.metric_names():
        if name.endswith("/overflowed"):
            tag = name.rsplit("/", 1)[0]
            bad = sum(scalar([job], f"{tag}/{k}") for k in ("overflowed", "exploded", "collapsed"))
            out[tag] = (int(round(bad)), size)
    return out


def repu_kernel_check(jobs: list[Job], alpha: float) -> Outcome:
    fates = kernel_fates(jobs)
    if not fates:
        return nothing("no kernel run")
    tests = [verdicts.share(tag, bad, n, MAJORITY, alpha) for tag, (bad, n) in fates.items()]
    return decide("members that overflow, explode or collapse by the last layer: "
                  + "; ".join(wording.text(t) for t in tests), tests, alpha)


def mrepu_kernel_check(jobs: list[Job], alpha: float) -> Outcome:
    fates = kernel_fates(jobs)
    if not fates:
        return nothing("no kernel run")
    tests = [verdicts.share(tag, n - bad, n, MAJORITY, alpha) for tag, (bad, n) in fates.items()]
    out = decide("members that stay finite and within the band to the last layer: "
                 + "; ".join(wording.text(t) for t in tests), tests, alpha)
    if out.verdict == verdicts.CONTRADICTED:
        return replace(out, why=out.why + "; with the working MRePU z·max(0, z+1)², ⟨σ²⟩_K > K: the kernel "
                       "grows out of the band for C_W near 1 and shrinks out of it for small C_W (a nonzero fixed "
                       "point exists only for C_W < 0.81, and it is unstable; see the susceptibility run)")
    return out


def vertex_check(jobs: list[Job], alpha: float) -> Outcome:
    """Excess kurtosis from the four-point vertex grows with depth and shrinks with width: z-tests
    with the Monte Carlo standard error of the vertex estimate (kurtosis SE = kurtosis x V_G_se/V_G,
    the kernel's own error neglected; estimates from the same networks are treated as independent)."""
    if not jobs or not (jobs[0].path / "metrics.csv").exists():
        return nothing("no vertex run")
    rows = read_rows(jobs[0], "metrics.csv")

    def kurt(row):
        se = abs(row["kurtosis_G"] * row["V_G_se"] / row["V_G"]) if row["V_G"] else math.nan
        return row["kurtosis_G"], se

    tests = []
    for C_W in sorted({r["C_W"] for r in rows}):
        last = {}
        for n in sorted({r["width"] for r in rows if r["C_W"] == C_W}):
            layers = [r for r in rows if r["C_W"] == C_W and r["width"] == n]
            # layer 1's vertex vanishes identically: depth is compared from layer 2
            tests.append(verdicts.normal(f"C_W={C_W:g}, n={n:g}: layer 2 < layer {len(layers)}",
                                         *kurt(layers[1]), *kurt(layers[-1])))
            last[n] = kurt(layers[-1])
        widths = sorted(last)
        tests += [verdicts.normal(f"C_W={C_W:g}, last layer: n={b:g} < n={a:g}", *last[b], *last[a])
                  for a, b in zip(widths, widths[1:])]
    return decide("excess kurtosis ± SE: " + "; ".join(wording.text(t) for t in tests), tests, alpha)


def records(job: Job) -> list[dict]:
    return json.loads((job.path / "kernel_records.json").read_text())["records"]


def repu_depth_check(jobs: list[Job], alpha: float) -> Outcome:
    """Final train MSE (failed members +inf) rises with depth: Mann-Whitney between adjacent depths
    (networks of different depths share no weights, so members are not paired)."""
    runs = sorted(select(jobs), key=lambda j: j.record.setting("model.depth"))
    if len(runs) < 2:
        return nothing("fewer than two depths ran")
    arms = []
    for job in runs:
        rows = members_by_stream([job], "train_mse")
        arms.append(arm(f"depth {job.record.setting('model.depth')}", rows, sorted(rows)))
    tests = [verdicts.unpaired(f"{a.name} < {b.name}", a, b) for a, b in zip(arms, arms[1:])]
    parts = [f"{job.record.setting('model.depth')} layers: {stats(members([job], 'train_mse'))}" for job in runs]
    return decide("; ".join(parts) + "; " + "; ".join(wording.text(t) for t in tests), tests, alpha)


def mrepu_trains_check(jobs: list[Job], alpha: float) -> Outcome:
    """Per member: ok (Job.fates) and its final test MSE at most a tenth of the
    ensemble's at epoch 0; the share of such members above MAJORITY."""
    runs = select(jobs)
    if not runs:
        return nothing("no run")
    job = runs[0]
    rec = sorted(records(job), key=lambda r: r["epoch"])
    start = next((r for r in rec if r["epoch"] == 0), None)
    if start is None:  # the reference is the start: a later record would set a far stricter bar
        return nothing(f"no kernel record at epoch 0 (records at epochs {', '.join(str(r['epoch']) for r in rec)})")
    test_mse = members([job], "test_mse")
    met = int((test_mse[np.isfinite(test_mse)] <= start["test_mse"] / 10).sum())
    test = verdicts.share("MRePU, 5 layers", met, len(test_mse), MAJORITY, alpha)
    return decide(f"test MSE {start['test_mse']:.3g} (epoch 0, ensemble) → {stats(test_mse)} (epoch "
                  f"{rec[-1]['epoch']}); members ok with a 10-fold drop: {wording.detail(test)}", [test], alpha)


def phase_diagram_check(jobs: list[Job], alpha: float) -> Outcome:
    """Per activation: the theory's fate matches the measured majority in more than AGREEMENT of the
    cells away from the boundary (one-sided Clopper-Pearson), and MRePU has a measured stable
    window; where Paper B's MRePU settings fall."""
    runs = {j.value("activation"): j for j in select(jobs)}
    if not runs:
        return nothing("no phase-diagram run")
    tests, parts = [], []
    for act, job in runs.items():
        agree, cells = scalar([job], "agreement"), int(scalar([job], "clear_cells"))
        stable = scalar([job], "measured_share_stable")
        tests.append(verdicts.share(f"{act} agreement", int(round(agree * cells)), cells, AGREEMENT, alpha))
        parts.append(f"{wording.text(tests[-1])}; {stable:.0%} of cells measured stable")
        if act == "mrepu":
            tests.append(verdicts.exact("mrepu stable window", stable > 0, f"{stable:.0%} of cells measured stable"))
    if "mrepu" in runs:
        marks = [(name.split("/")[1], scalar([runs["mrepu"]], name)) for name in runs["mrepu"].record.metric_names()
                 if name.startswith("mark/")]
        band = runs["mrepu"].record.setting("task.band") or BAND
        parts.append("MRePU, log K(L)/K(1) at the paper's settings: " + ", ".join(
            f"{label} {r:.3g} ({fate_of_log_ratio(r, band)})" for label, r in marks))
    return decide("; ".join(parts), tests, alpha)


def mrepu_failures(jobs: list[Job], metric: str) -> str:
    """How many MRePU members failed, by fate (Job.fates of `metric`); empty when none did."""
    runs = select(jobs, activation="mrepu")
    fates = [fate for j in runs for fate in j.fates(metric)]
    parts = [f"{fates.count(s)}/{len(fates)} MRePU members {what}"
             for s, what in (("diverged", "overflowed (non-finite)"), ("blown_up", "blew up"),
                             ("no_better_than_zero", "ended no better than the zero function"))
             if fates.count(s)]
    return ", ".join(parts)


def note_mrepu_failures(check: Check, metric: str, setting: str) -> Check:
    """Add to a check that did not reproduce the MRePU members that failed, the usual reason here."""
    def wrapped(jobs: list[Job], alpha: float) -> Outcome:
        out, failures = check(jobs, alpha), mrepu_failures(jobs, metric)
        if out.verdict != verdicts.REPRODUCED and failures:
            return replace(out, why=f"{out.why}; {failures} {setting}")
        return out
    return wrapped


def mrepu_auto(check: Check, key: str) -> Check:
    """`check` with only the MRePU runs at init.C_W=auto (the others kept as they are); the
    measured text starts with the values auto chose, per column `key`."""
    def filtered(jobs: list[Job], alpha: float) -> Outcome:
        auto = [j for j in select(jobs, activation="mrepu") if j.value("init.C_W") == "auto"]
        chosen = "; ".join(dict.fromkeys(
            f"{j.value(key)}: C_W_first {i['C_W_first']:.3g}, C_W {i['C_W']:.3g}, C_b {i['C_b']:.3g}"
            for j in auto if (i := j.record.used_init())))
        out = check([j for j in jobs if j.value("activation") != "mrepu" or j in auto], alpha)
        return replace(out, measured=f"MRePU init.C_W=auto chose {chosen or 'nothing (no run)'}. {out.measured}")
    return filtered


def with_auto_init(id: str, paper: str, says: str, sweep: str, rule: str, metric: str,
                   order: tuple[str, ...], **ranking) -> list[Claim]:
    """A ranking claim twice: with the paper's settings (sweep `sweep`), and with MRePU at
    init.C_W=auto, the theory's choice for each data set and depth (sweep `<sweep>_auto`, the
    other activations from `sweep`), because the paper's C_W overflows with the working MRePU
    definition (docs/papers.md)."""
    check = ranking_check(metric, order, **ranking)
    key = ranking.get("key", "task.target")
    return [Claim(id, paper, says, (sweep,), rule + " (paper's settings)",
                  note_mrepu_failures(check, metric, "at the paper's C_W with the working MRePU definition")),
            Claim(f"{id}a", paper, says + " (MRePU at init.C_W=auto)", (f"{sweep}_auto", sweep),
                  rule + f" (MRePU from {sweep}_auto, the others from {sweep})",
                  mrepu_auto(note_mrepu_failures(check, metric, "at init.C_W=auto"), key))]



CLAIMS = [
    Claim("B1", "B, §3 (Eq. χ∥/χ⊥)", "RePU (p > 1) has no criticality: χ∥/χ⊥ is a constant above 1",
          ("fig4",), "RePU p=2: χ∥/χ⊥ > 1 at the smallest and largest K, and no critical C_W exists "
          "(quadrature: deterministic)", repu_ratio_check),
    Claim("B2", "B, Fig. 4", "MRePU's susceptibility ratio goes to 1 as K → 0", ("fig4",),
          "MRePU p=2 and p=3: |χ∥/χ⊥ − 1| < 0.01 at the smallest K of the sweep (quadrature: deterministic)",
          mrepu_ratio_check),
    Claim("B3", "B, Fig. 1", "deep RePU kernels explode or collapse at initialization", ("fig1",),
          f"per member: overflows, explodes or collapses by the last layer; for every C_W, {SHARE}",
          repu_kernel_check),
    Claim("B4", "B, Fig. 5", "MRePU kernels stay stable through depth at initialization", ("fig5",),
          f"per member: stays finite and within the band (x{BAND:g} of its layer-1 kernel) at the last layer; "
          f"for every C_W, {SHARE}",
          mrepu_kernel_check),
    Claim("B5", "B, Fig. 6", "the four-point vertex grows with depth and is larger at smaller width", ("fig6",),
          "excess kurtosis (vertex / n K²) at the last layer > at layer 2 for every (C_W, width), and larger at "
          "the smaller width for every C_W: one-sided z-tests with the Monte Carlo standard errors, every p < α",
          vertex_check),
    Claim("B6", "B, Table 2", "RePU networks fail to train as depth grows (1, 3, 5 hidden layers)", ("table2",),
          "final train MSE (failed members +inf) lower at each depth than at the next: one-sided Mann-Whitney "
          "(different depths share no weights), unconverged members dropped; every test p < α",
          repu_depth_check),
    Claim("B7", "B, Table 3 / Figs. 7-8", "MRePU trains stably at 5 hidden layers", ("table3",),
          "per member: ok (finite, not blown up, better than the zero function) and its final test MSE at most "
          f"a tenth of the ensemble's at epoch 0; {SHARE}", mrepu_trains_check),
    Claim("B14", "B (later version), phase diagrams", "MRePU has a stable initialization window in "
          "(C_W, input scale) that the effective theory locates", ("phase_diagram",),
          f"per activation, the measured majority fate of 64 fresh 7x64 nets matches the theory's in more than "
          f"{AGREEMENT:.0%} of cells away from the boundary (one-sided Clopper-Pearson bound, level α), and some "
          "MRePU cells are measured stable", phase_diagram_check),
    *with_auto_init("B8", "B, Table 4", "polynomials: final loss MRePU < ReLU < GELU", "table4",
                     f"per target, MRePU < ReLU and ReLU < GELU in train MSE: {PAIRED}",
                     "train_mse", ("mrepu", "relu", "gelu")),
    *with_auto_init("B9", "B, Table 4", "polynomials: MRePU's final loss is below ReLU's (the headline)",
                     "table4", f"per target, MRePU's train MSE < ReLU's: {PAIRED}",
                     "train_mse", ("mrepu", "relu")),
    *with_auto_init("B10", "B, Figs. 10-11", "polynomials: MRePU also fits the derivative, ReLU's is "
                     "discontinuous", "table4", f"per target, MRePU's derivative MSE < ReLU's: {PAIRED}",
                     "deriv_mse", ("mrepu", "relu")),
    *with_auto_init("B11", "B, Table 5", "differentiable functions: ReLU has the lowest final loss", "table5",
                     f"per target, ReLU's train MSE < MRePU's and < GELU's: {PAIRED}",
                     "train_mse", ("relu", "mrepu", "gelu"), reference="relu"),
    *with_auto_init("B12", "B, Figs. 12-14", "differentiable functions: MRePU is best once derivatives count",
                     "table5", f"per target, MRePU's derivative MSE < ReLU's and < GELU's: {PAIRED}",
                     "deriv_mse", ("mrepu", "relu", "gelu"), reference="mrepu"),
    *with_auto_init("B13", "B, Figs. 15-17", "Burgers PINN: GELU best, Tanh close, then MRePU; ReLU fails",
                     "burgers", f"relative L2 error GELU < Tanh, Tanh < MRePU and MRePU < ReLU: {PAIRED}",
                     "rel_l2", PINN_ORDER, key="task.name"),
]

# Table 4/5 are activation x target pivots; the other sweeps of several jobs are tables by activation.
PIVOT = {"metric": "train_mse", "extra": ("test_mse", "deriv_mse", "grad_norm_error"), "cols": "task.target"}
LABELS = ("activation", "task.target")

PAPER = Paper(
    claims=CLAIMS,
    views={**{name: SweepView(None, LABELS) for name in ("fig4", "fig1", "fig5", "fig6")},
           "table2": SweepView("test_mse", LABELS), "table3": SweepView("test_mse", LABELS),
           **{name: SweepView("test_mse", LABELS, PIVOT) for name in ("table4", "table4_auto", "table5", "table5_auto")},
           "burgers": SweepView("rel_l2", LABELS), "burgers_auto": SweepView("rel_l2", LABELS),
           "phase_diagram": SweepView(None, LABELS, per_job_plot="phase_diagram.png")})
