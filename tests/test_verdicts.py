"""Verdicts on hand-made job directories whose answers are known (runner.results.verdicts, runner.papers):
paired sign tests, the intersection-union rule with Holm for the opposite direction, the
convergence gate, Clopper-Pearson shares, and the convergence rule itself (runner.results).
p-values are checked against the binomial distribution written out (C(n, k) / 2^n sums)."""

import math
from pathlib import Path

import numpy as np
import pytest

from factories import record, write_run
from runner.results.jobs import collect
from runner.papers import PAPERS
from runner.results.summary import member_convergence
from runner.results.claims import decide
from runner.results.verdicts import Arm, holm, paired, share, unpaired
from runner.results.wording import detail

ALPHA = 0.05
CLAIM = {c.id: c for paper in PAPERS for c in paper.claims}


def sign_p(wins: int, n: int) -> float:
    """P(at least `wins` of n fair coin flips), written out."""
    return sum(math.comb(n, k) for k in range(wins, n + 1)) / 2 ** n


def write_job(root: Path, act: str, metric: str, values, fates=None, converged=None, target="poly_low",
              seed=0, member_offset=0, improvement=None) -> None:
    """One job directory of a Table 4-like sweep: summary.json with the members' values, fates and
    convergence."""
    fates = fates or ["ok" if v is not None else "diverged" for v in values]
    converged = [True] * len(values) if converged is None else converged
    status = "completed" if all(f == "ok" for f in fates) else "diverged" if "ok" not in fates else "partly_diverged"
    config = {"activation": {"name": act}, "task": {"name": "polynomial", "target": target}, "seed": seed,
              "ensemble": {"size": len(values), "member_offset": member_offset}, "init": {"C_W": 1.0}}
    rec = record({metric: values}, status=status, fates=fates, converged=converged, improvement=improvement,
                 seed=seed, config=config)
    write_run(root / f"{len(list(root.glob('*')))}", rec)


def b9(tmp_path, mrepu, relu, **kwargs):
    """Claim B9 (MRePU's train MSE below ReLU's, per target) on two hand-made jobs."""
    write_job(tmp_path, "mrepu", "train_mse", mrepu, **kwargs.get("mrepu_kw", {}))
    write_job(tmp_path, "relu", "train_mse", relu, **kwargs.get("relu_kw", {}))
    return CLAIM["B9"].check(collect([tmp_path]), ALPHA)


RELU = [1e-3 * (1 + 0.1 * k) for k in range(8)]


def test_eight_of_eight_in_the_papers_direction_is_reproduced(tmp_path):
    out = b9(tmp_path, [v / 10 for v in RELU], RELU)
    assert out.verdict == "reproduced" and out.why == ""
    assert f"n=8 (8 wins, 0 losses), p = {sign_p(8, 8):.3g} (opposite 1)" in out.measured
    assert sign_p(8, 8) == pytest.approx(0.00390625)
    # every pair has ratio 1/10: the median log-ratio and both bootstrap bounds are ln(0.1)
    assert "median ln(mrepu/relu) -2.3 [-2.3, -2.3] on 8 finite pairs" in out.measured
    assert "converged 16/16 members" in out.measured


def test_eight_of_eight_against_is_contradicted(tmp_path):
    out = b9(tmp_path, [v * 10 for v in RELU], RELU)
    assert out.verdict == "contradicted"
    assert "the opposite direction is significant (Holm) for poly_low: mrepu < relu (p = 0.00391" in out.why


def test_six_of_eight_is_inconclusive_with_its_p(tmp_path):
    mrepu = [v / 10 for v in RELU[:6]] + [v * 10 for v in RELU[6:]]
    out = b9(tmp_path, mrepu, RELU)
    assert sign_p(6, 8) == pytest.approx(0.14453125)
    assert out.verdict == "inconclusive" and out.why == "no significant difference (p = 0.145)"


def test_three_seeds_cannot_reach_alpha(tmp_path):
    out = b9(tmp_path, [v / 10 for v in RELU[:3]], RELU[:3])
    assert out.verdict == "inconclusive" and out.why == "3 seeds: the smallest attainable p is 0.125"


