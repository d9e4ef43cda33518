"""The entrypoint end to end: the run-directory contract, the help, and bad input."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from conftest import run_cli
from runner.results.summary import FINISHED

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


def one_line_error(res) -> str:
    """The one line a command-line mistake prints (asserting exit code 2 and nothing else on stderr)."""
    assert res.returncode == 2, res.stderr[-2000:]
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("runner: error: "), res.stderr[-2000:]
    return lines[0]


@pytest.mark.parametrize("overrides,needle", [
    # an option of a group that does not exist: the nearest options
    (["task=hete"], "task=hete is not an option of task; did you mean heat"),
    (["optimizer=adamm"], "optimizer=adamm is not an option of optimizer; did you mean adam"),
    (["model=mlp_5x23"], "did you mean mlp_5x32"),
    (["task=burgers", "task/sampler=lsh"], "task/sampler=lsh is not an option of task/sampler; did you mean lhs"),
    (["activation=swish"], "activation=swish is not an option of activation; options: elu, formula, gelu"),
    # a key that does not exist: the nearest keys, never +key
    (["model.widht=8"], "model.widht is not a key of model=mlp_3x64; did you mean model.width?"),
    (["optimizer.lrr=0.1"], "did you mean optimizer.lr?"),
    (["ensemble.sise=2"], "ensemble.sise is not a key of ensemble; did you mean ensemble.size?"),
    (["sede=1"], "sede is not a key or group of the config; did you mean seed?"),
    (["regularizr=none"], "did you mean regularizer?"),
    # a key the chosen option does not take: the options that take it
    (["activation=tanh", "activation.p=3"], "activation.p is not a key of activation=tanh (its keys: name); "
                                            "activation=mrepu and activation=repu take it"),
    # a malformed override, a sweep without -m, + on a key that exists
    (["model.width=(8"], "'model.width=(8' is not a valid override"),
    (["seed=0,1"], "seed=0,1 gives several values: add -m"),
    (["+model.width=8"], "+model.width: model.width is already in the config; drop the +"),
])
def test_a_command_line_mistake_is_one_line_with_a_suggestion(tmp_path, overrides, needle):
    line = one_line_error(run_cli(*overrides, *SMALL, cwd=tmp_path))
    assert needle in line, line
    assert "+model.widht" not in line and "+ensemble.sise" not in line
    assert not (tmp_path / "outputs").exists()  # nothing ran


def test_a_command_line_mistake_answers_before_torch_loads(tmp_path):
    """The check runs on Hydra alone: torch and Lightning are never imported for it."""
    res = subprocess.run([sys.executable, "-X", "importtime", "-m", "runner", "task=hete"], cwd=tmp_path,
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 2
    imported = {line.split("|")[-1].strip() for line in res.stderr.splitlines() if line.startswith("import time:")}
    assert "hydra" in imported and not imported & {"torch", "lightning"}, sorted(imported & {"torch", "lightning"})


def test_a_key_added_with_plus_is_checked_against_its_target(tmp_path):
    line = one_line_error(run_cli("+trainer.max_epoch=3", *SMALL, cwd=tmp_path))
    assert "trainer.max_epoch is not a known key; did you mean max_epochs" in line
    assert "+trainer" not in line


def test_hydra_full_error_still_gives_the_trace(tmp_path, monkeypatch):
    monkeypatch.setenv("HYDRA_FULL_ERROR", "1")
    res = run_cli("task=hete", cwd=tmp_path)
    assert res.returncode != 0
    assert "Traceback" in res.stderr and "MissingConfigException" in res.stderr


def test_a_users_config_dir_adds_options_to_the_check(tmp_path):
    (tmp_path / "myconf" / "activation").mkdir(parents=True)
    (tmp_path / "myconf" / "activation" / "squareplus.yaml").write_text(
        "_target_: runner.theory.activations.Formula\nformula: (z+sqrt(z*z+4))/2\nname: squareplus\n")
    line = one_line_error(run_cli("--config-dir", "myconf", "activation=squarplus", *SMALL, cwd=tmp_path))
    assert "did you mean squareplus?" in line
    res = run_cli("--config-dir", "myconf", "--cfg", "job", "activation=squareplus", *SMALL, cwd=tmp_path)
    assert res.returncode == 0 and "squareplus" in res.stdout, res.stderr[-2000:]


@pytest.mark.parametrize("launcher", [[], ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"]])
def test_an_invalid_job_of_a_sweep_is_one_line_and_the_others_run(tmp_path, launcher):
    res = run_cli("-m", "model.width=8,-1", *launcher, *SMALL, "hydra.sweep.dir=sweep", cwd=tmp_path)
    assert res.returncode == 2, res.stderr[-2000:]
    errors = [line for line in res.stderr.splitlines() if line.startswith("runner: error:")]
    assert errors[0] == ("runner: error: job 1: model.width=-1 is invalid: must be an integer >= 1; "
                         "the other job runs"), res.stderr[-2000:]
    assert "Traceback" not in res.stderr
    good = json.loads((tmp_path / "sweep" / "0" / "summary.json").read_text())
    assert good["status"] in FINISHED and good["config"]["model"]["width"] == 8 and good["metrics"]
    bad = json.loads((tmp_path / "sweep" / "1" / "summary.json").read_text())
    assert bad["status"] == "failed" and "model.width=-1" in bad["error"]


def test_a_sweep_of_only_invalid_jobs_starts_nothing(tmp_path):
    res = run_cli("-m", "model.width=0,-1", *SMALL, "hydra.sweep.dir=sweep", cwd=tmp_path)
    assert res.returncode == 2
    assert res.stderr.count("runner: error: job ") == 2 and "no job runs" in res.stderr
    assert not (tmp_path / "sweep").exists()


def test_wandb_offline_run(tmp_path, wandb_offline):
    run_dir = tmp_path / "run"
    env = {k: v for k, v in os.environ.items() if k != "WANDB_SILENT"}  # W&B as a user has it
    res = subprocess.run([sys.executable, "-m", "runner", "logger=wandb", "logger.wandb.mode=offline", *SMALL,
                          f"hydra.run.dir={run_dir}"], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    runs = list((run_dir / "wandb").glob("offline-run-*"))
    assert len(runs) == 1 and list(runs[0].glob("*.wandb"))
    out = res.stdout + res.stderr
    said = [line for line in out.splitlines() if line.startswith("wandb") or "W&B" in line]
    assert len(said) == 1 and f"W&B offline run in {runs[0]}" in said[0], said
    assert (run_dir / "metrics.csv").exists()


MINE = """import torch
from runner.tasks.base import RegressionTask


