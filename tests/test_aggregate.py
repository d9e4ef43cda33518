"""runner.aggregate on synthetic sweeps: grouping, pooled statistics, every kind of problem job, and
one rule of which members count, shared with the per-activation plot."""

import csv
import json
import re

import pytest

from conftest import colored_fraction
from factories import record, write_run
from runner.aggregate import aggregate
from runner.results.jobs import collect
from runner.aggregate import main as aggregate_main
from runner.results.summary import member_stats
from runner.results.plots import compare_sweep


def make_job(sweep, num, overrides, status=None, members=None, curve=None):
    config = {"activation": {"name": overrides[0].split("=")[1]}, "task": {"name": "x2"}}
    metrics = {"test_mse": members} if members is not None else None
    # no status: a job still running (or killed) has no summary.json yet
    rec = record(metrics, status=status, config=config, error="RuntimeError: boom") if status else None
    job = write_run(sweep / str(num), rec, overrides)
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
    assert colored_fraction(sweep / "plots" / "loss_curves.png") > 0.002  # relu's curve and band (its only group with one)


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
        write_run(sweep / str(num), record({"rel_l2": values}, status=status, fates=fates, activation=act,
                                           config={"activation": {"name": act}, "task": {"name": "burgers"}}),
                  [f"activation={act}"])
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


def finished_sweep(tmp_path):
    """Two activations, two seeds each, with test_mse and extrap_mse; members paired by seed."""
    sweep = tmp_path / "sweep"
    for num, (act, seed) in enumerate([("relu", 0), ("relu", 1), ("tanh", 0), ("tanh", 1)]):
        scale = 1.0 if act == "relu" else 2.0
        metrics = {"test_mse": [scale * (1 + seed), scale * 2, scale * 3],
                   "extrap_mse": [scale * 10, scale * 20, scale * 30 + seed]}
        write_run(sweep / str(num), record(metrics, fates=["ok"] * 3, converged=[True] * 3, activation=act, seed=seed,
                                           config={"activation": {"name": act}, "task": {"name": "x3"}}),
                  [f"activation={act}", f"seed={seed}"])
    return sweep


def test_every_metric_given_is_used(tmp_path, capsys):
    sweep = finished_sweep(tmp_path)
    assert aggregate_main([str(sweep), "--metric", "test_mse,extrap_mse", "--vs", "relu", "--no-plots"]) == 0
    table = (sweep / "table.md").read_text()
    assert table.startswith("# test_mse") and "## extrap_mse" in table
    vs = (sweep / "vs_relu.md").read_text()
    assert "# test_mse: every activation against relu" in vs and "# extrap_mse: every activation against relu" in vs
    assert vs.count("| x3: tanh < relu |") == 2  # one test per metric
    # each metric's verdict with its fragility (runner.results.fragility), as the claims report gives it
    assert len(re.findall(r"^\*\*(reproduced|contradicted|inconclusive)\*\* \(fragility (\d+|–): ", vs, re.M)) == 2


@pytest.mark.parametrize("args,needle", [
    (["--metric", "rel_l2"], "--metric rel_l2: no finished run here has it; their metrics: extrap_mse, test_mse"),
    (["--metric", "test_mse,extrap_mes"], "--metric extrap_mes: no finished run here has it; did you mean extrap_mse?"),
    (["--metric", "extrap_mse", "--extra", "tset_mse"], "did you mean test_mse"),
    (["--by", "activation", "--metric", "test_mse,l2"], "--metric l2: no finished run here has it"),
    (["--metric", "test_mse", "--vs", "gelu"], "--vs gelu: no finished run of activation gelu here"),
    (["--metric", "test_mse", "--vs", "rleu"], "did you mean relu?"),
])
def test_nonsense_stops_in_one_line_before_anything_is_written(tmp_path, capsys, args, needle):
    sweep = finished_sweep(tmp_path)
    (sweep / "table.md").write_text("an earlier table\n")
    assert aggregate_main([str(sweep), *args, "--no-plots"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("runner.aggregate: error: ") and needle in err[0], err
    assert (sweep / "table.md").read_text() == "an earlier table\n" and not (sweep / "table.csv").exists()


def test_a_finished_run_without_the_metric_is_listed_as_such(tmp_path):
    sweep = finished_sweep(tmp_path)
    write_run(sweep / "4", record({"final_train_loss": [0.1]}, fates=["ok"], activation="relu",
                                  config={"activation": {"name": "relu"}, "task": {"name": "x2"}}),
              ["activation=relu", "task=x2"])
    assert aggregate_main([str(sweep), "--metric", "test_mse", "--no-plots"]) == 0
    problems = (sweep / "table.md").read_text().split("## Failed")[1]
    assert "4 (relu, x2): no metric 'test_mse'" in problems and "failed" not in problems.split("\n", 1)[1]