def test_unconverged_members_drop_their_pairs(tmp_path):
    """Five MRePU members still improving: their pairs are dropped, three are left, and no sign test
    on three pairs can reach 5%. A member that failed is decided, converged or not."""
    out = b9(tmp_path, [v / 10 for v in RELU], RELU, mrepu_kw={"converged": [False] * 5 + [True] * 3})
    assert out.verdict == "inconclusive"
    assert out.why == "5/16 members unconverged, 3 of 8 pairs left: the smallest attainable p is 0.125"
    assert "converged 11/16 members, 5 unconverged (5 pairs dropped)" in out.measured
    # for context the row also gives the test on every pair; the verdict does not rest on it
    assert f"all pairs, converged or not: n=8 (8 wins, 0 losses), p = {sign_p(8, 8):.3g}" in out.measured
    failed = [None] + [v / 10 for v in RELU[1:]]
    out = b9(tmp_path / "failed", failed, RELU,
             mrepu_kw={"converged": [False] + [True] * 7, "fates": ["diverged"] + ["ok"] * 7})
    # the diverged member counts as +inf and loses its pair: 7 of 8
    assert out.verdict == "reproduced" and f"7 wins, 1 losses), p = {sign_p(7, 8):.3g}" in out.measured
    assert "converged 15/16 members, 1 failed" in out.measured and "on 7 finite pairs" in out.measured


def test_an_unconverged_pair_further_apart_than_its_members_still_move_is_kept(tmp_path):
    """Every member still improving (not converged by the rule): MRePU a decade below ReLU while each
    loss fell 30% over the tail (ln(1/0.7) = 0.36 < ln 10 = 2.3): the order is settled, all eight
    pairs count. Members 10% apart that both still fall 20% are not settled: every pair dropped."""
    unconverged = {"converged": [False] * 8, "improvement": [0.3] * 8}
    out = b9(tmp_path / "far", [v / 10 for v in RELU], RELU, mrepu_kw=unconverged, relu_kw=unconverged)
    assert out.verdict == "reproduced", out
    assert "8 pairs with an unconverged member kept as settled" in out.measured
    close = {"converged": [False] * 8, "improvement": [0.2] * 8}
    out = b9(tmp_path / "close", [v / 1.1 for v in RELU], RELU, mrepu_kw=close, relu_kw=close)
    assert out.verdict == "inconclusive", out
    assert out.why == "16/16 members unconverged, 0 of 8 pairs left: the smallest attainable p is 1"


def test_a_failed_member_decides_its_pair_against_an_unconverged_one(tmp_path):
    """Every MRePU member overflowed (+inf) and no ReLU member converged: more training cannot
    change any pair's order, so all eight stay, and eight losses contradict the claim."""
    out = b9(tmp_path, [None] * 8, RELU, relu_kw={"converged": [False] * 8},
             mrepu_kw={"converged": [False] * 8, "fates": ["diverged"] * 8})
    assert out.verdict == "contradicted", out
    assert "n=8 (0 wins, 8 losses), p = 1 (opposite 0.00391)" in out.measured
    assert "8 failed, 8 unconverged (0 pairs dropped)" in out.measured


def test_members_pair_by_seed_and_member_index(tmp_path):
    """Two seeds of four members each pair with the other arm's same (seed, member): eight pairs;
    both members failed in one pair: a tie, left out of the sign test."""
    for seed in (0, 1):
        write_job(tmp_path, "mrepu", "train_mse", [v / 10 for v in RELU[:4]], seed=seed)
        write_job(tmp_path, "relu", "train_mse", RELU[:4] if seed else [None] + RELU[1:4], seed=seed)
    jobs = collect([tmp_path])
    mrepu = [j for j in jobs if j.value("activation") == "mrepu" and j.value("seed") == 0][0]
    mrepu.record.metrics["train_mse"]["members"][0] = None
    mrepu.record.member_status[0] = "blown_up"
    out = CLAIM["B9"].check(jobs, ALPHA)
    assert f"n=8 (7 wins, 0 losses, 1 ties), p = {sign_p(7, 7):.3g}" in out.measured
    assert out.verdict == "reproduced"


