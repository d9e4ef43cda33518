"""The report's words for the numbers of runner.results.verdicts: one place that says a test, its
counts, what caps its p, and why a claim did not decide. Tables, claims and plots read the
numbers; only this module (and the Markdown around it) writes the words."""

from __future__ import annotations

import math

from runner.results.verdicts import CONTRADICTED, INCONCLUSIVE, REPRODUCED, Decision, Kind, Test, best_part


def number(x: float | None) -> str:
    """3 significant digits; nan, inf and -inf spelled out."""
    if x is None:
        return "-"
    return f"{x:.3g}" if math.isfinite(x) else "nan" if math.isnan(x) else "inf" if x > 0 else "-inf"


def fragility(value: float | None) -> str:
    """A fragility for a table: the count, '–' where no change of counted outcomes can move it."""
    return "–" if value is None or math.isinf(value) else str(int(value))


def convergence(t: Test) -> str:
    """'10/16 members, 2 failed, 4 unconverged (2 pairs dropped)' ('' for tests of no members)."""
    if not t.members:
        return ""
    text = f"{t.converged}/{t.members} members"
    if t.failed:
        text += f", {t.failed} failed"
    if t.unconverged:
        dropped = f"{t.dropped} pairs" if t.kind in (Kind.SIGN, Kind.UNION) else f"{t.dropped} members"
        text += f", {t.unconverged} unconverged ({dropped} dropped)"
    return text


def _sign(t: Test) -> str:
    ties = t.n - t.wins - t.losses
    counts = f"{t.wins} wins, {t.losses} losses" + (f", {ties} ties" if ties else "")
    if t.effect is None:
        effect = "no pair with both values finite"
    else:
        low, high = t.interval or (math.nan, math.nan)
        effect = f"{t.effect_name} {number(t.effect)} [{number(low)}, {number(high)}] on {t.effect_pairs} finite pairs"
    return f"n={t.n} ({counts}), p = {t.p:.3g} (opposite {t.p_opposite:.3g}), {effect}"


def detail(t: Test) -> str:
    """The test in full: n, counts, p both ways, the effect with its interval, convergence."""
    if t.kind == Kind.UNION:
        best, m = best_part(t), len(t.parts)
        return f"best of {m}: {text(best)}" + (f"; Bonferroni x{m}: p = {t.p:.3g}" if m > 1 else "")
    if t.kind == Kind.SIGN:
        out = f"{_sign(t)}; converged {convergence(t)}"
        if t.settled:
            out += f"; {t.settled} pairs with an unconverged member kept as settled"
        if t.context is not None:
            out += f"; all pairs, converged or not: {_sign(t.context)}"
        return out
    if t.kind == Kind.MANN_WHITNEY:
        a, b = t.names
        if t.effect is None:
            effect = f"no effect size: {t.note} has no finite value"
        else:
            low, high = t.interval or (math.nan, math.nan)
            effect = f"ln(median {a} / median {b}) {number(t.effect)} [{number(low)}, {number(high)}] over finite values"
        ma, mb = t.medians or (None, None)
        return (f"n={t.n_a}+{t.n_b}, p = {t.p:.3g} (opposite {t.p_opposite:.3g}, Mann-Whitney), "
                f"medians {number(ma)} vs {number(mb)}, {effect}; converged {convergence(t)}")
    if t.kind == Kind.SHARE:
        if not t.n:
            return "no members"
        low, high = t.bounds
        return (f"{t.wins}/{t.n} = {t.wins / t.n:.0%}, one-sided {t.level:.0%} Clopper-Pearson bounds "
                f"[{low:.2f}, {high:.2f}] against {t.threshold:g}: p = {t.p:.3g} (opposite {t.p_opposite:.3g})")
    if t.kind == Kind.Z:
        a, se_a, b, se_b = t.estimates
        if t.z is None:
            return f"{number(a)} ± {number(se_a)} vs {number(b)} ± {number(se_b)}: no finite estimate with a standard error"
        return (f"{number(a)} ± {number(se_a)} vs {number(b)} ± {number(se_b)} (SE): z = {t.z:.3g}, "
                f"p = {t.p:.3g} (opposite {t.p_opposite:.3g})")
    return t.note  # exact: what the caller checked


