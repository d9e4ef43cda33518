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
- `verdict`: a claim made of several tests holds only if each does (intersection-union test: each
  at alpha, no correction): `reproduced` when every test has p < alpha; `contradicted` when, with
  Holm's correction across the claim's tests, some test is significant in the opposite
  direction; else `inconclusive`.

Tests are numbers (`Test`); runner.results.wording says them in words (the report's text, the
reason a claim is inconclusive), and runner.results.fragility counts how many single outcomes
would have to change to change a test's decision or a claim's verdict.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, replace
from enum import Enum
from typing import Sequence

import numpy as np
from scipy import stats

from runner.results.summary import FAILED_FATES

REPRODUCED, CONTRADICTED, INCONCLUSIVE = "reproduced", "contradicted", "inconclusive"
VERDICTS = (REPRODUCED, CONTRADICTED, INCONCLUSIVE)
# Not a verdict: the claim's check raised (a renamed metric, a missing file); the report shows the
# exception and reproduce.py exits non-zero.
ERROR = "error"
# Not a verdict either: a sweep the claim reads did not run (left out by --only, or by the plan of this
# scale as too costly here).
NOT_RUN = "not run"
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


class Kind(str, Enum):
    """What kind of test a Test is (claims.json's `kind`)."""

    SIGN = "sign"                  # paired sign test
    MANN_WHITNEY = "mann_whitney"  # unpaired rank test
    SHARE = "share"                # k of n members meet a rule, against a threshold
    Z = "z"                        # two Monte Carlo estimates with standard errors
    EXACT = "exact"                # a deterministic check (quadrature)
    UNION = "union"                # at least one of `parts` holds (Bonferroni)


@dataclass(frozen=True)
class Test:
    """One test of a claim, as numbers (runner.results.wording turns them into the report's words).

    Counts by kind (claims.json holds the same fields):
    - sign: `n` pairs kept of `n + dropped`; `wins` in the stated direction, `losses` the other way
      (ties are neither); `settled` of the kept pairs had an unconverged member; `context` is the
      test on every pair, for the text, when pairs were dropped.
    - share: `n` members, `wins` meet the rule, `losses` do not, against `threshold`, with the
      one-sided Clopper-Pearson `bounds` at `level`.
    - mann_whitney: `n_a + n_b` = `n` members kept, `dropped` members left out, `medians` of each side.
    - z: `estimates` (a, se_a, b, se_b) and `z`.
    - exact: `holds`, and `note` (what was checked, in words from the caller).
    - union: `parts`, the tests of which one must hold; the other fields are its best part's.
    Convergence (sign, Mann-Whitney): `members`, `converged` (and not failed), `failed`."""

    label: str
    kind: Kind
    p: float                  # in the stated direction
    p_opposite: float         # in the opposite one
    smallest_p: float         # the smallest p this design can give (all observations the stated way)
    n: int = 0
    wins: int | None = None
    losses: int | None = None
    dropped: int = 0
    threshold: float | None = None
    bounds: tuple[float, float] | None = None
    level: float | None = None
    n_a: int | None = None
    n_b: int | None = None
    names: tuple[str, str] = ("", "")         # the two sides' names
    medians: tuple[float | None, float | None] | None = None
    estimates: tuple[float, float, float, float] | None = None
    z: float | None = None
    holds: bool | None = None
    note: str = ""
    effect: float | None = None               # ln(a/b): below 0 is the stated direction
    interval: tuple[float, float] | None = None  # its 95% bootstrap interval
    effect_name: str = ""                     # "median ln(mrepu/relu)"
    effect_pairs: int = 0                     # sign: the pairs the effect is the median over
    members: int = 0
    converged: int = 0
    failed: int = 0
    settled: int = 0
    context: "Test | None" = None
    parts: tuple["Test", ...] = ()

    @property
    def ties(self) -> int:
        return self.n - (self.wins or 0) - (self.losses or 0) if self.kind == Kind.SIGN else 0

    @property
    def unconverged(self) -> int:
        return self.members - self.converged - self.failed


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


def _convergence(arms: tuple[Arm, ...]) -> dict:
    """members, converged (and not failed) and failed over the arms: Test's convergence counts."""
    return {"members": sum(len(a.values) for a in arms),
            "failed": sum(int(a.failed.sum()) for a in arms),
            "converged": sum(int((np.array(a.converged, dtype=bool) & ~a.failed).sum()) for a in arms)}


def binom_p(k: int, n: int) -> float:
    """P(at least k of n fair coin flips): the one-sided sign test's p (1 for no pair)."""
    return float(stats.binomtest(k, n, 0.5, alternative="greater").pvalue) if n else 1.0


