"""Every bench runs, at a tiny size, and prints its summary line: a bench that no test runs breaks
silently when the code under it changes. Only that it runs is checked here; its timings are the
bench's business (docs/performance.md), never a test's."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from conftest import ROOT

# module: (tiny arguments, its summary line); at this size and under a loaded test run a timing is
# noise (a difference of two short runs can come out negative), so only the line's form is checked
BENCHES = {
    "bench_ensemble": (["--members", "2", "--steps", "3", "--repeats", "1"], r"^step_over_raw: -?\d+\.\d+$"),
    "bench_pinn": (["--steps", "2", "--warmup", "1", "--repeats", "1", "--activations", "tanh", "--collocation", "64"],
                   r"^runner_over_plain: -?\d+\.\d+$"),
    "bench_regression": (["--only-1d", "--members", "2", "--short", "2", "--long", "4"],
                         r"^projected one-input part, median of 1: -?\d+\.\d+ min$"),
    "bench_theory": (["--members", "4", "--width", "16", "--depth", "3", "--repeats", "1"],
                     r"^\d+ torch threads$"),
}


def test_every_bench_is_listed():
    assert set(BENCHES) == {p.stem for p in (ROOT / "benchmarks").glob("bench_*.py")}


@pytest.mark.parametrize("name", sorted(BENCHES))
def test_bench_runs_at_a_tiny_size(name):
    args, summary = BENCHES[name]
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    res = subprocess.run([sys.executable, "-m", f"benchmarks.{name}", *args], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    assert any(re.match(summary, line) for line in res.stdout.splitlines()), res.stdout[-2000:]