def text(t: Test) -> str:
    """'label: detail'."""
    return f"{t.label}: {detail(t)}"


def rests_on(t: Test) -> str:
    """What the test rests on: '8 pairs', '16+16 members', '64 members', '2 estimates', 'quadrature'."""
    t = best_part(t)
    if t.kind == Kind.SIGN:
        return f"{t.n} pair" + ("" if t.n == 1 else "s")
    if t.kind == Kind.MANN_WHITNEY:
        return f"{t.n_a}+{t.n_b} members"
    if t.kind == Kind.SHARE:
        return f"{t.n} members"
    return "2 estimates" if t.kind == Kind.Z else "quadrature"


def counts(t: Test) -> str:
    """'8 wins, 0 losses', '7/8 meet the rule (against 0.5)', 'holds', the estimates; '' for a rank test."""
    t = best_part(t)
    if t.kind == Kind.SIGN:
        return f"{t.wins} wins, {t.losses} losses"
    if t.kind == Kind.SHARE:
        return f"{t.wins}/{t.n} meet the rule (against {t.threshold:g})" if t.n else ""
    if t.kind == Kind.Z:
        a, se_a, b, se_b = t.estimates
        return f"{number(a)} vs {number(b)}" if t.z is None else f"{number(a)} ± {number(se_a)} vs {number(b)} ± {number(se_b)}"
    if t.kind == Kind.EXACT:
        return "holds" if t.holds else "fails"
    return ""


def limit(t: Test) -> str:
    """What caps the smallest attainable p: '3 seeds', '5/16 members unconverged, 3 of 8 pairs left'."""
    t = best_part(t)
    if t.kind == Kind.SIGN:
        return (f"{t.unconverged}/{t.members} members unconverged, {t.n} of {t.n + t.dropped} pairs left"
                if t.dropped else f"{t.n} seeds")
    if t.kind == Kind.MANN_WHITNEY:
        return (f"{t.dropped}/{t.members} members unconverged, {t.n_a}+{t.n_b} left" if t.dropped
                else f"{t.n_a}+{t.n_b} members")
    if t.kind == Kind.SHARE:
        return f"{t.n} members"
    if t.kind == Kind.Z and t.z is None:
        return "no finite estimate"
    return ""


def shortfall(t: Test, alpha: float) -> str:
    """Why this test is not significant at alpha ('' when it is)."""
    if t.p < alpha:
        return ""
    if t.smallest_p >= alpha:
        return f"{limit(t)}: the smallest attainable p is {t.smallest_p:.3g}"
    if t.p_opposite < alpha:  # not significant once Holm corrects for the claim's tests
        return (f"leans the other way (p = {t.p_opposite:.3g} that way), not significant after Holm's "
                "correction across the claim's tests")
    return f"no significant difference (p = {t.p:.3g})"


def why(verdict: str, decided: list[Decision], alpha: float) -> str:
    """Why a claim got its verdict: '' when reproduced; the tests significant the other way when
    contradicted; else each reason a test fell short, said once when every test shares it."""
    if not decided:
        return "nothing to test"
    if verdict == REPRODUCED:
        return ""
    if verdict == CONTRADICTED:
        return "the opposite direction is significant (Holm) for " + "; ".join(
            f"{d.test.label} (p = {d.test.p_opposite:.3g}, adjusted {d.p_against:.3g})"
            for d in decided if d.p_against < alpha)
    assert verdict == INCONCLUSIVE, verdict
    reasons: dict[str, list[str]] = {}
    for d in decided:
        if reason := shortfall(d.test, alpha):
            reasons.setdefault(reason, []).append(d.test.label)
    if len(reasons) == 1 and len(next(iter(reasons.values()))) == len(decided):
        return next(iter(reasons))  # the same reason for every test: say it once
    return "; ".join(f"{', '.join(labels)}: {reason}" for reason, labels in reasons.items())
