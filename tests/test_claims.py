"""runner.results.claims and the papers' checks (runner.papers): each claim's rule on hand-made jobs whose answer is known, so a report's
verdicts mean what the rules say (which members are paired, +inf for overflowed members, shares
against a majority, the C_W filter). The statistics themselves: tests/test_verdicts.py."""

import numpy as np
import pytest

from factories import job as as_job, record
from runner.results.claims import per_member_rule, ranking_check, stats
from runner.papers.kimkang import mrepu_auto, note_mrepu_failures, phase_diagram_check, repu_kernel_check
from runner.papers.tsvetkova import lam0, spectral_norm_check


def job(act, metric, values, target="p", status="completed", C_W=1.0, member_status=None, **config):
    """A finished job whose members all converged (runner.results.verdicts drops unconverged pairs)."""
    auto = C_W == "auto"
    rec = record({metric: values}, status=status, fates=member_status, converged=[True] * len(values),
                 config={"activation": {"name": act}, "task": {"target": target}, "init": {"C_W": C_W}, **config},
                 resolved_init={"scheme": "critical", "C_W_first": 0.0123, "C_W": 0.456, "C_b": 0.0} if auto else None)
    return as_job(rec, {"init.C_W": "auto"} if auto else {}, f"/fake/{act}-{target}-{C_W}")


ALPHA = 0.05


def test_ranking_is_a_sign_test_per_adjacent_pair_with_overflows_as_worst():
    relu = job("relu", "train_mse", [2.0] * 5)
    gelu = job("gelu", "train_mse", [3.0] * 5)
    check = ranking_check("train_mse", ("mrepu", "relu", "gelu"))
    five = check([job("mrepu", "train_mse", [1.0] * 5), relu, gelu], ALPHA)
    assert five.verdict == "reproduced"  # 5/5 twice: p = 1/32 each
    assert "mrepu < relu: n=5 (5 wins, 0 losses), p = 0.0312" in five.measured
    # an overflowed member (None) counts as +inf, so it loses its seed: 4/5, p = 6/32
    four = check([job("mrepu", "train_mse", [1.0, 1.0, 1.0, None, 1.0]), relu, gelu], ALPHA)
    assert four.verdict == "inconclusive" and four.why == "p: mrepu < relu: no significant difference (p = 0.188)"


def test_ranking_with_a_reference_only_needs_the_reference_to_win():
    check = ranking_check("deriv_mse", ("mrepu", "relu", "gelu"), reference="mrepu")
    out = check([job("mrepu", "deriv_mse", [1.0] * 5), job("relu", "deriv_mse", [3.0, 2.0, 3.0, 2.0, 3.0]),
                 job("gelu", "deriv_mse", [2.0, 3.0, 2.0, 3.0, 2.0])], ALPHA)  # relu vs gelu differs per seed
    assert out.verdict == "reproduced"


def test_ranking_without_every_activation_is_inconclusive():
    out = ranking_check("train_mse", ("mrepu", "relu"))([job("relu", "train_mse", [1.0])], ALPHA)
    assert out.verdict == "inconclusive"


def test_overflow_note_and_auto_init_filter():
    paper = job("mrepu", "train_mse", [None, None, None], C_W=0.5, status="diverged")
    auto = job("mrepu", "train_mse", [1e-4, 2e-4, 1e20], C_W="auto", status="partly_diverged",
               member_status=["ok", "ok", "blown_up"])
    relu = job("relu", "train_mse", [1e-3, 1e-3, 1e-3])
    check = ranking_check("train_mse", ("mrepu", "relu"))
    out = note_mrepu_failures(check, "train_mse", "paper's C_W")([paper, relu], ALPHA)
    # 3/3 against, but three seeds cannot reach 5% either way
    assert out.verdict == "inconclusive" and "3 seeds: the smallest attainable p is 0.125" in out.why
    assert "3/3 MRePU members overflowed" in out.why
    out = mrepu_auto(note_mrepu_failures(check, "train_mse", "at init.C_W=auto"), "task.target")([paper, auto, relu],
                                                                                              ALPHA)
    assert "n=3 (2 wins, 1 losses)" in out.measured  # the C_W = 0.5 job is left out, also from the note
    assert "1/3 MRePU members blew up" in out.why and "overflowed" not in out.why
    assert out.measured.startswith("MRePU init.C_W=auto chose p: C_W_first 0.0123, C_W 0.456, C_b 0")
    # the blown-up member is a status, not a number: it is out of the mean (n=2/3)
    assert "(n=2/3)" in out.measured


def test_failure_note_reads_the_claims_own_metric():
    """A Burgers ranking is on rel_l2, which has no train_mse beside it: overflows still show."""
    check = ranking_check("rel_l2", ("mrepu", "relu"), key="task.name")
    out = note_mrepu_failures(check, "rel_l2", "paper's C_W")([
        job("mrepu", "rel_l2", [None, None], task={"name": "burgers"}),
        job("relu", "rel_l2", [0.6, 0.6], task={"name": "burgers"})], ALPHA)
    assert out.verdict == "inconclusive" and "2/2 MRePU members overflowed" in out.why


