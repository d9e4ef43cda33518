"""Faults a long sweep meets and what the runner does about them (docs/faults.md).

`RunStopped` errors end a run with one line naming the file or directory and exit code 2: a
run directory that another process holds, a full disk, no checkpoint left to resume from.
`Interrupted` is Ctrl-C or SIGTERM; the run records `status: interrupted` and exits non-zero.
"""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import signal
import socket
import sys
import zipfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import torch

log = logging.getLogger("runner")

# Keys every Lightning checkpoint that `trainer.fit(ckpt_path=...)` can resume from holds.
CHECKPOINT_KEYS = {"state_dict", "optimizer_states", "loops", "global_step", "epoch"}


class RunStopped(Exception):
    """A fault that stops the run; the message is one line naming the file or directory."""


class RunDirInUse(RunStopped):
    """Another live process holds the run directory's lock."""


class DiskFull(RunStopped):
    """A write failed with ENOSPC."""

    def __init__(self, path: Path):
        self.path = Path(path)
        super().__init__(f"disk full: cannot write {path} (no space left on device); "
                         f"files written before are intact")


class NoUsableCheckpoint(RunStopped):
    """resume=true, and every checkpoint in the run directory is truncated or corrupt."""


class Interrupted(BaseException):
    """SIGINT (Ctrl-C) or SIGTERM stopped the run. A BaseException, like KeyboardInterrupt, so
    no `except Exception` swallows it; `epoch` counts the epochs saved in checkpoints/last.ckpt."""

    def __init__(self, signum: int, epoch: int | None = None):
        self.signum, self.epoch = signum, epoch
        self.signal_name = signal.Signals(signum).name
        super().__init__(f"interrupted by {self.signal_name}")

    @property
    def exit_code(self) -> int:
        """128 + the signal number, as a shell reports a process a signal ended (130, 143)."""
        return 128 + self.signum


@contextmanager
def naming_full_disk(path: Path) -> Iterator[None]:
    """Turn an ENOSPC failure inside the block into DiskFull(path)."""
    try:
        yield
    except OSError as exc:
        if exc.errno != errno.ENOSPC:
            raise
        raise DiskFull(path) from None


class LogFileHandler(logging.FileHandler):
    """The job's log file (conf/hydra/job_logging/runner.yaml). On a full disk it says so in one
    line on stderr and stops writing, where logging would print a traceback for every record; the
    run itself stops with DiskFull at its next checkpoint, metrics row or output file."""

    disk_full = False

    def emit(self, record: logging.LogRecord) -> None:
        if not self.disk_full:
            super().emit(record)

    def handleError(self, record: logging.LogRecord) -> None:
        error = sys.exc_info()[1]
        if isinstance(error, OSError) and error.errno == errno.ENOSPC:
            self.disk_full = True
            print(f"runner: warning: disk full: cannot write {self.baseFilename}; the log file stops here",
                  file=sys.stderr)
            stream, self.stream = self.stream, None
            try:  # drop what the buffer still holds, or every flush and close would fail again
                stream.close()
            except OSError:
                pass
        else:
            super().handleError(record)


@contextmanager
def run_dir_lock(run_dir: Path) -> Iterator[None]:
    """Hold an exclusive lock on run_dir/.lock while the block runs; RunDirInUse if a live process
    holds it. The lock belongs to the open file, so the kernel drops it when its process dies."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / ".lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 256, 0).decode(errors="replace").strip() or "another process"
            raise RunDirInUse(f"{run_dir} is in use by {holder} (lock {path}); "
                              f"wait for it to end or stop it") from None
        except OSError as exc:  # a file system without locks: run, but say so
            log.warning("cannot lock %s (%s); running without the one-writer check", path, exc.strerror)
        try:  # who holds it, for the message above; a full disk must not stop the run here
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"process {os.getpid()} on {socket.gethostname()}\n".encode(), 0)
        except OSError:
            pass
        yield
    finally:
        os.close(fd)


def checkpoint_step(path: Path) -> int:
    """The global step of a whole Lightning checkpoint; ValueError saying what is wrong with a
    truncated or corrupt one (zip CRCs are checked: torch.load alone reads flipped bytes as data)."""
    try:
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()
        checkpoint = None if bad else torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # noqa: BLE001 - whatever a damaged file makes zipfile or torch raise
        first_line = str(exc).splitlines()[0] if str(exc) else ""
        raise ValueError(f"{type(exc).__name__}: {first_line}") from None
    if bad:
        raise ValueError(f"record {bad} fails its CRC check")
    missing = CHECKPOINT_KEYS - set(checkpoint) if isinstance(checkpoint, dict) else CHECKPOINT_KEYS
    if missing:
        raise ValueError(f"not a Lightning checkpoint (no {', '.join(sorted(missing))})")
    return int(checkpoint["global_step"])


def resume_checkpoint(checkpoints: Path, fresh_if_corrupt: bool = False) -> tuple[Path | None, int | None]:
    """(path, global step) of the newest whole checkpoint, last.ckpt else previous.ckpt; (None, None)
    when there is none. A damaged one gets one warning line and is renamed *.corrupt; if no whole
    one is left, NoUsableCheckpoint, or (None, None) with fresh_if_corrupt."""
    candidates = [Path(checkpoints) / "last.ckpt", Path(checkpoints) / "previous.ckpt"]
    problems, damaged = [], []
    for path in candidates:
        if not path.exists():
            if path.name == "last.ckpt" and candidates[1].exists():
                problems.append(f"{path} is missing")
            continue
        try:
            step = checkpoint_step(path)
        except ValueError as exc:
            problems.append(f"{path} is truncated or corrupt ({exc})")
            damaged.append(path)
            continue
        _set_aside(damaged)
        if problems:
            log.warning("%s; resuming from %s (step %d)", _describe(problems, damaged), path, step)
        return path, step
    if not problems:
        return None, None
    if not fresh_if_corrupt:
        raise NoUsableCheckpoint(f"no checkpoint to resume from: {'; '.join(problems)}; "
                                 f"resume=fresh_if_corrupt starts over")
    _set_aside(damaged)
    log.warning("%s; starting from scratch (resume=fresh_if_corrupt)", _describe(problems, damaged))
    return None, None


def _describe(problems: list[str], damaged: list[Path]) -> str:
    return "; ".join(problems) + ("; set aside as *.corrupt" if damaged else "")


def _set_aside(damaged: list[Path]) -> None:
    """Rename damaged checkpoints to *.corrupt: kept for a look, out of the rotation."""
    for path in damaged:
        os.replace(path, path.with_name(path.name + ".corrupt"))
