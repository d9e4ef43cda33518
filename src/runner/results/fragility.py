"""How fragile a verdict is: the fewest single outcomes whose change would change it.

This is the fragility index of clinical trials (Walsh et al., J Clin Epidemiol 2014: the fewest
patients whose outcome would have to change to undo a significant result), for the tests of
runner.results.verdicts, with Holm's correction recomputed:

- in a paired sign test an outcome is one pair's state: a win, a loss, or neither (a tie, or
  dropped as unconverged and not settled); moving one pair from one state to another is one
  change (a dropped pair entering as a loss is one);
- in a share test an outcome is one member meeting the rule or not;
- a union (at least one of its parts holds, Bonferroni) changes through its parts;
- tests that are not counts (Mann-Whitney ranks of values, z-tests on Monte Carlo estimates,
  quadrature) are held fixed: no count of theirs can change.

A change of float kernels changes exactly such states: the same code and seeds give each member
other float32 bits, and a pair whose members are close can swap. For a reproduced or
contradicted claim the fragility counts the changes that undo the verdict; for an inconclusive
one the fewest that would decide it, either way. `math.inf`: no such change exists (every test
that matters is held fixed, or the design cannot reach alpha).
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Iterator

import numpy as np

from runner.results.verdicts import (AGAINST, CONTRADICTED, REPRODUCED, SUPPORTS, Decision, Kind, Test, binom_p,
                                     holm, share_p)

FRAGILE = 1  # a verdict that one changed outcome (or none) can move is called fragile


@lru_cache(maxsize=None)
def _sign_p(wins: int, losses: int) -> tuple[float, float]:
    return binom_p(wins, wins + losses), binom_p(losses, wins + losses)


@lru_cache(maxsize=None)
def _share_p(k: int, n: int, threshold: float) -> tuple[float, float]:
    return share_p(k, n, threshold)


def states(t: Test) -> Iterator[tuple[int, float, float]]:
    """(changes, p, opposite p) of every state a count test can reach from its own, itself with 0
    changes; a test held fixed has only its own state. Sign test: every split of its pairs into
    wins, losses and neither; the changes from (w, l, o) to (w', l', o') are half the sum of the
    absolute differences (each change moves one pair). Share test: k' of n members meet the rule."""
    if t.kind == Kind.SIGN:
        total = t.n + t.dropped
        w, l = t.wins or 0, t.losses or 0
        o = total - w - l
        for w2 in range(total + 1):
            for l2 in range(total + 1 - w2):
                yield (abs(w2 - w) + abs(l2 - l) + abs(total - w2 - l2 - o)) // 2, *_sign_p(w2, l2)
    elif t.kind == Kind.SHARE and t.n:
        for k in range(t.n + 1):
            yield abs(k - (t.wins or 0)), *_share_p(k, t.n, t.threshold)
    else:
        yield 0, t.p, t.p_opposite


def changes(t: Test, opposite: bool, below: bool, x: float) -> float:
    """The fewest changes after which the test's p (or its opposite p, `opposite`) is below x
    (`below`) or at least x; math.inf when no reachable state does it. A union's p is
    min(1, m x its parts' smallest p) and its opposite p its parts' largest."""
    if t.kind == Kind.UNION:
        m = len(t.parts)
        if not opposite:
            costs = [changes(part, False, below, x / m) for part in t.parts]
            return min(costs) if below else sum(costs)
        costs = [changes(part, True, below, x) for part in t.parts]
        return sum(costs) if below else min(costs)
    best = math.inf
    for cost, p, p_opposite in states(t):
        value = p_opposite if opposite else p
        if (value < x) if below else (value >= x):
            best = min(best, cost)
    return best


def against_threshold(decided: list[Decision], i: int, alpha: float) -> float:
    """The opposite p below which test i goes against its claim, the other tests held: its
    Holm-adjusted opposite p is below alpha exactly when its opposite p is below this value
    (found by bisection; the adjusted p grows with the test's own)."""
    p = np.array([d.test.p_opposite for d in decided], dtype=float)

    def adjusted(v: float) -> float:
        p[i] = v
        return float(holm(p)[i])

    low, high = 0.0, 1.0
    for _ in range(60):
        mid = (low + high) / 2
        low, high = (mid, high) if adjusted(mid) < alpha else (low, mid)
    return high


def of_test(decided: list[Decision], i: int, alpha: float) -> float:
    """The fewest changes of test i's outcomes (the claim's other tests held) that change its
    decision: supports, against (Holm recomputed) or undecided."""
    d = decided[i]
    if d.decision == SUPPORTS:
        return changes(d.test, False, False, alpha)
    threshold = against_threshold(decided, i, alpha)
    if d.decision == AGAINST:
        return changes(d.test, True, False, threshold)
    return min(changes(d.test, False, True, alpha), changes(d.test, True, True, threshold))


def of_claim(tests: list[Test], verdict: str, alpha: float) -> float:
    """The fewest changed outcomes, over all the claim's tests, that change its verdict
    (runner.results.verdicts.verdict): reproduced needs every p < alpha, so one test losing it
    undoes it; contradicted holds while some test's opposite p is below alpha/m (Holm's first
    step), so every such test must rise above it; an inconclusive claim is decided by bringing
    every p below alpha, or one opposite p below alpha/m."""
    if not tests:
        return math.inf
    m = len(tests)
    if verdict == REPRODUCED:
        return min(changes(t, False, False, alpha) for t in tests)
    if verdict == CONTRADICTED:
        return sum(changes(t, True, False, alpha / m) for t in tests)
    return min(sum(changes(t, False, True, alpha) for t in tests),
               min(changes(t, True, True, alpha / m) for t in tests))


def is_fragile(fragility: float | None) -> bool:
    """Fragility 0 or 1: one changed outcome (or none) would change the verdict."""
    return fragility is not None and fragility <= FRAGILE
