"""Shared by the benchmark scripts: time the runner's own training path."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from runner.config import compose
from runner.run import build_task, job_identity, keep_freed_memory, train


def time_training(*overrides: str, epochs: int) -> float:
    """Seconds for `run.train` of `epochs` epochs with these overrides, setup included: CPU
    trainer, no loggers, no progress lines, one checkpoint at the end, a throwaway directory,
    and the allocator setting every run gets."""
    keep_freed_memory()
    cfg = compose("trainer=cpu", "logger=none", "progress_every=1000000", *overrides,
                  f"trainer.max_epochs={epochs}", f"checkpoint_every={epochs}")
    task = build_task(cfg)
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        train(cfg, task, Path(tmp), job_identity(cfg, Path(tmp)))
        return time.perf_counter() - start
