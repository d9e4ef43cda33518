"""Claims as checks on sweep results: what was measured, and a verdict by a rule.

A `Claim` names the sweeps it reads (names in conf/reproduce/<scale>.yaml), says what its source
says, states its rule in words, and computes an Outcome (measured text, verdict, why) from the
jobs of those sweeps at a significance level alpha (conf/reproduce/<scale>.yaml: verdicts.alpha).
The papers' claims are runner.papers; this module holds what any claim is made of: reading
members out of jobs (with the one rule of which members count, runner.results.record.RunRecord.members),
pairing members by (seed, member), and the kinds of check the papers use. The statistics are
runner.results.verdicts. Verdicts: `reproduced`, `contradicted` or `inconclusive` (with the reason);
a check that raises is an `error`, never a verdict.

- Comparative checks (`ranking_check`, `paired_test`) are sets of one-sided tests: paired by seed
  (member k of each arm shares its initial-weight stream) where the arms share them, else
  Mann-Whitney. The claim is reproduced only when every test is significant (intersection-union).
- Threshold checks (`per_member_rule`) test the share of members meeting a per-member rule against
  MAJORITY: a claim that such networks do X is read as "more than half of independently
  initialized members do it" (one-sided Clopper-Pearson bound above 0.5).
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

from runner.results import fragility, verdicts, wording
from runner.results.jobs import Job
from runner.results.summary import FINISHED, member_stats
from runner.results.verdicts import ERROR, INCONCLUSIVE, NOT_RUN, Arm, Test, decisions

MAJORITY = 0.5   # a qualitative "networks of this kind do X": more than half of the members do

Check = Callable[[list[Job], float], "Outcome"]  # (jobs, alpha) -> Outcome


@dataclass(frozen=True)
class Outcome:
    """What a check found: the measured numbers, the verdict and, unless reproduced, why; the
    tests the verdict rests on (none when nothing could be tested) and its fragility
    (runner.results.fragility: the fewest changed outcomes that would change the verdict; None
    when there is no verdict to change)."""

    measured: str
    verdict: str
    why: str = ""
    tests: tuple[Test, ...] = ()
    fragility: float | None = None


@dataclass(frozen=True)
class Claim:
    id: str
    paper: str          # where in which paper, e.g. "A, Fig. 1"
    says: str
    sweeps: tuple[str, ...]  # whose jobs, pooled, the check reads
    rule: str
    check: Check


def decide(measured: str, tests: list[Test], alpha: float) -> Outcome:
    """The outcome of a claim made of `tests` (runner.results.verdicts.verdict), why it fell
    short in words, and its fragility."""
    verdict = verdicts.verdict(tests, alpha)
    return Outcome(measured, verdict, wording.why(verdict, decisions(tests, alpha), alpha), tuple(tests),
                   fragility.of_claim(tests, verdict, alpha) if tests else None)


def nothing(measured: str) -> Outcome:
    return Outcome(measured, INCONCLUSIVE, measured)


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
    """Every member's value of `metric` in these jobs, NaN where it was not finite or the member
    failed (Job.members)."""
    return np.array([np.nan if v is None else v for j in jobs for v in j.members(metric)], dtype=float)


def scalar(jobs: list[Job], metric: str) -> float:
    """A whole-job metric (one value per job, e.g. a theory quantity) of the first job, or NaN."""
    values = members(jobs[:1], metric)
    return float(values[0]) if len(values) else math.nan


def stats(values: np.ndarray) -> str:
    """'mean ± std, median m (n=finite/total)' in 3 significant digits (the median because one
    blown-up member dominates a mean)."""
    s = member_stats(np.asarray(values, dtype=float))
    if not s["n_finite"]:
        return f"no finite value (n=0/{len(values)})"
    return f"{s['mean']:.3g} ± {s['std']:.2g}, median {s['median']:.3g} (n={s['n_finite']}/{len(values)})"


def members_by_stream(jobs: list[Job], metric: str) -> dict[tuple[int, int], tuple[float | None, str, bool, float | None]]:
    """(seed, member index) -> (value of `metric`, fate, converged, improvement) for every member of
    these jobs. Member k of a job with seed s and ensemble.member_offset o is (s, o + k): its
    initial-weight stream. Fates are Job.fates; a member without a recorded convergence is
    unconverged (undecided)."""
    rows = {}
    for job in jobs:
        values = job.members(metric)
        n = len(values)
        seed, offset = int(job.value("seed") or 0), int(job.value("ensemble.member_offset") or 0)
        for k, row in enumerate(zip(values, job.fates(metric), job.record.converged(n), job.record.improvement(n))):
            rows[(seed, offset + k)] = row
    return rows


def arm(name: str, rows: dict, keys: list) -> Arm:
    values, fates, converged, improvement = zip(*(rows[k] for k in keys)) if keys else ((), (), (), ())
    return Arm(name, values, fates, converged, improvement)


def paired_test(label: str, a: tuple[str, list[Job]], b: tuple[str, list[Job]], metric: str) -> Test:
    """Sign test of "a's metric < b's", member k against member k (the seeds both arms have)."""
    rows_a, rows_b = members_by_stream(a[1], metric), members_by_stream(b[1], metric)
    keys = sorted(set(rows_a) & set(rows_b))
    return verdicts.paired(label, arm(a[0], rows_a, keys), arm(b[0], rows_b, keys))


def read_rows(job: Job, name: str) -> list[dict]:
    with open(job.path / name, newline="") as f:
        return [{k: float(v) if v not in ("", None) else math.nan for k, v in row.items()}
                for row in csv.DictReader(f)]




def per_member_rule(sweep_where: list[dict], metric: str, test: Callable[[np.ndarray], np.ndarray],
                    label: Callable[[dict], str]) -> Check:
    """For every group of `sweep_where`, the share of the trained members (fate ok, a finite
    value) meeting `test` is above MAJORITY: the claim is about what trained networks do; members
    that failed to train are shown, not counted."""
    def check(jobs: list[Job], alpha: float) -> Outcome:
        parts, tests = [], []
        for where in sweep_where:
            values = members(select(jobs, **where), metric)
            finite = values[np.isfinite(values)]
            if not len(finite):
                continue
            tests.append(verdicts.share(label(where), int(test(finite).sum()), len(finite), MAJORITY, alpha))
            parts.append(f"{label(where)}: {stats(values)}; rule met by {wording.detail(tests[-1])}")
        if len(tests) < len(sweep_where):
            return nothing("; ".join(parts + ["a group has no trained member"]))
        return decide("; ".join(parts), tests, alpha)
    return check


def paired_comparisons(jobs: list[Job], metric: str, key: str, pairs: list[tuple[str, str]],
                       complete: bool = True) -> tuple[list[Test], list[str]]:
    """Per column (`key`), the paired sign test "a < b" of each activation pair (a, b) of `pairs`
    that ran there, and per column a line of text: each arm's statistics and each test. With
    `complete`, a column counts only where every activation of `pairs` ran."""
    tests, parts = [], []
    names = list(dict.fromkeys(name for pair in pairs for name in pair))
    for col in dict.fromkeys(j.value(key) for j in select(jobs)):
        arms = {act: select(jobs, activation=act, **{key.replace(".", "__"): col}) for act in names}
        ran = [(a, b) for a, b in pairs if arms[a] and arms[b]]
        if not ran or (complete and not all(arms.values())):
            continue
        col_tests = [paired_test(f"{col}: {a} < {b}", (a, arms[a]), (b, arms[b]), metric) for a, b in ran]
        tests += col_tests
        summary = ", ".join(f"{act} {stats(members(arms[act], metric))}" for act in names if arms[act])
        parts.append(f"{col} ({summary}): " + "; ".join(f"{a} < {b}: {wording.detail(t)}" for (a, b), t in zip(ran, col_tests)))
    return tests, parts


def ranking_check(metric: str, order: tuple[str, ...], key: str = "task.target",
                  reference: str | None = None) -> Check:
    """Per column (`key`), paired sign tests of `order`, best first: each adjacent pair (a ranking
    holds when each of its steps does), or with `reference` the reference against every other
    activation (nothing else ordered). Failed members count as +inf; unconverged pairs are dropped
    (runner.results.verdicts). The claim holds when every test in every column does."""
    pairs = [(reference, act) for act in order if act != reference] if reference else list(zip(order, order[1:]))

    def check(jobs: list[Job], alpha: float) -> Outcome:
        tests, parts = paired_comparisons(jobs, metric, key, pairs)
        if not tests:
            return nothing("no runs with every activation")
        return decide("; ".join(parts), tests, alpha)
    return check


def versus_check(metric: str, reference: str, key: str = "task.name",
                 candidates: tuple[str, ...] | None = None) -> Check:
    """Per column (`key`), every other activation (or `candidates`) against `reference`: paired sign
    tests "a < reference" of `metric` (lower is better), where both ran."""
    def check(jobs: list[Job], alpha: float) -> Outcome:
        present = dict.fromkeys(j.value("activation") for j in select(jobs))
        pairs = [(a, reference) for a in (candidates or present) if a != reference]
        tests, parts = paired_comparisons(jobs, metric, key, pairs, complete=False)
        if not tests:
            return nothing(f"no column where {reference} and another activation both trained")
        return decide("; ".join(parts), tests, alpha)
    return check


PAIRED = ("one-sided sign test of member k against member k (same initial weights), failed members +inf, "
          "pairs with an unconverged member dropped unless settled; every test p < α")
SHARE = f"the share of members meeting it is above {MAJORITY:g} (one-sided Clopper-Pearson bound, level α)"


def evaluate(claim: Claim, sweeps: dict[str, list[Job]], alpha: float) -> tuple[Outcome, list[Job]]:
    """The claim's verdict at level `alpha` on the pooled jobs of its sweeps (`sweeps`: the jobs of
    every sweep that ran), and those jobs."""
    missing = [s for s in claim.sweeps if s not in sweeps]
    if missing:
        text = f"sweep {', '.join(missing)} did not run"
        return Outcome(text, NOT_RUN, text), []
    jobs = [j for s in claim.sweeps for j in sweeps[s]]
    try:
        return claim.check(jobs, alpha), jobs
    except Exception as exc:  # noqa: BLE001 - the report shows the error, and reproduce.py exits non-zero
        text = f"{type(exc).__name__}: {exc}"
        return Outcome(f"could not be computed: {text}", ERROR, text), jobs
