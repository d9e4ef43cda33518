"""Faults: a SIGKILLed run resumes from its last checkpoint to the same result; skip_completed."""

import csv
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from conftest import run_cli

# Long enough to kill mid-way; float64 so "same result" can be checked tightly.
RUN = ["trainer=cpu", "trainer.precision=64-true", "trainer.max_epochs=1500", "checkpoint_every=100",
       "log_every=100", "ensemble.size=2", "task.n_eval=101", "logger=csv"]


def final_metrics(run_dir):
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "completed"
    return {k: v["members"] for k, v in summary["metrics"].items()}


def test_killed_run_resumes_to_the_uninterrupted_result(tmp_path):
    reference, killed = tmp_path / "reference", tmp_path / "killed"
    assert run_cli(*RUN, f"hydra.run.dir={reference}", cwd=tmp_path).returncode == 0

    env = dict(os.environ, PYTHONWARNINGS="ignore")
    proc = subprocess.Popen([sys.executable, "-m", "runner", *RUN, f"hydra.run.dir={killed}"],
                            cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    last = killed / "checkpoints" / "last.ckpt"
    deadline = time.time() + 120
    while not last.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    time.sleep(0.3)  # let it train past the checkpoint, so the kill loses some work
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert last.exists(), "no checkpoint was written before the kill"
    assert f"process {proc.pid} " in (killed / ".lock").read_text()  # a stale lock, taken over below
    if (killed / "summary.json").exists():
        pytest.skip("the run finished before it could be killed (machine too fast for this test)")

    res = run_cli(*RUN, f"hydra.run.dir={killed}", "resume=true", cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-2000:]
    assert "resuming from" in res.stderr + res.stdout
    got, want = final_metrics(killed), final_metrics(reference)
    assert got.keys() == want.keys()
    for name in want:
        assert got[name] == pytest.approx(want[name], rel=1e-9, abs=1e-12), name
    # the members' loss history survives the kill in the checkpoint: the same rows, the same verdict
    got, want = (json.loads((d / "summary.json").read_text()) for d in (killed, reference))
    assert got["loss_history"]["epochs"] == want["loss_history"]["epochs"] == [*range(0, 1500, 100), 1499]
    for g, w in zip(got["loss_history"]["members"], want["loss_history"]["members"]):
        assert g == pytest.approx(w, rel=1e-9, abs=1e-12)
    assert got["member_converged"] == want["member_converged"]
    # metrics.csv covers the whole run once: rows before the checkpoint kept, none duplicated
    steps = [int(r["step"]) for r in csv.DictReader((killed / "metrics.csv").open())]
    ref_steps = [int(r["step"]) for r in csv.DictReader((reference / "metrics.csv").open())]
    assert steps == ref_steps


def test_skip_completed_does_not_recompute(tmp_path):
    run_dir = tmp_path / "run"
    small = ["trainer=cpu", "trainer.max_epochs=20", "ensemble.size=1", "task.n_eval=51",
             f"hydra.run.dir={run_dir}"]
    assert run_cli(*small, cwd=tmp_path).returncode == 0
    before = (run_dir / "summary.json").read_text()
    res = run_cli(*small, "skip_completed=true", cwd=tmp_path)
    assert res.returncode == 0
    assert "already finished (completed)" in res.stderr + res.stdout
    assert (run_dir / "summary.json").read_text() == before


def test_loss_history_of_a_resumed_run_equals_the_uninterrupted_one(tmp_path):
    """In one process, float64: 60 epochs straight, and the same run stopped at epoch 25 (as Ctrl-C
    stops it: checkpoint at that epoch) then resumed to 60, logging every 10 epochs: the same logged
    epochs and member losses (the rows before the checkpoint come from it, the rest from training)."""
    from conftest import make_cfg
    from runner.faults import Interrupted
    from runner.training.callbacks import StopOnSignal
    from conftest import fit_run
    from runner.run import build

    class StopAt25(StopOnSignal):
        def on_train_epoch_end(self, trainer, module):
            super().on_train_epoch_end(trainer, module)
            if trainer.global_step == 25:
                self._handle(signal.SIGINT, None)

    cfg = make_cfg("task=x2", "ensemble.size=3", "trainer.precision=64-true", "logger=none", "progress_every=1000",
                   "log_every=10", "trainer.max_epochs=60", "checkpoint_every=25")

    def fit(run_dir, stop, ckpt=None):
        with stop:
            return fit_run(build(cfg), run_dir, stop, ckpt, 25 if ckpt else None)[0]

    straight = fit(tmp_path / "straight", StopOnSignal())
    with pytest.raises(Interrupted):
        fit(tmp_path / "resumed", StopAt25())
    resumed = fit(tmp_path / "resumed", StopOnSignal(), ckpt=tmp_path / "resumed" / "checkpoints" / "last.ckpt")
    assert straight.logged_epochs == resumed.logged_epochs == [0, 10, 20, 30, 40, 50, 59]
    np.testing.assert_allclose(resumed.logged_losses, straight.logged_losses, rtol=1e-10, atol=0)
    history = resumed.loss_history()
    assert len(history["members"]) == 3 and all(len(m) == 7 for m in history["members"])


def test_kernel_records_before_a_stop_survive_the_resume(tmp_path):
    """task=kernel_training records at epochs 0, 10 and 20 (Tables 2-3, Figs. 7-8): stopped after
    epoch 0 and resumed, the run keeps the records made before the stop (epoch 0 is never passed again)
    and ends with the same records as the run straight through, float64."""
    from conftest import fit_run, make_cfg
    from runner.faults import Interrupted, checkpoint_step
    from runner.run import build
    from runner.training.callbacks import StopOnSignal

    class StopPastZero(StopOnSignal):  # at the first epoch end past 0 (training runs in chunks)
        def on_train_epoch_end(self, trainer, module):
            super().on_train_epoch_end(trainer, module)
            if 0 < trainer.global_step < 20 and self.signum is None:
                self._handle(signal.SIGINT, None)

    cfg = make_cfg("experiment=kimkang_table3_quick", "ensemble.size=3", "model.width=16", "trainer.precision=64-true",
                   "logger=none", "progress_every=1000", "checkpoint_every=5")

    def records(run_dir, stop, ckpt=None):
        exp = build(cfg)
        with stop:
            fit_run(exp, run_dir, stop, ckpt, checkpoint_step(ckpt) if ckpt else None)
        return exp.task.records

    straight = records(tmp_path / "straight", StopOnSignal())
    with pytest.raises(Interrupted):
        records(tmp_path / "resumed", StopPastZero())
    last = tmp_path / "resumed" / "checkpoints" / "last.ckpt"
    assert 0 < checkpoint_step(last) < 20
    resumed = records(tmp_path / "resumed", StopOnSignal(), ckpt=last)
    assert [r["epoch"] for r in straight] == [r["epoch"] for r in resumed] == [0, 10, 20]
    for got, want in zip(resumed, straight):
        assert got["test_mse"] == pytest.approx(want["test_mse"], rel=1e-9)
        np.testing.assert_allclose(got["kernel_mean"], want["kernel_mean"], rtol=1e-9)