def test_per_member_rule_share_above_a_majority():
    where = lam0("x2", "relu")

    def ext(values):
        return as_job(record({"tail_line_residual": values}, config={}),
                      {"task": "x2", "activation": "relu", "regularizer.coef": "0"})

    rule = per_member_rule([where], "tail_line_residual", lambda v: v < 0.01, lambda w: "x2 relu")
    assert rule([ext([0.001] * 5)], ALPHA).verdict == "reproduced"            # 5/5: bound 0.05^(1/5) = 0.55
    assert rule([ext([0.001] * 4 + [0.5])], ALPHA).verdict == "inconclusive"  # 4/5: bound 0.34
    assert rule([ext([0.5] * 5)], ALPHA).verdict == "contradicted"            # 0/5: upper bound 0.45
    # members that failed to train are not counted: 5 trained ones meet it
    assert rule([ext([0.001] * 5 + [None] * 3)], ALPHA).verdict == "reproduced"
    assert rule([ext([None, None])], ALPHA).verdict == "inconclusive"


def test_spectral_norm_rule_pairs_each_lambda_with_zero():
    def run(act, coef, mse):
        return as_job(record({"extrap_mse": mse}, converged=[True] * 8, config={}),
                      {"task": "x2", "activation": act, "regularizer.coef": str(coef)})

    base = [10.0 + k for k in range(8)]
    better = [run(a, c, [v * f for v in base]) for a in ("relu", "tanh") for c, f in ((0, 1.0), (1e-3, 1.2), (1e-2, 0.9))]
    out = spectral_norm_check(better, ALPHA)
    assert out.verdict == "reproduced"  # λ = 1e-2 wins 8/8: p = 1/256, x2 (Bonferroni over two λ) < 0.05
    assert "best of 2: λ=0.01: n=8 (8 wins, 0 losses)" in out.measured
    worse = better[:3] + [run("tanh", 0, base), run("tanh", 1e-2, [v * 2 for v in base])]
    out = spectral_norm_check(worse, ALPHA)
    assert out.verdict == "contradicted" and "x2 tanh" in out.why


def test_repu_kernel_rule_counts_every_fate():
    metrics = {f"cw{c}_n8/{k}": [v] for c, (o, e, col) in {"0.5": (0, 1, 7), "2": (0, 0, 0)}.items()
               for k, v in zip(("overflowed", "exploded", "collapsed"), (o, e, col))}
    kernel = as_job(record(metrics, config={"ensemble": {"size": 8}}))
    out = repu_kernel_check([kernel], ALPHA)
    assert "cw0.5_n8: 8/8 = 100%" in out.measured and "cw2_n8: 0/8 = 0%" in out.measured
    assert out.verdict == "contradicted" and "cw2_n8" in out.why


@pytest.mark.parametrize("values,text", [
    ([1.0, 3.0, None], "2 ± 1, median 2 (n=2/3)"),
    ([None], "no finite value (n=0/1)"),
])
def test_stats_text(values, text):
    assert stats(np.array([np.nan if v is None else v for v in values])) == text


def test_phase_diagram_check_needs_agreement_and_a_stable_mrepu_window():
    def pd(act, agreement, stable, **marks):
        metrics = {"agreement": [agreement], "clear_cells": [500.0], "measured_share_stable": [stable],
                   **{f"mark/{k}/log_ratio": [v] for k, v in marks.items()}}
        return as_job(record(metrics, config={"activation": {"name": act}}), path=f"/fake/pd-{act}")

    out = phase_diagram_check([pd("mrepu", 0.99, 0.06, Burgers=77.0, Table3=0.2), pd("tanh", 0.95, 0.5)], ALPHA)
    assert out.verdict == "reproduced"  # 495/500 and 475/500 cells, each well above 90%
    assert "Burgers 77 (explodes)" in out.measured and "Table3 0.2 (stable)" in out.measured
    assert phase_diagram_check([pd("mrepu", 0.99, 0.0)], ALPHA).verdict == "contradicted"   # no window
    out = phase_diagram_check([pd("gelu", 0.85, 0.5)], ALPHA)                               # theory off
    assert out.verdict == "contradicted" and "gelu agreement" in out.why
    assert phase_diagram_check([], ALPHA).verdict == "inconclusive"


def test_an_activation_is_known_by_its_name_not_its_option():
    """`activation=formula activation.name=swish`: the option typed is `formula`, the run's
    activation is swish, and the claims, tables and screens select it by that name."""
    swish = as_job(record(activation="swish", config={"activation": {"name": "swish"}}),
                   {"activation": "formula", "activation.formula": "z*sigmoid(z)"}, "/fake/swish")
    assert swish.value("activation") == "swish" and swish.value("activation.formula") == "z*sigmoid(z)"


def test_mrepu_trains_is_judged_against_the_start_and_only_with_it(tmp_path):
    """B7: each member's final test MSE against a tenth of the ensemble's at epoch 0, wherever that
    record sits in the file; a run without its epoch-0 record (a resume that lost it) is not judged
    against a later record, whose bar would be far stricter."""
    import json
    from runner.papers.kimkang import mrepu_trains_check

    def b7(records):
        (tmp_path / "kernel_records.json").write_text(json.dumps({"records": records}))
        rec = record({"test_mse": [0.01] * 10}, config={"activation": {"name": "mrepu"}})
        return mrepu_trains_check([as_job(rec, {}, str(tmp_path))], ALPHA)

    later = [{"epoch": 250, "test_mse": 0.05}, {"epoch": 1000, "test_mse": 0.01}]
    start = b7([*later, {"epoch": 0, "test_mse": 1.0}])
    assert start.verdict == "reproduced" and start.measured.startswith("test MSE 1 (epoch 0, ensemble)")
    lost = b7(later)
    assert lost.verdict == "inconclusive" and lost.why == "no kernel record at epoch 0 (records at epochs 250, 1000)"