class Line(RegressionTask):
    def __init__(self, name: str, n_train: int):
        self.name = name
        x = torch.linspace(-1, 1, n_train).unsqueeze(1)
        super().__init__(x, 3 * x, normalize=False)

    def evaluate(self, model):
        return {"train_mse": self.mse(self.predict(model, self.x_train), self.y_train)}
"""


def test_a_run_names_only_the_folders_it_made_and_the_units_it_mixes(tmp_path):
    (tmp_path / "mine.py").write_text(MINE)
    (tmp_path / "myconf" / "task").mkdir(parents=True)
    (tmp_path / "myconf" / "task" / "line.yaml").write_text("_target_: mine.Line\nname: line\nn_train: 16\n")
    res = run_cli("--config-dir", "myconf", "task=line", "trainer=cpu", "trainer.max_epochs=10", "ensemble.size=2",
                  "hydra.run.dir=run", cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-2000:]
    out = res.stdout + res.stderr
    assert "summary: " in out and "plots:" not in out and not (tmp_path / "run" / "plots").exists()
    assert "task's own units" not in out  # a task that trains on its own units: nothing to tell apart
    res = run_cli("task=x2", *SMALL, "hydra.run.dir=x2", cwd=tmp_path)
    out = res.stdout + res.stderr
    assert f"plots:   {tmp_path / 'x2' / 'plots'}" in out
    assert ("(*_train_loss and zero_output_loss: on the standardized training data, task.normalize=true; "
            "the other metrics in the task's own units)") in out
