"""The claims report's first screen and its figures of the statistics, on hand-made sweeps whose
tests are known: one row per claim a reader can scan, each claim's tests in a table of their own,
and a forest plot and a probability-of-improvement panel drawn from the very same numbers."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import pytest

from conftest import colored_fraction
from factories import record, write_run
from runner.papers import PAPERS
from runner.papers.report import write_report

ALL_CLAIMS = [c for paper in PAPERS for c in paper.claims]
# train and derivative MSE per member (5 seeds) of Table 4's activations on two targets
VALUES = {"mrepu": [1.0, 1.1, 0.9, 1.2, 0.8], "relu": [2.0, 2.5, 1.5, 3.0, 1.9], "gelu": [3.0, 3.0, 4.0, 3.5, 2.8]}


def fake_sweep(sweep: Path, targets: tuple[str, str]) -> None:
    """A Table 4/5 sweep as runner summaries: 2 targets x 3 activations, 5 converged members each."""
    for num, (target, act) in enumerate((t, a) for t in targets for a in VALUES):
        values = [v * (2 if target == targets[1] else 1) for v in VALUES[act]]
        config = {"activation": {"name": act}, "task": {"name": "polynomial", "target": target}, "seed": 0,
                  "ensemble": {"size": 5, "member_offset": 0}, "init": {"C_W": 1.0}}
        rec = record({m: values for m in ("train_mse", "deriv_mse")}, fates=["ok"] * 5, converged=[True] * 5,
                     improvement=[0.0] * 5, activation=act, task="polynomial", seed=0, config=config)
        write_run(sweep / str(num), rec, [f"kimkang={target}", f"activation={act}"])


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> tuple[Path, str]:
    out = tmp_path_factory.mktemp("report")
    fake_sweep(out / "runs" / "table4", ("poly_low", "poly_high"))
    fake_sweep(out / "runs" / "table5", ("x_abs_x", "abs_x3"))
    plan = {"verdicts": {"alpha": 0.05}, "sweeps": {"table4": {"experiment": "kimkang_table4", "overrides": []},
                                                    "table5": {"experiment": "kimkang_table5", "overrides": []}}}
    return out, write_report(out, "smoke", plan, {}, 0.0).path.read_text()


def first_screen(text: str) -> list[tuple[str, str, str]]:
    """(claim, verdict, evidence) of every row of the first table."""
    rows = re.findall(r"^\| \[(\S+)\]\(#\S+\) \| .*? \| \*\*([a-z ]+)\*\* \| (\S*) \| (.*) \|$", text, re.M)
    return [(c, v, e) for c, v, _, e in rows]


def fragilities(text: str) -> dict[str, str]:
    """claim -> the fragility cell of the first table."""
    return dict(re.findall(r"^\| \[(\S+)\]\(#\S+\) \| .*? \| \*\*[a-z ]+\*\* \| (\S*) \| .* \|$", text, re.M))


def test_the_first_screen_is_one_short_row_per_claim(report):
    _, text = report
    head = text.split("\n## ")[0]
    assert "| claim | the paper says | verdict | fragility | deciding evidence |" in head
    rows = first_screen(head)
    assert [c for c, _, _ in rows] == [c.id for c in ALL_CLAIMS]
    lines = [line for line in head.splitlines() if line.startswith("| [")]
    assert max(len(line) for line in lines) <= 400
    verdicts = dict((c, v) for c, v, _ in rows)
    # mrepu < relu < gelu on every seed of both targets: 5/5 wins, p = 1/32 = 0.031 per test
    assert verdicts["B8"] == verdicts["B9"] == verdicts["B10"] == verdicts["B12"] == "reproduced"
    evidence = dict((c, e) for c, _, e in rows)
    assert evidence["B9"].startswith("weakest of 2 tests: poly_low: mrepu < relu: 5/5 pairs, "
                                     "p = 0.031, ln ratio -0.82 [")
    # relu is not lowest: 5/5 the other way against mrepu, p = 0.031 twice, but not after Holm across 4 tests
    assert verdicts["B11"] == "inconclusive"
    assert evidence["B11"] == ("x_abs_x: relu < mrepu: leans the other way (p = 0.031), not after Holm "
                               "(2 of 4 tests undecided)")
    assert verdicts["A1"] == "not run" and evidence["A1"].startswith("sweep tsvetkova did not run: no estimate here")
    # 5 of 5 pairs: p = 1/32; one pair the other way gives 4 of 5, p = 6/32: fragility 1
    fragility = fragilities(head)
    assert fragility["B8"] == fragility["B9"] == "1" and fragility["A1"] == ""
    # B11 is decided only by turning all 5 + 5 losses of relu < mrepu into wins: with 5 pairs no
    # opposite p can pass Holm's first step (1/32 > 0.05/4)
    assert fragility["B11"] == "10"
    assert re.search(r"\*\*4 reproduced \(4 fragile\), 0 contradicted, 1 inconclusive, 19 not run\*\* of the "
                     r"papers' 24 claims at α = 0.05; beyond the papers: S1 not run", head)


def sections(text: str) -> dict[str, list[list[str]]]:
    """Per claim, the cells of each row of its test table."""
    out = {}
    for claim in ALL_CLAIMS:
        body = text.split(f'<a id="{claim.id.lower()}"></a>')[1].split("<a id=")[0]
        out[claim.id] = [[c.strip() for c in line.strip("|").split(" | ")] for line in body.splitlines()
                         if line.startswith("| ") and not line.startswith(("| test |", "|---"))]
    return out


def test_each_claim_has_its_tests_in_a_table(report):
    _, text = report
    tables = sections(text)
    b8 = tables["B8"]
    assert [row[0] for row in b8] == ["poly_low: mrepu < relu", "poly_low: relu < gelu", "poly_high: mrepu < relu",
                                      "poly_high: relu < gelu"]
    assert all(row[1] == "5 pairs" and row[3] == "0.031" and row[7] == "supports" and row[8] == "1" for row in b8)
    assert all(row[6] == "10/10 members" for row in b8)
    assert tables["A1"] == []  # no test: the sweep did not run


def test_the_forest_plot_holds_every_paired_test_with_the_reports_numbers(report):
    out, text = report
    drawn = list(csv.DictReader((out / "figures" / "forest.csv").open()))
    tables = sections(text)
    paired = [(claim, row) for claim, rows in tables.items() for row in rows if re.fullmatch(r"\d+ pairs?", row[1])]
    assert len(drawn) == len(paired) == 4 + 2 + 2 + 4 + 4  # B8, B9, B10, B11, B12 on two targets each
    for row, (claim, cells) in zip(drawn, paired):
        assert (row["group"], row["test"]) == (claim, cells[0])
        effect = f"{float(row['effect']):.2g} [{float(row['low']):.2g}, {float(row['high']):.2g}]"
        assert cells[5] == f"{row['effect_name']} {effect}" and row["decision"] == cells[7]
    assert colored_fraction(out / "figures" / "forest.png") > 0.005
    assert "![every paired test" in text.split("\n## ")[0]  # at the top of the report


def test_the_probability_of_improvement_is_wins_over_decided_pairs(report):
    out, text = report
    rows = list(csv.DictReader((out / "figures" / "improvement.csv").open()))
    b8 = [r for r in rows if r["group"] == "B8"]
    assert len(b8) == 4 and all(r["wins"] == "5" and r["losses"] == "0" and float(r["probability"]) == 1.0
                                for r in b8)
    # two-sided 95% Clopper-Pearson interval of 5/5: [0.025^(1/5), 1] = [0.478, 1]
    assert all(float(r["low"]) == pytest.approx(0.025 ** 0.2, abs=1e-9) and float(r["high"]) == 1.0 for r in b8)
    assert colored_fraction(out / "figures" / "improvement.png") > 0.005
    assert "![P(the paper's side beats its paired member)" in text.split("\n## ")[0]


def test_a_sweep_stopped_part_way_reads_not_run_until_it_is_whole(tmp_path):
    """A sweep records its command at its start (multirun.yaml); with fewer ended jobs than that
    command has, its claims read `not run`, saying how far it got, instead of a verdict from a
    subset of the pairs; the same runs with every job ended are judged."""
    out = tmp_path / "report"
    fake_sweep(out / "runs" / "table4", ("poly_low", "poly_high"))
    command = {"hydra": {"overrides": {"task": ["experiment=kimkang_table4", "kimkang=poly_low,poly_high",
                                                 "activation=mrepu,relu,gelu,tanh"]}}}
    (out / "runs" / "table4" / "multirun.yaml").write_text(json.dumps(command))  # JSON is YAML
    plan = {"verdicts": {"alpha": 0.05}, "sweeps": {"table4": {"experiment": "kimkang_table4", "overrides": []}}}
    text = write_report(out, "smoke", plan, {}, 0.0).path.read_text()
    rows = {c: (v, e) for c, v, e in first_screen(text)}
    assert rows["B8"][0] == "not run"
    assert rows["B8"][1].startswith("sweep table4 is unfinished (6 of 8 jobs finished)")
    assert "skip_completed keeps the finished jobs" in rows["B8"][1]
    assert "| table4 | - | unfinished: 6 of 8 jobs finished | - |" not in text  # no estimates or walls: no timing table
    assert re.search(r"^\| table4 \| .* \| 6 \| 6 \| 0 \| 0 \| .*, unfinished: 6 of 8 jobs finished \|$", text, re.M)

    command["hydra"]["overrides"]["task"][2] = "activation=mrepu,relu,gelu"
    (out / "runs" / "table4" / "multirun.yaml").write_text(json.dumps(command))
    rows = {c: v for c, v, _ in first_screen(write_report(out, "smoke", plan, {}, 0.0).path.read_text())}
    assert rows["B8"] == "reproduced"