def _sign_test(label: str, a: Arm, b: Arm, keep: np.ndarray) -> Test:
    """The sign test of "a < b" on the kept pairs, with the median paired log-ratio."""
    va, vb = a.worst_is_inf[keep], b.worst_is_inf[keep]
    wins, losses = int((va < vb).sum()), int((va > vb).sum())
    effect_pairs = np.isfinite(va) & np.isfinite(vb) & (va > 0) & (vb > 0)
    ratios = np.log(va[effect_pairs] / vb[effect_pairs])
    median = float(np.median(ratios)) if len(ratios) else None
    interval = _bootstrap((ratios,), np.median) if len(ratios) else None
    return Test(label, Kind.SIGN, binom_p(wins, wins + losses), binom_p(losses, wins + losses), 0.5 ** len(va),
                n=len(va), wins=wins, losses=losses, dropped=len(a.values) - len(va), names=(a.name, b.name),
                effect=median, interval=interval, effect_name=f"median ln({a.name}/{b.name})",
                effect_pairs=int(effect_pairs.sum()), **_convergence((a, b)))


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
    When the convergence gate dropped pairs, `context` is the test on every pair, converged or
    not, for the text only: the verdict rests on the decided pairs."""
    if len(a.values) != len(b.values):
        raise ValueError(f"{label}: arms of {len(a.values)} and {len(b.values)} members cannot be paired")
    both_decided = a.decided & b.decided
    against_failed = a.failed ^ b.failed  # against a failed member the order is final
    settled = settled_pairs(a, b) & ~both_decided & ~against_failed
    test = _sign_test(label, a, b, both_decided | against_failed | settled)
    context = _sign_test(label, a, b, np.ones(len(a.values), dtype=bool)) if test.dropped else None
    return replace(test, settled=int(settled.sum()), context=context)


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
    median = interval = None
    if len(fa) and len(fb):
        median = math.log(np.median(fa) / np.median(fb))
        interval = _bootstrap((fa, fb), _log_median_ratio)
    medians = (float(np.median(va)) if len(va) else None, float(np.median(vb)) if len(vb) else None)
    return Test(label, Kind.MANN_WHITNEY, p, p_opp, smallest, n=len(va) + len(vb), n_a=len(va), n_b=len(vb),
                dropped=len(a.values) + len(b.values) - len(va) - len(vb), names=(a.name, b.name),
                medians=medians, note="" if median is not None else (a.name if not len(fa) else b.name),
                effect=median, interval=interval, effect_name=f"ln(median {a.name} / median {b.name})",
                **_convergence((a, b)))


def share(label: str, k: int, n: int, threshold: float, alpha: float) -> Test:
    """k of n members meet a rule: exact one-sided binomial tests of "share > threshold" and of
    "share < threshold", with the one-sided Clopper-Pearson bounds at 1 - alpha."""
    if n == 0:
        return Test(label, Kind.SHARE, 1.0, 1.0, 1.0, n=0, wins=0, losses=0, threshold=threshold)
    greater = stats.binomtest(k, n, threshold, alternative="greater")
    less = stats.binomtest(k, n, threshold, alternative="less")
    bounds = (float(greater.proportion_ci(1 - alpha, method="exact").low),
              float(less.proportion_ci(1 - alpha, method="exact").high))
    return Test(label, Kind.SHARE, float(greater.pvalue), float(less.pvalue), threshold ** n, n=n, wins=k,
                losses=n - k, threshold=threshold, bounds=bounds, level=1 - alpha)


def share_p(k: int, n: int, threshold: float) -> tuple[float, float]:
    """(p, opposite p) of a share test of k of n against `threshold`, as `share` computes them."""
    if n == 0:
        return 1.0, 1.0
    return (float(stats.binomtest(k, n, threshold, alternative="greater").pvalue),
            float(stats.binomtest(k, n, threshold, alternative="less").pvalue))


def normal(label: str, a: float, se_a: float, b: float, se_b: float) -> Test:
    """One-sided z-test of "a < b" for two estimates with standard errors (e.g. Monte Carlo
    estimates), taken as independent: z = (b - a) / sqrt(se_a^2 + se_b^2), p = P(Z > z)."""
    se = math.hypot(se_a, se_b)
    if not (math.isfinite(a) and math.isfinite(b) and math.isfinite(se) and se > 0):
        return Test(label, Kind.Z, 1.0, 1.0, 1.0, n=2, estimates=(a, se_a, b, se_b))
    z = (b - a) / se
    return Test(label, Kind.Z, float(stats.norm.sf(z)), float(stats.norm.cdf(z)), 0.0, n=2,
                estimates=(a, se_a, b, se_b), z=z)


def exact(label: str, holds: bool, detail: str) -> Test:
    """A deterministic check (a quadrature, a closed form): p 0 when it holds, else p 1 and
    opposite p 0. It decides at any alpha. `detail`: what was checked, in words."""
    return Test(label, Kind.EXACT, 0.0 if holds else 1.0, 1.0 if holds else 0.0, 0.0, holds=holds, note=detail)


def union(label: str, tests: list[Test]) -> Test:
    """"At least one of these holds" (e.g. some penalty strength helps): Bonferroni on the best p;
    its opposite ("every one fails the other way") has the largest opposite p."""
    best = min(tests, key=lambda t: t.p)
    m = len(tests)
    if m == 1:
        return replace(best, label=label)
    return replace(best, label=label, kind=Kind.UNION, p=min(1.0, m * best.p),
                   p_opposite=max(t.p_opposite for t in tests),
                   smallest_p=min(1.0, m * min(t.smallest_p for t in tests)), parts=tuple(tests),
                   effect_name=f"{best.label}: {best.effect_name}")


def best_part(t: Test) -> Test:
    """The part of a union whose p is the union's (the test itself for any other kind)."""
    return min(t.parts, key=lambda part: part.p) if t.kind == Kind.UNION else t


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
    """Each test's Decision, in order (the rule `verdict` applies)."""
    adjusted = holm([t.p_opposite for t in tests]) if tests else []
    return [Decision(t, float(q), SUPPORTS if t.p < alpha else AGAINST if q < alpha else UNDECIDED)
            for t, q in zip(tests, adjusted)]


def verdict(tests: list[Test], alpha: float) -> str:
    """The claim's verdict from its tests (intersection-union; Holm for the opposite direction):
    reproduced when every p < alpha, contradicted when some Holm-adjusted opposite p < alpha,
    else inconclusive (also when there is nothing to test)."""
    if not tests:
        return INCONCLUSIVE
    if all(t.p < alpha for t in tests):
        return REPRODUCED
    return CONTRADICTED if any(d.p_against < alpha for d in decisions(tests, alpha)) else INCONCLUSIVE
