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




def test_a_sweeps_wall_counts_its_process_starts_and_job_checks():
    from runner import sweeps

    # the sweep's own process, each job checked before any starts, the workers' own start, then the jobs
    assert sweeps.sweep_wall([10, 10, 10, 10], workers=2, startup=5, check=0.5) == 5 + 4 * 0.5 + 5 + 20
    assert sweeps.sweep_wall([10, 10], workers=1, startup=5, check=0.5) == 5 + 2 * 0.5 + 20  # jobs in the process
    assert sweeps.job_seconds(epochs=1000, setup=2.0, step=0.01, extra=1.5) == 2.0 + 10.0 + 1.5
    assert sweeps.launcher_workers(["hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "threads=1"]) == 2
    assert sweeps.launcher_workers(["hydra/launcher=basic"]) == 1


def test_the_probe_projects_each_job_from_its_step_time_and_members(monkeypatch):
    """Each job: its setup, its epochs at the probe's step, scaled by members only above PROBE_MEMBERS
    (eager steps: what compiling would save depends on this machine's record, runner.training.compiled)."""
    from runner import sweeps

    # the end-to-end probe's time is measured for real around a free run (its config is composed
    # inside it), and only what exceeds the training's counts as extra: a fake setup of 60 s keeps
    # a slow compose on a loaded machine from showing up as extra
    setup, step = 60.0, 0.002
    probed = []

    def fake_training(*overrides, epochs, config_dir=None):
        probed.append([o for o in overrides if o.startswith("ensemble.size=")][-1])  # the last one wins
        return sweeps.TrainingTime(setup + epochs * step, step, epochs)

    monkeypatch.setattr(sweeps, "time_training", fake_training)
    monkeypatch.setattr(sweeps, "run", lambda cfg, run_dir: None)  # end to end costs nothing besides training
    members = 2 * sweeps.PROBE_MEMBERS
    probe = sweeps.probe_sweep({"experiment": "tsvetkova_sn", "overrides": [
        f"ensemble.size={members}", "trainer.max_epochs=700", "regularizer.coef=0", "task=x2", "compile=false"]}, [])
    assert len(probe.times) == 4 and probe.check > 0  # relu, leaky_relu, tanh, sin on x2
    assert set(probed) == {f"ensemble.size={sweeps.PROBE_MEMBERS}"}
    assert probe.times == pytest.approx([setup + 700 * step * members / sweeps.PROBE_MEMBERS] * 4, rel=1e-9)
    # an ensemble no larger than PROBE_MEMBERS is probed at its own size: no scaling
    probed.clear()
    small = sweeps.probe_sweep({"experiment": "tsvetkova_sn", "overrides": [
        "ensemble.size=8", "trainer.max_epochs=700", "regularizer.coef=0", "task=x2", "compile=false"]}, [])
    assert set(probed) == {"ensemble.size=8"}
    assert small.times == pytest.approx([setup + 700 * step] * 4, rel=1e-9)


def test_a_plans_workers_come_from_any_launcher_as_hydra_composes_it():
    """joblib's n_jobs (its default -1 is every CPU, -2 all but one), a SLURM array's
    array_parallelism (conf/hydra/launcher/slurm.yaml's, or the command line's), the basic launcher
    one; a queue of `--queues` sets whichever the launcher has to 1."""
    import os

    from runner import sweeps
    from runner.config import CONF_DIR

    cpus = os.cpu_count()
    slurm = yaml.safe_load(open(f"{CONF_DIR}/hydra/launcher/slurm.yaml"))["array_parallelism"]
    assert sweeps.launcher_workers(["hydra/launcher=slurm"]) == slurm
    assert sweeps.launcher_workers(["hydra/launcher=slurm", "hydra.launcher.array_parallelism=8"]) == 8
    assert sweeps.launcher_workers(["hydra/launcher=joblib"]) == cpus
    assert sweeps.launcher_workers(["hydra/launcher=joblib", "hydra.launcher.n_jobs=-2"]) == max(1, cpus - 1)
    assert sweeps.one_worker(["hydra/launcher=slurm", "hydra.launcher.array_parallelism=8"]) == [
        "hydra/launcher=slurm", "hydra.launcher.array_parallelism=1"]
    assert sweeps.one_worker(["hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "threads=1"]) == [
        "hydra/launcher=joblib", "threads=1", "hydra.launcher.n_jobs=1"]
    assert sweeps.one_worker(["hydra/launcher=basic"]) == ["hydra/launcher=basic"]


def test_the_estimate_before_a_run_is_the_probes_where_one_ran(tmp_path):
    from runner import sweeps

    plan = sweeps.load_plan("smoke")
    lines = sweeps.estimate(plan, ["fig4"], tmp_path / "no_timings.json",
                            probed={"sweeps": {"fig4": 600.0}, "probed": "2026-01-01 00:00 UTC"})
    assert "~10 min (probed here)" in lines[0]
    assert "1 probed here 2026-01-01 00:00 UTC" in lines[-2]
    lines = sweeps.estimate(plan, ["fig4"], tmp_path / "no_timings.json")
    assert "no probe here and no smoke timing" in lines[0]
