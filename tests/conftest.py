"""Shared fixtures: compose configs the way `python -m runner` does, and run them in tmp dirs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from omegaconf import DictConfig

from runner import numerics
from runner.config import compose
from runner.run import Experiment, build, build_loggers, fit, job_identity
from runner.theory.activations import Activation
from runner.theory.init import Init
from runner.nets.mlp import EnsembleMLP

ROOT = Path(__file__).resolve().parents[1]
# the built-in activations: conf/activation/*.yaml, but for the two that take a user's function
BUILTIN_ACTIVATIONS = sorted(p.stem for p in (ROOT / "conf" / "activation").glob("*.yaml")
                             if p.stem not in ("formula", "python"))

# make test-numerics sets ATEN_CPU_CAPABILITY: what the tests compile in this process must not meet
# what `make test` compiled under other kernels in inductor's cache (runner.numerics)
numerics.separate_compile_cache()

if os.environ.get("PYTEST_XDIST_WORKER_COUNT") and "OMP_NUM_THREADS" not in os.environ:
    # pytest -n N: each worker (and the runs it starts) gets its share of the cores; torch thread
    # pools of several processes contending for the same cores make small steps many times slower
    os.environ["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // int(os.environ["PYTEST_XDIST_WORKER_COUNT"])))
    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))


def colored_fraction(png: Path) -> float:
    """The share of a PNG's pixels that are colored (channels apart by more than 0.2 of full
    scale): about 0 for an empty figure, whose axes, ticks and labels are black on white; a curve
    in a default color, a filled band, an image or a heat map raise it."""
    import matplotlib.image

    rgb = matplotlib.image.imread(png)[..., :3]
    return float(((rgb.max(-1) - rgb.min(-1)) > 0.2).mean())


def make_cfg(*overrides: str) -> DictConfig:
    """The composed config for these overrides on the CPU trainer (no Hydra run directory), with
    eager steps unless they say `compile=` (tests/test_compile.py)."""
    eager = [] if any(o.startswith("compile=") for o in overrides) else ["compile=false"]
    return compose("trainer=cpu", *eager, *overrides)


def make_experiment(*overrides: str) -> Experiment:
    """The objects of the run these overrides compose, on the CPU trainer (runner.run.build)."""
    return build(make_cfg(*overrides))


def fit_run(exp: Experiment, run_dir: Path, stop, ckpt_path: Path | None = None, resume_step: int | None = None):
    """runner.run.fit of `exp` in run_dir with the config's loggers, from ckpt_path when given (a
    checkpoint at resume_step): (module, trainer)."""
    init, _ = exp.resolve_init()
    loggers = build_loggers(exp, Path(run_dir), job_identity(exp), resume_step)
    return fit(exp, init, Path(run_dir), stop, loggers, ckpt_path)


def make_model(in_dim: int, out_dim: int, depth: int, width: int, activation: Activation, size: int,
               seed: int = 0, member_offset: int = 0, C_W: float = 1.0, C_b: float = 0.0) -> EnsembleMLP:
    """An EnsembleMLP at critical init (C_W on every layer), float32, no dropout, for tests that
    need a model and not a config."""
    return EnsembleMLP(in_dim, out_dim, depth, width, activation, Init("critical", C_W, C_W, C_b), size=size,
                       seed=seed, member_offset=member_offset, dropout=0.0, dtype=torch.float32)


def run_cli(*args: str, cwd: Path, timeout: int = 300, module: str = "runner") -> subprocess.CompletedProcess:
    """Run `python -m runner ARGS` (or another module of the runner) in `cwd` and capture its output."""
    env = dict(os.environ, PYTHONWARNINGS="ignore", WANDB_MODE="offline", WANDB_SILENT="true")
    return subprocess.run([sys.executable, "-m", module, *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def cfg_factory():
    return make_cfg


@pytest.fixture
def wandb_offline(tmp_path, monkeypatch):
    """W&B offline, with every directory it writes outside a run's own (settings, cache, artifact
    staging) under tmp_path; `run_cli` passes the environment on. No run stays open afterwards."""
    home = tmp_path / "wandb_home"
    for var in ("WANDB_DIR", "WANDB_DATA_DIR", "WANDB_CACHE_DIR", "WANDB_CONFIG_DIR", "WANDB_ARTIFACT_DIR"):
        monkeypatch.setenv(var, str(home / var.lower()))
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    yield home
    import wandb

    if wandb.run is not None:
        wandb.finish()