def test_a_ranking_holds_only_if_every_step_does(tmp_path):
    """B8, MRePU < ReLU < GELU: each adjacent pair at alpha, no correction; one step 6/8 leaves the
    claim inconclusive, one step 0/8 contradicts it (Holm over the two steps)."""
    mrepu = [v / 10 for v in RELU]
    write_job(tmp_path / "a", "mrepu", "train_mse", mrepu)
    write_job(tmp_path / "a", "relu", "train_mse", RELU)
    write_job(tmp_path / "a", "gelu", "train_mse", [v * 10 for v in RELU[:6]] + [v / 10 for v in RELU[6:]])
    out = CLAIM["B8"].check(collect([tmp_path / "a"]), ALPHA)
    assert out.verdict == "inconclusive" and out.why == "poly_low: relu < gelu: no significant difference (p = 0.145)"
    write_job(tmp_path / "b", "mrepu", "train_mse", mrepu)
    write_job(tmp_path / "b", "relu", "train_mse", RELU)
    write_job(tmp_path / "b", "gelu", "train_mse", [v / 100 for v in RELU])
    out = CLAIM["B8"].check(collect([tmp_path / "b"]), ALPHA)
    assert out.verdict == "contradicted"
    assert f"poly_low: relu < gelu (p = {sign_p(8, 8):.3g}, adjusted {2 * sign_p(8, 8):.3g})" in out.why


def test_holm_step_down_against_its_definition():
    # sorted 0.01, 0.03, 0.04 -> 3 x 0.01, max(0.03, 2 x 0.03), max(0.06, 1 x 0.04)
    np.testing.assert_allclose(holm([0.04, 0.01, 0.03]), [0.06, 0.03, 0.06], rtol=1e-12)
    np.testing.assert_allclose(holm([0.2, 0.01, 0.02]), [0.2, 0.03, 0.04], rtol=1e-12)
    np.testing.assert_allclose(holm([0.5, 0.9]), [1.0, 1.0], rtol=1e-12)  # capped at 1, then monotone


def test_clopper_pearson_share_against_a_threshold():
    """All n members meet a rule: the one-sided lower bound solves p^n = alpha, so it is
    alpha^(1/n) (0.688 for 8 > 0.5: reproduced); none meets it: the upper bound is 1 - alpha^(1/n)."""
    for k, n, verdict in ((8, 8, "reproduced"), (0, 8, "contradicted"), (6, 8, "inconclusive")):
        test = share("x2 relu", k, n, 0.5, ALPHA)
        assert decide('', [test], ALPHA).verdict == verdict, (k, n)
    assert f"[{ALPHA ** (1 / 8):.2f}, 1.00]" in detail(share("x", 8, 8, 0.5, ALPHA))
    assert f"[0.00, {1 - ALPHA ** (1 / 8):.2f}]" in detail(share("x", 0, 8, 0.5, ALPHA))
    # 8/8 cannot show a share above 0.8 (0.8^8 = 0.17 > alpha): the design's limit is the reason
    assert decide('', [share("x", 8, 8, 0.8, ALPHA)], ALPHA).why == "8 members: the smallest attainable p is 0.168"


def test_threshold_claim_from_job_directories(tmp_path):
    """A2 (tanh saturates) on hand-made Paper A jobs: 8/8 and 7/8 members meet the rule."""
    for target, values in (("x2", [0.1] * 8), ("x3", [0.1] * 7 + [0.9])):
        config = {"activation": {"name": "tanh"}, "task": {"name": target}, "regularizer": {"coef": 0}}
        write_run(tmp_path / target, record({"tail_rel_range": values}, fates=["ok"] * 8, config=config))
    out = CLAIM["A2"].check(collect([tmp_path]), ALPHA)
    assert out.verdict == "reproduced", out
    assert "x3 tanh: " in out.measured and "7/8 = 88%" in out.measured


