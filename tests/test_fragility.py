"""Fragility (runner.results.fragility) against an independent recomputation: the binomial tails and
Holm's step-down written out here, and a search over the outcomes themselves (every combination of
single changes), on hand-made claims and on the counts the committed reports publish (claims.json)."""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path

import pytest

from runner.results import fragility
from runner.results.verdicts import Kind, Test, decisions, verdict

ROOT = Path(__file__).resolve().parents[1]
ALPHA = 0.05


def tail(k: int, n: int, q: float = 0.5) -> float:
    """P(Binomial(n, q) >= k), written out (1 for n = 0)."""
    return sum(math.comb(n, j) * q ** j * (1 - q) ** (n - j) for j in range(k, n + 1)) if n else 1.0


def holm_min(ps: list[float]) -> float:
    """The smallest Holm-adjusted p: m times the smallest p (Holm's first step)."""
    return min(1.0, len(ps) * min(ps))


def p_pair(state: tuple) -> tuple[float, float]:
    """(p, opposite p) of a count state: ('sign', wins, losses, other) or ('share', met, n, threshold)."""
    if state[0] == "sign":
        _, w, l, _ = state
        return tail(w, w + l), tail(l, w + l)
    _, k, n, q = state
    return tail(k, n, q), 1 - tail(k + 1, n, q)


def judge(states: list[tuple]) -> str:
    """The verdict rule, written out: every p < alpha, else some Holm-adjusted opposite p < alpha."""
    ps = [p_pair(s) for s in states]
    if all(p < ALPHA for p, _ in ps):
        return "reproduced"
    return "contradicted" if holm_min([q for _, q in ps]) < ALPHA else "inconclusive"


def moves(state: tuple) -> list[tuple]:
    """Every state one changed outcome away."""
    if state[0] == "sign":
        _, w, l, o = state
        counts, out = [w, l, o], []
        for a, b in itertools.permutations(range(3), 2):
            if counts[a]:
                c = list(counts)
                c[a] -= 1
                c[b] += 1
                out.append(("sign", *c))
        return out
    _, k, n, q = state
    return [("share", k + d, n, q) for d in (-1, 1) if 0 <= k + d <= n]


def searched_fragility(states: list[tuple], depth: int) -> float:
    """The fewest single changes (at most `depth`) after which the verdict differs; inf if none."""
    start, frontier, seen = judge(states), {tuple(states)}, {tuple(states)}
    for d in range(1, depth + 1):
        nxt = set()
        for current in frontier:
            for i, s in enumerate(current):
                for m in moves(s):
                    changed = current[:i] + (m,) + current[i + 1:]
                    if changed in seen:
                        continue
                    if judge(list(changed)) != start:
                        return d
                    seen.add(changed)
                    nxt.add(changed)
        frontier = nxt
    return math.inf


def as_test(state: tuple, label: str = "t") -> Test:
    p, q = p_pair(state)
    if state[0] == "sign":
        _, w, l, o = state
        return Test(label, Kind.SIGN, p, q, 0.5 ** (w + l), n=w + l, wins=w, losses=l, dropped=o)
    _, k, n, threshold = state
    return Test(label, Kind.SHARE, p, q, threshold ** n, n=n, wins=k, losses=n - k, threshold=threshold)


CLAIMS = [
    [("sign", 8, 0, 0)],                                   # 8 of 8: one loss leaves p 0.035, two undo it
    [("sign", 7, 1, 0)],
    [("sign", 0, 8, 0), ("sign", 8, 0, 0)],                # contradicted by one step, supported by the other
    [("sign", 6, 2, 0), ("sign", 5, 1, 2)],                # inconclusive
    [("sign", 3, 0, 5)],                                   # 5 pairs dropped: inconclusive
    [("share", 7, 8, 0.5), ("sign", 8, 0, 0)],
    [("share", 4, 8, 0.5), ("share", 6, 8, 0.5)],
]


@pytest.mark.parametrize("states", CLAIMS)
def test_claim_fragility_equals_a_search_over_outcomes(states):
    tests = [as_test(s, f"t{i}") for i, s in enumerate(states)]
    v = verdict(tests, ALPHA)
    assert v == judge(states)
    expected = searched_fragility(states, depth=6)
    assert fragility.of_claim(tests, v, ALPHA) == expected


