"""Sweeps through Hydra's plugins: joblib in parallel, Optuna with a diverging trial, configs compose."""

import json

import pytest
import yaml

from conftest import run_cli

TINY = ["trainer=cpu", "trainer.max_epochs=30", "ensemble.size=2", "task.n_eval=101"]


def statuses(sweep):
    return {p.parent.name: json.loads(p.read_text())["status"] for p in sweep.glob("*/summary.json")}


@pytest.mark.parametrize("launcher", ["slurm", "local", "joblib"])
def test_launcher_configs_compose(launcher):
    from hydra import compose, initialize_config_dir

    from runner.config import CONF_DIR
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        cfg = compose("config", overrides=[f"hydra/launcher={launcher}"], return_hydra_config=True)
    assert "Launcher" in cfg.hydra.launcher._target_
    if launcher == "slurm":
        assert {"partition", "timeout_min", "gpus_per_node", "cpus_per_task", "mem_gb",
                "array_parallelism", "setup"} <= set(cfg.hydra.launcher)


def test_joblib_runs_three_jobs_in_parallel(tmp_path):
    sweep = tmp_path / "sweep"
    res = run_cli("-m", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "threads=1",
                  "activation=relu,tanh,sin", *TINY, f"hydra.sweep.dir={sweep}", cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-2000:]
    assert statuses(sweep) == {"0": "completed", "1": "completed", "2": "completed"}


def test_optuna_study_survives_a_diverging_trial(tmp_path):
    sweep = tmp_path / "sweep"
    # lr=1e6 makes Adam blow every member up; the study must record it as a bad value and go on
    res = run_cli("-m", "hparams_search=optuna", *TINY, "hydra.sweeper.n_trials=4",
                  "optimizer.lr=choice(1e-3,1e6)", f"hydra.sweep.dir={sweep}", cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-2000:]
    jobs = {p.parent.name: json.loads(p.read_text()) for p in sweep.glob("*/summary.json")}
    assert len(jobs) == 4
    lrs = {j["config"]["optimizer"]["lr"]: j["status"] for j in jobs.values()}
    assert lrs == {1e-3: "completed", 1e6: "diverged"}, lrs
    result = yaml.safe_load((sweep / "optimization_results.yaml").read_text())
    assert result["best_params"]["optimizer.lr"] == 1e-3
    best = min(j["metrics"]["test_mse"]["mean"] for j in jobs.values() if j["status"] == "completed")
    assert result["best_value"] == pytest.approx(best)


