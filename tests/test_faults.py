"""Faults a long sweep meets, each produced for real on the command line: a damaged checkpoint,
Ctrl-C and SIGTERM, a second process on the same run directory, a full disk (a real tmpfs)."""

import csv
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

from conftest import run_cli
from runner.results.jobs import collect
from runner.results.tables import problems
from runner.faults import DiskFull, LogFileHandler, checkpoint_step, resume_checkpoint
from runner.trackers.loggers import ResumableCSVLogger
from runner.results.files import pyplot, save_figure, write_json_atomic

plt = pyplot()

# float64 so that "the same result" is checked tightly; one thread, as jobs that share a machine run.
EPOCHS = 600
RUN = ["trainer=cpu", "trainer.precision=64-true", "ensemble.size=1", "task.n_eval=51", "threads=1",
       "log_every=10", "checkpoint_every=100", "progress_every=100000"]


def start(run_dir, *extra):
    """`python -m runner` in the background, as a terminal's foreground job: SIGINT is not ignored
    (a non-interactive shell, like a CI runner's, starts background children with it ignored)."""
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    return subprocess.Popen([sys.executable, "-m", "runner", *RUN, f"trainer.max_epochs={EPOCHS}", *extra,
                             f"hydra.run.dir={run_dir}"], cwd=run_dir.parent, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def wait_for(ready, proc, timeout=120):
    """Until `ready()` (say, a new checkpoint: the run is training); fail if the process ends first."""
    deadline = time.time() + timeout
    while not ready():
        assert proc.poll() is None, proc.communicate()
        assert time.time() < deadline, f"not ready after {timeout}s"
        time.sleep(0.02)


def inode(path):
    """The checkpoint file's identity: every save replaces it with a new file."""
    return path.stat().st_ino if path.exists() else None


def result(run_dir):
    """Final per-member metrics and the metrics.csv rows of a completed run."""
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "completed", summary.get("error")
    rows = list(csv.DictReader((run_dir / "metrics.csv").open()))
    return {k: v["members"] for k, v in summary["metrics"].items()}, rows


def assert_same_result(run_dir, reference):
    got, rows = result(run_dir)
    want, want_rows = reference
    assert got.keys() == want.keys()
    for name in want:
        assert got[name] == pytest.approx(want[name], rel=1e-9, abs=1e-12), name
    assert [r["step"] for r in rows] == [r["step"] for r in want_rows]  # every row once, none lost


def one_line(text):
    """The text's only line (a fault is reported in one line, never a traceback)."""
    lines = text.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in text, text
    return lines[0]


@pytest.fixture(scope="module")
def reference_dir(tmp_path_factory):
    """The uninterrupted run (checkpoints/last.ckpt at epoch 600, previous.ckpt at 500)."""
    run_dir = tmp_path_factory.mktemp("reference") / "run"
    res = run_cli(*RUN, f"trainer.max_epochs={EPOCHS}", f"hydra.run.dir={run_dir}", cwd=run_dir.parent)
    assert res.returncode == 0, res.stderr[-2000:]
    return run_dir


@pytest.fixture(scope="module")
def reference(reference_dir):
    """What every recovered run must end with: final metrics and metrics.csv rows."""
    return result(reference_dir)


def copy_of(run_dir, tmp_path):
    shutil.copytree(run_dir, tmp_path / "run")
    return tmp_path / "run"


# ---------------------------------------------------------------- damaged checkpoints


def test_truncated_checkpoint_resumes_from_the_previous_one(reference_dir, reference, tmp_path):
    run_dir = copy_of(reference_dir, tmp_path)
    last = run_dir / "checkpoints" / "last.ckpt"
    os.truncate(last, 1000)  # a disk or copy fault
    res = run_cli(*RUN, f"trainer.max_epochs={EPOCHS}", "resume=true", f"hydra.run.dir={run_dir}", cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-2000:]
    assert "Traceback" not in res.stdout + res.stderr
    warning = one_line("\n".join(line for line in res.stdout.splitlines() if "WARNING" in line))
    assert f"{last} is truncated or corrupt" in warning and "previous.ckpt (step 500)" in warning
    assert (run_dir / "checkpoints" / "last.ckpt.corrupt").stat().st_size == 1000  # kept, out of rotation
    assert_same_result(run_dir, reference)  # epochs 500-600 again, to the same numbers


def test_no_whole_checkpoint_stops_in_one_line_or_starts_fresh(reference_dir, tmp_path, caplog, monkeypatch):
    run_dir = copy_of(reference_dir, tmp_path)
    last, previous = run_dir / "checkpoints" / "last.ckpt", run_dir / "checkpoints" / "previous.ckpt"
    data = bytearray(last.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped byte inside the weights: torch.load would not notice
    last.write_bytes(bytes(data))
    os.truncate(previous, 0)
    summary = (run_dir / "summary.json").read_bytes()

    res = run_cli(*RUN, f"trainer.max_epochs={EPOCHS}", "resume=true", f"hydra.run.dir={run_dir}", cwd=tmp_path)
    assert res.returncode == 2
    error = one_line(res.stderr)
    assert error.startswith("runner: error: no checkpoint to resume from: ")
    assert f"{last} is truncated or corrupt" in error and "CRC" in error
    assert f"{previous} is truncated or corrupt" in error and "resume=fresh_if_corrupt" in error
    assert (run_dir / "summary.json").read_bytes() == summary  # stopped before any work

    # resume=fresh_if_corrupt: the same files, a warning, and a fresh start (the CLI calls just this)
    monkeypatch.setattr(logging.getLogger("runner"), "disabled", False)  # an in-process Hydra run disables it
    assert resume_checkpoint(run_dir / "checkpoints", fresh_if_corrupt=True) == (None, None)
    assert "starting from scratch (resume=fresh_if_corrupt)" in caplog.text
    assert sorted(p.name for p in last.parent.iterdir()) == ["last.ckpt.corrupt", "previous.ckpt.corrupt"]


# ---------------------------------------------------------------- Ctrl-C and SIGTERM


def interrupt(proc, signum, run_dir):
    """Send `signum` to a training run; check what it leaves and return the epoch it reached."""
    proc.send_signal(signum)
    out, err = proc.communicate(timeout=120)
    summary = json.loads((run_dir / "summary.json").read_text())
    if summary["status"] == "completed":
        pytest.skip("the run finished before the signal arrived (machine too fast for this test)")
    name = signal.Signals(signum).name
    assert proc.returncode == 128 + signum, err
    assert summary["status"] == "interrupted" and summary["signal"] == name
    epoch = summary["epoch"]
    assert checkpoint_step(run_dir / "checkpoints" / "last.ckpt") == epoch  # saved where it stopped
    line = one_line("\n".join(x for x in err.splitlines() if x.startswith("runner:")))
    assert f"interrupted by {name} after epoch {epoch}" in line
    assert "Traceback" not in out + err
    # runner.aggregate (and the claims report, through it) lists the job, never drops it
    (issue,) = problems(collect([run_dir]), "train_mse", ["activation"])
    assert f"interrupted by {name} after epoch {epoch}" in issue
    return epoch


def test_ctrl_c_and_sigterm_save_the_current_step_and_resume_matches(reference, tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    last = run_dir / "checkpoints" / "last.ckpt"
    proc = start(run_dir)
    wait_for(last.exists, proc)
    first = interrupt(proc, signal.SIGINT, run_dir)

    # skip_completed does not count an interrupted run as done; a SIGTERM stops the resumed one too
    saved = inode(last)
    proc = start(run_dir, "resume=true", "skip_completed=true")
    wait_for(lambda: inode(last) != saved, proc)  # the resumed run has trained to a new checkpoint
    second = interrupt(proc, signal.SIGTERM, run_dir)
    assert first < second < EPOCHS

    res = run_cli(*RUN, f"trainer.max_epochs={EPOCHS}", "resume=true", f"hydra.run.dir={run_dir}", cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-2000:]
    assert f"resuming from {last} (step {second})" in res.stdout
    assert_same_result(run_dir, reference)


# ---------------------------------------------------------------- one writer per run directory


def test_second_process_on_a_run_dir_stops_before_any_work(tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    lock = run_dir / ".lock"
    first = start(run_dir)
    try:
        wait_for(lambda: lock.exists() and f"process {first.pid} " in lock.read_text(), first)
        first.send_signal(signal.SIGSTOP)  # suspended (Ctrl-Z), it still holds the directory
        res = run_cli(*RUN, "resume=true", f"hydra.run.dir={run_dir}", cwd=tmp_path)
    finally:
        first.kill()
        first.communicate()
    assert res.returncode == 2
    assert one_line(res.stderr) == (f"runner: error: {run_dir} is in use by process {first.pid} on "
                                    f"{os.uname().nodename} (lock {lock}); wait for it to end or stop it")
    assert "resuming" not in res.stdout and not (run_dir / "summary.json").exists()  # no work done
    # a stale lock (its process killed) is taken over: tests/test_resume.py resumes after SIGKILL


# ---------------------------------------------------------------- a full disk


@pytest.fixture
def small_disk(tmp_path):
    """A real 8 MB tmpfs (root only); `fill()` takes every free byte, `free()` gives them back."""
    mount = tmp_path / "disk"
    mount.mkdir()
    res = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(mount)],
                         capture_output=True, text=True)
    if res.returncode:
        pytest.skip(f"cannot mount a tmpfs to fill ({res.stderr.strip() or 'mount failed'}; needs root)")

    class Disk:
        path = mount
        filler = mount / "filler"

        def fill(self):
            fd = os.open(self.filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
            try:
                for size in (1 << 20, 1 << 12, 1):
                    try:
                        while True:
                            os.write(fd, b"\0" * size)
                    except OSError:
                        pass
            finally:
                os.close(fd)

        def free(self):
            self.filler.unlink()

    yield Disk()
    if subprocess.run(["umount", str(mount)], capture_output=True).returncode:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def test_full_disk_stops_in_one_line_and_resume_uses_the_last_good_checkpoint(small_disk, reference):
    run_dir = small_disk.path / "run"
    run_dir.mkdir()
    proc = start(run_dir)
    wait_for((run_dir / "checkpoints" / "last.ckpt").exists, proc)
    small_disk.fill()
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 2, err
    error = one_line("\n".join(x for x in err.splitlines() if x.startswith("runner: error")))
    assert error.startswith("runner: error: disk full: cannot write ")
    assert any(f"cannot write {run_dir / name} " in error for name in ("checkpoints/last.ckpt", "metrics.csv"))
    assert "Traceback" not in out + err and "Logging error" not in err
    # what was written before is whole: the checkpoint loads, metrics.csv has no torn row
    step = checkpoint_step(run_dir / "checkpoints" / "last.ckpt")
    rows = list(csv.DictReader((run_dir / "metrics.csv").open()))
    assert rows and all(None not in r.values() and "" not in (r["step"], r["train/loss/mean"]) for r in rows)
    assert not list(run_dir.rglob("*.tmp"))

    small_disk.free()
    res = run_cli(*RUN, f"trainer.max_epochs={EPOCHS}", "resume=true", f"hydra.run.dir={run_dir}",
                  cwd=small_disk.path)
    assert res.returncode == 0, res.stderr[-2000:]
    assert f"resuming from {run_dir / 'checkpoints' / 'last.ckpt'} (step {step})" in res.stdout
    assert_same_result(run_dir, reference)


def test_full_disk_leaves_summary_plots_and_metrics_rows_whole(small_disk):
    """summary.json, a plot (predictions.npz goes the same way) and metrics.csv rows on a full disk."""
    summary, plot = small_disk.path / "summary.json", small_disk.path / "plots" / "fit.png"
    write_json_atomic(summary, {"status": "completed"})
    save_figure(plt.figure(), plot)
    png = plot.read_bytes()
    logger = ResumableCSVLogger(small_disk.path)
    keys = [f"train/metric_{i}/mean" for i in range(20)]
    logger.log_metrics(dict.fromkeys(keys, 1.0), step=0)
    logger.save()
    metrics = (small_disk.path / "metrics.csv").read_bytes()
    small_disk.fill()
    with pytest.raises(DiskFull, match="cannot write .*summary.json"):
        write_json_atomic(summary, {"status": "failed"})
    with pytest.raises(DiskFull, match="cannot write .*fit.png"):
        save_figure(plt.figure(figsize=(8, 8)), plot)
    with pytest.raises(DiskFull, match="cannot write .*metrics.csv"):
        for step in range(1, 100):  # the logger writes every 100 rows: about 40 kB here
            logger.log_metrics(dict.fromkeys(keys, 1.0 / step), step=step)
    assert json.loads(summary.read_text()) == {"status": "completed"} and plot.read_bytes() == png
    assert (small_disk.path / "metrics.csv").read_bytes() == metrics  # cut back to its last whole row
    assert sorted(p.name for p in small_disk.path.rglob("*")) == ["filler", "fit.png", "metrics.csv", "plots",
                                                                  "summary.json"]  # no temporary files


def test_full_disk_stops_the_log_file_in_one_warning_line(small_disk, capsys):
    handler = LogFileHandler(small_disk.path / "__main__.log")
    log = logging.getLogger("test_faults.full_disk")
    log.addHandler(handler)
    try:
        log.warning("before")
        small_disk.fill()
        for i in range(2000):  # enough to need a new page of the file
            log.warning("line %d %s", i, "x" * 40)
        handler.flush()
    finally:
        log.removeHandler(handler)
        handler.close()
    err = capsys.readouterr().err
    assert one_line(err) == (f"runner: warning: disk full: cannot write {small_disk.path / '__main__.log'}; "
                             f"the log file stops here")
    assert (small_disk.path / "__main__.log").read_text().startswith("before\n")