def test_one_dropped_pair_entering_as_a_loss_contradicts():
    """Six steps, one of them 0 wins and 6 losses with 2 pairs dropped: 6 x 2^-6 = 0.094 is not
    below 0.05; one dropped pair entering as a loss gives 6 x 2^-7 = 0.047, contradicted."""
    states = [("sign", 0, 6, 2)] + [("sign", 5, 3, 0)] * 5
    tests = [as_test(s) for s in states]
    assert verdict(tests, ALPHA) == "inconclusive"
    assert fragility.of_claim(tests, "inconclusive", ALPHA) == 1
    assert judge([("sign", 0, 7, 1)] + states[1:]) == "contradicted"


def test_a_union_changes_through_its_parts():
    """At least one of two steps holds, Bonferroni: 8 of 8 gives 2 x 0.0039 < 0.05; undoing it
    needs every part at p >= 0.05 / 2: one loss gives 7 of 8, p 0.035."""
    strong, weak = as_test(("sign", 8, 0, 0), "a"), as_test(("sign", 4, 4, 0), "b")
    from runner.results.verdicts import union
    u = union("u", [strong, weak])
    assert u.kind == Kind.UNION and u.p == pytest.approx(2 * 0.5 ** 8)
    assert fragility.changes(u, False, False, ALPHA) == 1
    assert fragility.of_claim([u], "reproduced", ALPHA) == 1


def test_test_fragility_recomputes_holm():
    """A step against its claim only while it stays below Holm's threshold among the others."""
    tests = [as_test(("sign", 0, 8, 0)), as_test(("sign", 4, 4, 0))]
    decided = decisions(tests, ALPHA)
    assert [d.decision for d in decided] == ["against", "undecided"]
    # 0 wins of 8 is 2 x 0.0039 after Holm; one loss turned win: 2 x tail(7, 8) = 0.07, no longer against
    assert fragility.of_test(decided, 0, ALPHA) == 1
    assert fragility.of_test(decided, 1, ALPHA) == searched_fragility([("sign", 4, 4, 0)], 8)


def held_fixed(test: dict) -> bool:
    return test["kind"] not in ("sign", "share", "union")


def states_of(test: dict) -> tuple | None:
    if test["kind"] == "sign":
        return "sign", test["wins"], test["losses"], test["n"] + test["dropped"] - test["wins"] - test["losses"]
    if test["kind"] == "share" and test["n"]:
        return "share", test["wins"], test["n"], test["threshold"]
    return None


@pytest.mark.parametrize("scale", ["smoke", "medium"])
def test_published_fragility_agrees_with_a_search_over_the_published_counts(scale):
    """Each claim of claims.json made only of sign and share tests: no combination of fewer
    changes than its fragility moves its verdict, and (when it is at most 2) one of exactly that
    many does; every p recomputed here from the counts."""
    path = ROOT / "reports" / scale / "claims.json"
    if not path.exists():
        pytest.skip(f"{path} is not committed")
    record = json.loads(path.read_text())
    checked = 0
    for claim in record["claims"]:
        tests = claim["tests"]
        if claim["verdict"] not in ("reproduced", "contradicted", "inconclusive") or not tests \
                or any(held_fixed(t) for t in tests):
            continue
        states = [states_of(t) for t in tests]
        if any(s is None for s in states):
            continue
        for t, s in zip(tests, states):
            p, q = p_pair(s)
            assert t["p"] == pytest.approx(p, rel=1e-9, abs=1e-12) and t["p_opposite"] == pytest.approx(q, rel=1e-9, abs=1e-12)
        assert judge(states) == claim["verdict"], claim["id"]
        published = math.inf if claim["fragility"] is None else claim["fragility"]
        depth = min(published, 2)
        found = searched_fragility(states, int(depth) if math.isfinite(depth) else 2)
        if published <= 2:
            assert found == published, claim["id"]
        else:
            assert found == math.inf, claim["id"]  # nothing within 2 changes moves it
        checked += 1
    assert checked >= 5
