"""Faults: a SIGKILLed run resumes from its last checkpoint to the same result; skip_completed."""

import csv
import json
import os
import signal
import subprocess
import sys
import time

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
