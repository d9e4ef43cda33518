"""The entrypoint end to end: the run-directory contract, the help, and bad input."""

import json

import numpy as np
import pytest

from conftest import run_cli

SMALL = ["trainer=cpu", "trainer.max_epochs=30", "log_every=10", "ensemble.size=2", "task.n_eval=101"]


def test_run_writes_the_contract(tmp_path):
    run_dir = tmp_path / "run"
    res = run_cli("activation=tanh", "task=x3", "regularizer=spectral_norm", "regularizer.coef=1e-3",
                  "seed=3", *SMALL, f"hydra.run.dir={run_dir}", cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-2000:]
    for name in (".hydra/config.yaml", ".hydra/overrides.yaml", "metrics.csv", "summary.json",
                 "predictions.npz", "plots/extrapolation.png", "checkpoints/last.ckpt"):
        assert (run_dir / name).exists(), name
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "completed"
    assert summary["task"] == "x3" and summary["activation"] == "tanh" and summary["seed"] == 3
    assert summary["ensemble_size"] == 2 and summary["duration_s"] > 0
    assert "regularizer.coef=1e-3" in summary["overrides"]
    stats = summary["metrics"]["extrap_mse"]
    assert set(stats) >= {"mean", "std", "min", "max", "members"} and len(stats["members"]) == 2
    assert "spectral_norm/layer1" in summary["metrics"]
    pred = np.load(run_dir / "predictions.npz")
    assert pred["x"].shape == (101, 1) and pred["y_true"].shape == (101, 1)
    assert pred["y_pred"].shape == (2, 101, 1)
    header = (run_dir / "metrics.csv").read_text().splitlines()[0]
    assert "train/loss/mean" in header and "train/penalty/mean" in header
    assert "test_mse" in res.stderr + res.stdout  # headline numbers printed


def test_multirun_dirs_never_collide(tmp_path):
    res = run_cli("-m", "activation=relu,tanh", *SMALL, cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-2000:]
    res2 = run_cli("-m", "activation=relu,tanh", *SMALL, cwd=tmp_path)
    assert res2.returncode == 0
    summaries = sorted((tmp_path / "outputs" / "multirun").glob("*/*/summary.json"))
    assert len(summaries) == 4 and len({s.parent for s in summaries}) == 4


def test_help_lists_groups(tmp_path):
    res = run_cli("--help", cwd=tmp_path)
    assert res.returncode == 0
    for line in ("activation: elu, formula, gelu, leaky_relu, mrepu, python, relu, repu",
                 "regularizer: dropout, none, spectral_norm", "task:", "init: critical, pytorch, xavier",
                 "logger: csv, none, tensorboard, wandb", "progress: bar, log", "task/sampler: lhs, uniform"):
        assert line in res.stdout


@pytest.mark.parametrize("override,needle", [
    ("model.width=0", "model.width=0 is invalid: must be an integer >= 1"),
    ("model.width=abc", "model.width='abc' is invalid"),
    ("model.depth=0", "model.depth=0 is invalid: must be an integer >= 1"),
    ("optimizer.lr=0", "optimizer.lr=0 is invalid: must be a number > 0"),
    ("optimizer.lr=-1e-3", "optimizer.lr=-0.001 is invalid"),
    ("activation=repu activation.p=0", "activation.p=0"),
    ("activation=mrepu activation.p=1.5", "activation.p=1.5"),
    ("+model.foo=1", "model.foo is not a known key"),
    ("+bogus=1", "bogus is not a known key"),
    ("task.train_range=[20,-20]", "task.train_range=[20, -20] is invalid: must be [low, high] with low < high"),
    ("ensemble.size=0", "ensemble.size=0 is invalid: must be an integer >= 1"),
    ("convergence_tail=1", "convergence_tail=1 is invalid: must be a number in (0, 1)"),
    ("convergence_tol=0", "convergence_tol=0 is invalid: must be a number > 0"),
])
def test_bad_input_is_one_clear_line(tmp_path, override, needle):
    res = run_cli(*SMALL, *override.split(), cwd=tmp_path)
    assert res.returncode == 2
    assert needle in res.stderr
    assert "Traceback" not in res.stderr and len(res.stderr.strip().splitlines()) == 1
    assert not list(tmp_path.glob("outputs/*/*/checkpoints"))  # no training happened


def test_unknown_option_lists_valid_ones(tmp_path):
    res = run_cli("activation=swish", cwd=tmp_path)
    assert res.returncode != 0
    assert "Could not find 'activation/swish'" in res.stderr and "mrepu" in res.stderr
    assert "Traceback" not in res.stderr


def test_wandb_offline_run(tmp_path):
    run_dir = tmp_path / "run"
    res = run_cli("logger=wandb", "logger.wandb.mode=offline", *SMALL, f"hydra.run.dir={run_dir}", cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-2000:]
    runs = list((run_dir / "wandb").glob("offline-run-*"))
    assert len(runs) == 1 and list(runs[0].glob("*.wandb"))
    assert (run_dir / "metrics.csv").exists()
