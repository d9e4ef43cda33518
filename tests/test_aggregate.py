"""runner.aggregate --by on a synthetic sweep: grouping, pooled statistics, every kind of problem job."""

import csv
import json

import pytest

from runner.aggregate import main as aggregate_main


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
    assert (sweep / "plots" / "curves.png").stat().st_size > 0


def test_group_by_a_config_key_falls_back_to_the_config(tmp_path):
    sweep = tmp_path / "sweep"
    make_job(sweep, 0, ["activation=relu"], "completed", [2.0])
    assert aggregate_main([str(sweep), "--by", "task,activation", "--metric", "test_mse", "--no-plots"]) == 0
    (row,) = csv.DictReader((sweep / "table.csv").open())
    assert (row["task"], row["activation"]) == ("x2", "relu")
