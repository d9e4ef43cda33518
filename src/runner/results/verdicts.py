"""Verdicts from ensembles of runs: paired sign tests, rank tests, shares against a threshold, and
the rule that turns the tests of one claim into `reproduced`, `contradicted` or `inconclusive`.

Every test is scipy.stats (Holm's step-down, five lines, is written out: statsmodels is not a
dependency); nothing here knows which claim or paper it serves.

- `paired`: member k of one arm against member k of the other (the same seed and member index,
  so the same initial-weight stream). A member whose fate is not `ok` (runner.results.summary.FAILED_FATES) or
  whose value is not finite counts as +inf, the worst value; pairs where both are +inf are ties.
  One-sided sign test (`scipy.stats.binomtest` on the wins among non-tied pairs) in the stated
  direction, and the opposite direction's p. Effect: the median paired log-ratio ln(a/b) over
  the pairs where both values are finite and positive, with a 95% percentile bootstrap interval
  (`scipy.stats.bootstrap`, fixed seed); the text says on how many pairs.
- `unpaired`: two independent groups (e.g. networks of different depths, whose weights are not
  shared): one-sided Mann-Whitney U (`scipy.stats.mannwhitneyu`), failed members as +inf; effect
  ln(median a / median b) over finite values with a bootstrap interval.
- Convergence gate (both): a member that neither converged (runner.results.summary.member_convergence)
  nor failed is undecided; pairs (paired) or members (unpaired) with an undecided member are
  dropped, unless the order is final anyway (against a failed member) or, paired, settled: the
  gap between the two values is larger than either member's loss still moved over the tail of
  its run (`settled_pairs`). The row shows how many members converged. Where the comparison cannot change with
  more training it stays: a pair of an unconverged member and a failed one (+inf) goes to the
  unconverged member; unpaired, an unconverged member stays when every member of the other arm failed.
- `share`: k of n members meet a rule; one-sided exact binomial tests against the threshold and
  the one-sided Clopper-Pearson bounds that go with them (`binomtest(...).proportion_ci`): the
  lower bound exceeds the threshold exactly when the test of "share > threshold" has p < alpha.
- `normal`: two estimates with standard errors (Monte Carlo), a one-sided z-test.
- `exact`: a deterministic check (a quadrature): p 0 or 1.
- `union`: "at least one of these tests holds", Bonferroni on the best p.
- `judge`: a claim made of several tests holds only if each does (intersection-union test: each
  at alpha, no correction): `reproduced` when every test has p < alpha; `contradicted` when, with
  Holm's correction across the claim's tests, some test is significant in the opposite
  direction; else `inconclusive`, with the reason (too few pairs for any p to reach alpha, members
  unconverged, or no significant difference and its p).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, replace
from typing import Sequence

import numpy as np
from scipy import stats

from runner.results.summary import FAILED_FATES

REPRODUCED, CONTRADICTED, INCONCLUSIVE = "reproduced", "contradicted", "inconclusive"
VERDICTS = (REPRODUCED, CONTRADICTED, INCONCLUSIVE)
CONFIDENCE = 0.95  # of the effect's bootstrap interval


@dataclass(frozen=True)
class Arm:
    """One side of a comparison, member by member: its value of the metric (None or non-finite
    when there is none), its fate (runner.results.summary.member_status) and whether it converged."""

    name: str
    values: Sequence[float | None]
    fates: Sequence[str]
    converged: Sequence[bool]
    improvement: Sequence[float | None] | None = None  # runner.results.summary.member_convergence, per member

    def __post_init__(self):
        if not len(self.values) == len(self.fates) == len(self.converged):
            raise ValueError("an arm needs one value, fate and convergence per member")
        if self.improvement is not None and len(self.improvement) != len(self.values):
            raise ValueError("an arm needs one improvement per member")

    @property
    def moved(self) -> np.ndarray:
        """How far each member's training loss still fell over the tail of its run, in log units:
        -ln(1 - improvement); +inf where unknown (too short, non-finite, or no improvements given)."""
        if self.improvement is None:
            return np.full(len(self.values), math.inf)
        imp = np.array([math.nan if v is None else max(float(v), 0.0) for v in self.improvement])
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(np.isfinite(imp) & (imp < 1), -np.log1p(-np.clip(imp, 0, 1)), math.inf)

    @property
    def failed(self) -> np.ndarray:
        """Members that failed (a fate of FAILED_FATES, or no finite value): counted as +inf."""
        values = np.array([math.nan if v is None else float(v) for v in self.values])
        return np.array([f in FAILED_FATES for f in self.fates], dtype=bool) | ~np.isfinite(values)

    @property
    def worst_is_inf(self) -> np.ndarray:
        """The values with every failed member at +inf."""
        values = np.array([math.nan if v is None else float(v) for v in self.values])
        return np.where(self.failed, math.inf, values)

    @property
    def decided(self) -> np.ndarray:
        """Members whose value can be compared: converged, or failed (a final fate)."""
        return np.array(self.converged, dtype=bool) | self.failed


@dataclass(frozen=True)
class Test:
    """One test of a claim: p in the stated direction, p in the opposite one, the number of
    observations it rests on, and why it could not reach alpha however the data fell (or '').
    The fields after `limit` are the same numbers one by one, for tables and figures."""

    label: str
    p: float
    p_opposite: float
    smallest_p: float   # the smallest p this design can give (all observations in the stated direction)
    detail: str         # n, counts, effect with its interval, convergence: the report's text
    limit: str = ""     # what caps smallest_p, e.g. "3 pairs" or "5/8 members unconverged: 3 pairs left"
    kind: str = ""      # sign test, Mann-Whitney, share, z-test, exact, union
    n: str = ""         # what it rests on: "8 pairs", "16+16 members", "64 members"
    counts: str = ""    # "8 wins, 0 losses", "7/8 meet the rule"
    effect: float | None = None                 # ln(a/b): below 0 is the stated direction
    interval: tuple[float, float] | None = None  # its 95% bootstrap interval
    effect_name: str = ""                       # "median ln(mrepu/relu)"
    converged: str = ""                         # "10/16 members"
    wins: int | None = None                     # paired: pairs in the stated direction,
    losses: int | None = None                   # the other way (ties are neither)

    def shortfall(self, alpha: float) -> str:
        """Why this test is not significant at alpha ('' when it is)."""
        if self.p < alpha:
            return ""
        if self.smallest_p >= alpha:
            return f"{self.limit}: the smallest attainable p is {self.smallest_p:.3g}"
        if self.p_opposite < alpha:  # judge() found it not significant once Holm corrects for the claim's tests
            return (f"leans the other way (p = {self.p_opposite:.3g} that way), not significant after Holm's "
                    "correction across the claim's tests")
        return f"no significant difference (p = {self.p:.3g})"

    def text(self) -> str:
        return f"{self.label}: {self.detail}"


def _fmt(x: float) -> str:
    return f"{x:.3g}" if math.isfinite(x) else "nan" if math.isnan(x) else "inf" if x > 0 else "-inf"


def _bootstrap(data: tuple[np.ndarray, ...], statistic, paired: bool = False) -> tuple[float, float]:
    """95% percentile bootstrap interval of `statistic` (fixed seed, so a report is reproducible);
    (nan, nan) when a sample has fewer than two values."""
    if any(len(d) < 2 for d in data):
        return math.nan, math.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a degenerate sample (all equal) gives its value as both bounds
        ci = stats.bootstrap(data, statistic, paired=paired, vectorized=True, axis=-1, method="percentile",
                             confidence_level=CONFIDENCE, rng=np.random.default_rng(0)).confidence_interval
    return float(ci.low), float(ci.high)


def _convergence_text(arms: tuple[Arm, ...], dropped: str) -> str:
    members = sum(len(a.values) for a in arms)
    failed = sum(int(a.failed.sum()) for a in arms)
    converged = sum(int((np.array(a.converged, dtype=bool) & ~a.failed).sum()) for a in arms)
    text = f"converged {converged}/{members} members"
    if failed:
        text += f", {failed} failed"
    if members - converged - failed:
        text += f", {members - converged - failed} unconverged ({dropped} dropped)"
    return text


def _binom_p(k: int, n: int) -> float:
    return float(stats.binomtest(k, n, 0.5, alternative="greater").pvalue) if n else 1.0


def _sign_test(a: Arm, b: Arm, keep: np.ndarray) -> tuple[int, int, int, float, float, str, tuple]:
    """(pairs, wins, losses, p, opposite p, 'counts, p, effect' text, (effect, interval)) of "a < b"
    on the kept pairs."""
    va, vb = a.worst_is_inf[keep], b.worst_is_inf[keep]
    wins, losses = int((va < vb).sum()), int((va > vb).sum())
    ties = len(va) - wins - losses
    p, p_opp = _binom_p(wins, wins + losses), _binom_p(losses, wins + losses)
    effect_pairs = np.isfinite(va) & np.isfinite(vb) & (va > 0) & (vb > 0)
    ratios = np.log(va[effect_pairs] / vb[effect_pairs])
    median = float(np.median(ratios)) if len(ratios) else math.nan
    low, high = _bootstrap((ratios,), np.median)
    effect = (f"median ln({a.name}/{b.name}) {_fmt(median)} [{_fmt(low)}, {_fmt(high)}] on {len(ratios)} finite pairs"
              if len(ratios) else "no pair with both values finite")
    counts = f"{wins} wins, {losses} losses" + (f", {ties} ties" if ties else "")
    text = f"n={len(va)} ({counts}), p = {p:.3g} (opposite {p_opp:.3g}), {effect}"
    return len(va), wins, losses, p, p_opp, text, ((median, (low, high)) if len(ratios) else (None, None))


def settled_pairs(a: Arm, b: Arm) -> np.ndarray:
    """Pairs whose order more training is not expected to change: both values finite and positive,
    and the gap between them, |ln(a/b)|, larger than either member's training loss still fell over
    the tail of its run (Arm.moved). A member that is not converged by the rule but sits a decade
    from its partner, while its loss fell 30% over the last fifth, is such a pair; two members 10%
    apart that both still fall 20% are not."""
    va, vb = a.worst_is_inf, b.worst_is_inf
    ok = np.isfinite(va) & np.isfinite(vb) & (va > 0) & (vb > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        gap = np.abs(np.log(np.where(ok, va, 1.0) / np.where(ok, vb, 1.0)))
    return ok & (gap > np.maximum(a.moved, b.moved))


def paired(label: str, a: Arm, b: Arm) -> Test:
    """Sign test of "a < b" on pairs (member k of a, member k of b): see the module docstring.
    When the convergence gate dropped pairs, the text also gives the test on every pair, for
    context only: the verdict rests on the decided pairs."""
    if len(a.values) != len(b.values):
        raise ValueError(f"{label}: arms of {len(a.values)} and {len(b.values)} members cannot be paired")
    both_decided = a.decided & b.decided
    against_failed = a.failed ^ b.failed  # against a failed member the order is final
    settled = settled_pairs(a, b) & ~both_decided & ~against_failed
    keep = both_decided | against_failed | settled
    n, wins, losses, p, p_opp, text, (effect, interval) = _sign_test(a, b, keep)
    dropped = len(a.values) - n
    undecided = int((~a.decided).sum() + (~b.decided).sum())
    limit = (f"{undecided}/{2 * len(a.values)} members unconverged, {n} of {len(a.values)} pairs left"
             if dropped else f"{n} seeds")
    converged = _convergence_text((a, b), f"{dropped} pairs")
    detail = f"{text}; {converged}"
    if settled.any():
        detail += f"; {int(settled.sum())} pairs with an unconverged member kept as settled"
    if dropped:
        detail += f"; all pairs, converged or not: {_sign_test(a, b, np.ones(len(a.values), dtype=bool))[5]}"
    return Test(label, p, p_opp, 0.5 ** n, detail, limit, kind="sign test", n=f"{n} pair" + ("" if n == 1 else "s"),
                counts=f"{wins} wins, {losses} losses", effect=effect, interval=interval,
                effect_name=f"median ln({a.name}/{b.name})", converged=converged.removeprefix("converged "),
                wins=wins, losses=losses)


def _log_median_ratio(x: np.ndarray, y: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.log(np.median(x, axis=axis) / np.median(y, axis=axis))


def unpaired(label: str, a: Arm, b: Arm) -> Test:
    """Mann-Whitney U test of "a < b" on independent groups: see the module docstring."""
    # an unconverged member is kept when every member of the other arm failed: its ranks are final
    keep_a, keep_b = a.decided | b.failed.all(), b.decided | a.failed.all()
    va, vb = a.worst_is_inf[keep_a], b.worst_is_inf[keep_b]
    if len(va) and len(vb):
        p = float(stats.mannwhitneyu(va, vb, alternative="less").pvalue)
        p_opp = float(stats.mannwhitneyu(va, vb, alternative="greater").pvalue)
    else:
        p = p_opp = 1.0
    smallest = 1 / math.comb(len(va) + len(vb), len(va)) if len(va) and len(vb) else 1.0
    fa, fb = va[np.isfinite(va) & (va > 0)], vb[np.isfinite(vb) & (vb > 0)]
    median = low = high = None
    if len(fa) and len(fb):
        median = math.log(np.median(fa) / np.median(fb))
        low, high = _bootstrap((fa, fb), _log_median_ratio)
        effect = (f"ln(median {a.name} / median {b.name}) {_fmt(median)} [{_fmt(low)}, {_fmt(high)}] over "
                  "finite values")
    else:
        effect = f"no effect size: {a.name if not len(fa) else b.name} has no finite value"
    dropped = len(a.values) + len(b.values) - len(va) - len(vb)
    converged = _convergence_text((a, b), f"{dropped} members")
    detail = (f"n={len(va)}+{len(vb)}, p = {p:.3g} (opposite {p_opp:.3g}, Mann-Whitney), "
              f"medians {_fmt(float(np.median(va))) if len(va) else '-'} vs "
              f"{_fmt(float(np.median(vb))) if len(vb) else '-'}, {effect}; {converged}")
    total = len(a.values) + len(b.values)
    limit = (f"{dropped}/{total} members unconverged, {len(va)}+{len(vb)} left" if dropped
             else f"{len(va)}+{len(vb)} members")
    return Test(label, p, p_opp, smallest, detail, limit, kind="Mann-Whitney", n=f"{len(va)}+{len(vb)} members",
                effect=median, interval=None if median is None else (low, high),
                effect_name=f"ln(median {a.name} / median {b.name})", converged=converged.removeprefix("converged "))


def share(label: str, k: int, n: int, threshold: float, alpha: float) -> Test:
    """k of n members meet a rule: exact one-sided binomial tests of "share > threshold" and of
    "share < threshold", with the one-sided Clopper-Pearson bounds at 1 - alpha."""
    if n == 0:
        return Test(label, 1.0, 1.0, 1.0, "no members", "0 members", kind="share", n="0 members")
    greater = stats.binomtest(k, n, threshold, alternative="greater")
    less = stats.binomtest(k, n, threshold, alternative="less")
    low = greater.proportion_ci(1 - alpha, method="exact").low
    high = less.proportion_ci(1 - alpha, method="exact").high
    detail = (f"{k}/{n} = {k / n:.0%}, one-sided {1 - alpha:.0%} Clopper-Pearson bounds [{low:.2f}, {high:.2f}] "
              f"against {threshold:g}: p = {greater.pvalue:.3g} (opposite {less.pvalue:.3g})")
    return Test(label, float(greater.pvalue), float(less.pvalue), threshold ** n, detail, f"{n} members",
                kind="share", n=f"{n} members", counts=f"{k}/{n} meet the rule (against {threshold:g})")


def normal(label: str, a: float, se_a: float, b: float, se_b: float) -> Test:
    """One-sided z-test of "a < b" for two estimates with standard errors (e.g. Monte Carlo
    estimates), taken as independent: z = (b - a) / sqrt(se_a^2 + se_b^2), p = P(Z > z)."""
    se = math.hypot(se_a, se_b)
    if not (math.isfinite(a) and math.isfinite(b) and math.isfinite(se) and se > 0):
        return Test(label, 1.0, 1.0, 1.0, f"{_fmt(a)} ± {_fmt(se_a)} vs {_fmt(b)} ± {_fmt(se_b)}: no finite "
                    "estimate with a standard error", "no finite estimate", kind="z-test", n="2 estimates",
                    counts=f"{_fmt(a)} vs {_fmt(b)}")
    z = (b - a) / se
    p, p_opp = float(stats.norm.sf(z)), float(stats.norm.cdf(z))
    return Test(label, p, p_opp, 0.0, f"{_fmt(a)} ± {_fmt(se_a)} vs {_fmt(b)} ± {_fmt(se_b)} (SE): z = {z:.3g}, "
                f"p = {p:.3g} (opposite {p_opp:.3g})", kind="z-test", n="2 estimates",
                counts=f"{_fmt(a)} ± {_fmt(se_a)} vs {_fmt(b)} ± {_fmt(se_b)}")


def exact(label: str, holds: bool, detail: str) -> Test:
    """A deterministic check (a quadrature, a closed form): p 0 when it holds, else p 1 and
    opposite p 0. It decides at any alpha."""
    return Test(label, 0.0 if holds else 1.0, 1.0 if holds else 0.0, 0.0, detail, kind="exact", n="quadrature",
                counts="holds" if holds else "fails")


def union(label: str, tests: list[Test]) -> Test:
    """"At least one of these holds" (e.g. some penalty strength helps): Bonferroni on the best p;
    its opposite ("every one fails the other way") has the largest opposite p."""
    best = min(tests, key=lambda t: t.p)
    m = len(tests)
    p = min(1.0, m * best.p)
    detail = f"best of {m}: {best.text()}" + (f"; Bonferroni x{m}: p = {p:.3g}" if m > 1 else "")
    return replace(best, label=label, p=p, p_opposite=max(t.p_opposite for t in tests),
                   smallest_p=min(1.0, m * min(t.smallest_p for t in tests)), detail=detail,
                   kind=f"best of {m} {best.kind}s, Bonferroni" if m > 1 else best.kind,
                   effect_name=f"{best.label}: {best.effect_name}")


def holm(p: Sequence[float]) -> np.ndarray:
    """Holm's step-down adjusted p-values (family-wise error across one claim's tests)."""
    p = np.asarray(p, dtype=float)
    order = np.argsort(p)
    adjusted = np.minimum(1.0, np.maximum.accumulate((len(p) - np.arange(len(p))) * p[order]))
    out = np.empty_like(adjusted)
    out[order] = adjusted
    return out


SUPPORTS, AGAINST, UNDECIDED = "supports", "against", "undecided"  # one test's decision


@dataclass(frozen=True)
class Decision:
    """One test's part in its claim's verdict: p against the claim with Holm's correction across
    the claim's tests, and whether the test supports the claim (p < alpha), goes against it
    (the corrected opposite p < alpha) or is undecided."""

    test: Test
    p_against: float
    decision: str


def decisions(tests: list[Test], alpha: float) -> list[Decision]:
    """Each test's Decision, in order (the rule `judge` applies)."""
    adjusted = holm([t.p_opposite for t in tests]) if tests else []
    return [Decision(t, float(q), SUPPORTS if t.p < alpha else AGAINST if q < alpha else UNDECIDED)
            for t, q in zip(tests, adjusted)]


@dataclass(frozen=True)
class Judgement:
    verdict: str
    why: str


def judge(tests: list[Test], alpha: float) -> Judgement:
    """The claim's verdict from its tests (intersection-union; Holm for the opposite direction)."""
    if not tests:
        return Judgement(INCONCLUSIVE, "nothing to test")
    if all(t.p < alpha for t in tests):
        return Judgement(REPRODUCED, "")
    against = [(d.test, d.p_against) for d in decisions(tests, alpha) if d.p_against < alpha]
    if against:
        return Judgement(CONTRADICTED, "the opposite direction is significant (Holm) for " + "; ".join(
            f"{t.label} (p = {t.p_opposite:.3g}, adjusted {q:.3g})" for t, q in against))
    reasons: dict[str, list[str]] = {}
    for t in tests:
        if why := t.shortfall(alpha):
            reasons.setdefault(why, []).append(t.label)
    if len(reasons) == 1 and len(next(iter(reasons.values()))) == len(tests):
        return Judgement(INCONCLUSIVE, next(iter(reasons)))  # the same reason for every test: say it once
    return Judgement(INCONCLUSIVE, "; ".join(f"{', '.join(labels)}: {why}" for why, labels in reasons.items()))
