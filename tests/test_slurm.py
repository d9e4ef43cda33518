"""Sweeps through a real SLURM (make test-slurm brings up scripts/slurm_local.sh first).

Skipped when no SLURM controller answers, unless RUNNER_REQUIRE_SLURM=1 (set by make test-slurm),
which turns the skip into a failure.
"""

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import run_cli

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("SLURM_CONF", "/tmp/runner-slurm/slurm.conf")


def slurm_answers() -> bool:
    if not shutil.which("sinfo"):
        return False
    return subprocess.run(["sinfo", "-h"], capture_output=True, timeout=20).returncode == 0


if not slurm_answers():
    if os.environ.get("RUNNER_REQUIRE_SLURM") == "1":
        pytest.fail("no SLURM controller answers (run scripts/slurm_local.sh up)", pytrace=False)
    pytest.skip("no SLURM controller (make test-slurm starts one)", allow_module_level=True)

SLURM = ["-m", "hydra/launcher=slurm", "hydra.launcher.cpus_per_task=1", "hydra.launcher.mem_gb=1",
         "hydra.launcher.timeout_min=10", "trainer=cpu", "ensemble.size=2", "task.n_eval=101"]


def summaries(sweep: Path) -> dict[str, dict]:
    return {p.parent.name: json.loads(p.read_text()) for p in sweep.glob("*/summary.json")}


def test_sweep_runs_every_job_through_sbatch(tmp_path):
    sweep = tmp_path / "sweep"
    res = run_cli(*SLURM, "threads=1", "activation=relu,tanh,mrepu", "task=x2", "trainer.max_epochs=50",
                  f"hydra.sweep.dir={sweep}", cwd=tmp_path, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    jobs = summaries(sweep)
    assert sorted(jobs) == ["0", "1", "2"]
    assert {s["activation"] for s in jobs.values()} == {"relu", "tanh", "mrepu"}
    for name, s in jobs.items():
        assert s["status"] == "completed", name
        assert s["slurm_job_id"], f"job {name} did not run under SLURM"
        # submitit keeps the sbatch script and the job's log per SLURM job id
        assert list((sweep / ".submitit").glob(f"{s['slurm_job_id']}*/*_submission.sh")) or \
            list((sweep / ".submitit").glob("*/*_submission.sh"))


def test_preempted_job_is_requeued_and_resumes_to_the_same_result(tmp_path):
    run = ["task=x2", "trainer.precision=64-true", "trainer.max_epochs=2000", "checkpoint_every=100",
           "log_every=100", "resume=true"]
    reference = tmp_path / "reference"
    assert run_cli("trainer=cpu", "ensemble.size=2", "task.n_eval=101", *run[:-1],
                   f"hydra.run.dir={reference}", cwd=tmp_path).returncode == 0

    sweep = tmp_path / "sweep"
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    proc = subprocess.Popen([sys.executable, "-m", "runner", *SLURM, *run, f"hydra.sweep.dir={sweep}"],
                            cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    ckpt = sweep / "0" / "checkpoints" / "last.ckpt"
    deadline = time.time() + 300
    while not ckpt.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.2)
    assert ckpt.exists(), "the job wrote no checkpoint"
    job_id = next(p.name for p in (sweep / ".submitit").iterdir() if p.is_dir())
    # what a preemption looks like to the job: submitit's USR2 handler requeues it
    subprocess.run(["scancel", "--signal=USR2", job_id], check=True)
    out, _ = proc.communicate(timeout=600)
    assert proc.returncode == 0, out[-3000:]
    s = summaries(sweep)["0"]
    assert s["status"] == "completed"
    log = "".join(p.read_text() for p in (sweep / ".submitit").rglob("*.out"))
    if (sweep / "0" / "summary.json").exists() and "requeue" not in log.lower():
        pytest.fail("the job finished without being requeued:\n" + log[-2000:])
    assert "resuming from" in (sweep / "0" / "__main__.log").read_text()
    want = json.loads((reference / "summary.json").read_text())["metrics"]
    for name, stats in want.items():
        assert s["metrics"][name]["members"] == pytest.approx(stats["members"], rel=1e-9, abs=1e-12), name
