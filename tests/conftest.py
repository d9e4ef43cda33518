"""Shared fixtures: compose configs the way `python -m runner` does, and run them in tmp dirs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from omegaconf import DictConfig

from runner.config import compose

ROOT = Path(__file__).resolve().parents[1]


def make_cfg(*overrides: str) -> DictConfig:
    """The composed config for these overrides on the CPU trainer (no Hydra run directory)."""
    return compose("trainer=cpu", *overrides)


def run_cli(*args: str, cwd: Path, timeout: int = 300) -> subprocess.CompletedProcess:
    """Run `python -m runner ARGS` in `cwd` and capture its output."""
    env = dict(os.environ, PYTHONWARNINGS="ignore", WANDB_MODE="offline", WANDB_SILENT="true")
    return subprocess.run([sys.executable, "-m", "runner", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def cfg_factory():
    return make_cfg