def test_unpaired_rank_test_counts_failed_members_as_worst():
    a = Arm("depth 1", [0.1] * 6, ["ok"] * 6, [False] * 6)  # unconverged, but every other member failed
    b = Arm("depth 5", [None] * 6, ["diverged"] * 6, [False] * 6)
    test = unpaired("depth 1 < depth 5", a, b)
    assert test.p < ALPHA and test.p_opposite > 0.5
    assert "no effect size: depth 5 has no finite value" in detail(test)
    assert decide('', [test], ALPHA).verdict == "reproduced"
    short = unpaired("x", Arm("a", [0.1] * 2, ["ok"] * 2, [True] * 2), Arm("b", [1.0] * 2, ["ok"] * 2, [True] * 2))
    assert short.smallest_p == pytest.approx(1 / math.comb(4, 2))  # 1/6: cannot reach 5%


def test_paired_arms_must_have_the_same_members():
    with pytest.raises(ValueError, match="cannot be paired"):
        paired("x", Arm("a", [1.0], ["ok"], [True]), Arm("b", [1.0, 2.0], ["ok"] * 2, [True] * 2))


# ------------------------------------------------------------ the convergence rule


@pytest.mark.parametrize("losses,converged,improvement", [
    ([1, 0.5, 0.3, 0.2, 0.2, 0.2, 0.2, 0.2, 0.2, 0.2], True, 0.0),               # plateau
    ([0.9 ** i for i in range(10)], False, 1 - 0.9 ** 2),                         # still falling: 19% in the tail
    ([1, 0.5, 0.3, 0.2, 0.2, 0.2, 0.2, 0.2, 0.2, 0.195], True, 0.025),            # 2.5% < 5%
    ([1, 0.5, 0.3, 0.2, 0.2, 0.2, 0.2, 0.2, 0.25, 0.25], True, -0.25),            # worse at the end: not improving
    ([1, 0.5, 0.3, 0.2], False, None),                                            # too short to judge
    ([1, 0.5, 0.3, 0.2, 0.2, 0.2, None, None], False, None),                      # went non-finite
    ([1, 0.5, float("nan"), 0.2, 0.2, 0.2, 0.2, 0.2], False, None),
])
def test_convergence_rule_on_hand_made_histories(losses, converged, improvement):
    got, measured, reason = member_convergence(losses, tail=0.2, tol=0.05)
    assert got is converged, reason
    assert measured == (None if improvement is None else pytest.approx(improvement, rel=1e-12))
    if len(losses) < 5:
        assert reason.startswith("too short to judge")


def test_tail_is_a_share_of_the_logged_epochs():
    # 11 points, tail 0.2: ceil(2.2) = 3 in the tail; the drop at the third-to-last counts
    losses = [1.0] * 8 + [0.5, 0.5, 0.5]
    assert member_convergence(losses, tail=0.2, tol=0.05)[:2] == (False, 0.5)
    assert member_convergence(losses, tail=0.1, tol=0.05)[:2] == (True, 0.0)  # ceil(1.1) = 2 points


def test_an_estimate_without_a_standard_error_says_nan_not_minus_inf():
    """A Monte Carlo estimate whose standard error is not a number (an overflowed vertex) is shown as
    such, and its test cannot decide."""
    from runner.results.verdicts import normal

    t = normal("layer 2 < layer 10", 0.49, 0.05, 755.0, float("nan"))
    assert "755 ± nan" in detail(t) and "-inf" not in detail(t)
    assert t.p == 1.0 and t.smallest_p == 1.0


def test_a_step_that_leans_the_other_way_without_surviving_holm_says_so(tmp_path):
    """B8 on three targets: on poly_low GELU beats ReLU in 7 of 8 pairs (p = 0.0352 the other way),
    which Holm's correction over the claim's six tests does not keep (6 x 0.0352 > 0.05): the claim
    is inconclusive, and the reason names the direction the data lean."""
    for target in ("poly_low", "poly_high", "x_abs_x"):
        write_job(tmp_path, "mrepu", "train_mse", [v / 10 for v in RELU], target=target)
        write_job(tmp_path, "relu", "train_mse", RELU, target=target)
        gelu = [v / 10 for v in RELU[:7]] + [v * 10 for v in RELU[7:]] if target == "poly_low" else [v * 10 for v in RELU]
        write_job(tmp_path, "gelu", "train_mse", gelu, target=target)
    out = CLAIM["B8"].check(collect([tmp_path]), ALPHA)
    assert out.verdict == "inconclusive", out
    assert "poly_low: relu < gelu: leans the other way (p = 0.0352 that way)" in out.why
