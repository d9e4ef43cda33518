"""runner.aggregate on synthetic sweeps: grouping, pooled statistics, every kind of problem job, and
one rule of which members count, shared with the per-activation plot."""

import csv
import json

import pytest

from conftest import colored_fraction
from runner.aggregate import aggregate
from runner.results.jobs import collect
from runner.aggregate import main as aggregate_main
from runner.results.summary import member_stats
from runner.results.plots import compare_sweep


def make_job(sweep, num, overrides, status=None, members=None, curve=None):
    job = sweep / str(num)
    (job / ".hydra").mkdir(parents=True)
    (job / ".hydra" / "overrides.yaml").write_text("".join(f"- {o}\n" for o in overrides))
    if status:  # no status: a job still running (or killed) has no summary.json yet
        metrics = {"test_mse": {"members": members}} if members is not None else {}
        (job / "summary.json").write_text(json.dumps({
            "status": status, "metrics": metrics, "error": "RuntimeError: boom",
            "config": {"activation": {"name": overrides[0].split("=")[1]}, "task": {"name": "x2"}}}))
    if curve:
        with (job / "metrics.csv").open("w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["step", "train/loss/mean", "train/loss/min", "train/loss/max"])
            w.writerows([s, v, v / 2, v * 2] for s, v in enumerate(curve))


def test_groups_pool_members_and_list_problem_jobs(tmp_path, capsys):
    sweep = tmp_path / "sweep"
    make_job(sweep, 0, ["activation=relu", "seed=0"], "completed", [1.0, 3.0], curve=[4, 2, 1])
    make_job(sweep, 1, ["activation=relu", "seed=1"], "completed", [5.0, None], curve=[4, 3])
    make_job(sweep, 2, ["activation=tanh", "seed=0"], "failed")
    make_job(sweep, 3, ["activation=tanh", "seed=1"])
    make_job(sweep, 4, ["activation=sin", "seed=0"], "diverged", [None, None])
    assert aggregate_main([str(sweep), "--by", "activation", "--metric", "test_mse"]) == 0

    rows = {r["activation"]: r for r in csv.DictReader((sweep / "table.csv").open())}
    assert list(rows) == ["relu", "tanh", "sin"]
    relu = rows["relu"]
    # pooled finite members of both relu jobs: 1, 3, 5 -> mean 3, population std sqrt(8/3)
    assert float(relu["test_mse mean"]) == pytest.approx(3.0)
    assert float(relu["test_mse std"]) == pytest.approx((8 / 3) ** 0.5)
    assert (relu["test_mse n_finite"], relu["test_mse n"]) == ("3", "4")
    assert (rows["tanh"]["completed"], rows["tanh"]["jobs"]) == ("0", "2")

    report = (sweep / "table.md").read_text()
    assert "1/2 members left out of the mean (non-finite)" in report                   # partly diverged job 1
    assert "failed: RuntimeError: boom" in report                 # job 2
    assert "no summary.json (still running, or killed)" in report  # job 3
    assert "diverged: every member non-finite" in report          # job 4
    assert colored_fraction(sweep / "plots" / "curves.png") > 0.002  # relu's curve and band (its only group with one)


def test_group_by_a_config_key_falls_back_to_the_config(tmp_path):
    sweep = tmp_path / "sweep"
    make_job(sweep, 0, ["activation=relu"], "completed", [2.0])
    assert aggregate_main([str(sweep), "--by", "task,activation", "--metric", "test_mse", "--no-plots"]) == 0
    (row,) = csv.DictReader((sweep / "table.csv").open())
    assert (row["task"], row["activation"]) == ("x2", "relu")


def test_the_per_activation_plot_and_the_table_count_the_same_members(tmp_path):
    """A sweep with a blown-up member (finite rel_l2, fate blown_up): the per-activation plot's
    numbers (its JSON) and runner.aggregate's table both leave it out, and agree on the rest."""
    sweep = tmp_path / "sweep"
    runs = [("tanh", [0.10, 0.20], ["ok", "ok"], "completed"),
            ("tanh", [0.30, 5.0], ["ok", "blown_up"], "partly_diverged"),
            ("relu", [0.40, None], ["ok", "diverged"], "partly_diverged"),
            ("relu", [0.50, 0.60], ["ok", "no_better_than_zero"], "partly_diverged")]
    for num, (act, values, fates, status) in enumerate(runs):
        job = sweep / str(num)
        (job / ".hydra").mkdir(parents=True)
        (job / ".hydra" / "overrides.yaml").write_text(f"- activation={act}\n")
        (job / "summary.json").write_text(json.dumps({
            "status": status, "activation": act, "member_status": fates, "metrics": {"rel_l2": {"members": values}},
            "config": {"activation": {"name": act}, "task": {"name": "burgers"}}}))
    plotted = compare_sweep(sweep, "rel_l2")
    assert json.loads((sweep / "rel_l2_by_activation.json").read_text()) == plotted
    assert plotted == {"tanh": [0.10, 0.20, 0.30], "relu": [0.40, 0.50]}  # ok members only
    assert colored_fraction(sweep / "plots" / "rel_l2_by_activation.png") > 0.001
    aggregate([sweep], metric="rel_l2", by=["activation"], plots=False)
    rows = {r["activation"]: r for r in csv.DictReader((sweep / "table.csv").open())}
    for act, values in plotted.items():
        stats = member_stats(values)
        assert float(rows[act]["rel_l2 mean"]) == pytest.approx(stats["mean"], rel=1e-6)
        assert float(rows[act]["rel_l2 std"]) == pytest.approx(stats["std"], rel=1e-6)
        assert (int(rows[act]["rel_l2 n_finite"]), int(rows[act]["rel_l2 n"])) == (len(values), 4)
    assert [v for job in collect([sweep]) for v in job.members("rel_l2") if v is not None] == [
        0.10, 0.20, 0.30, 0.40, 0.50]
