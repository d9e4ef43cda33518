"""The float kernels on record and on demand (runner.numerics): every summary names what produced
its numbers, `numerics.kernels` puts another set in force in every job of a sweep, two sets give
other float32 bits and one set the same bits."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from runner import numerics
from runner.checks import ConfigError
from tests.conftest import run_cli

SMALL = ("task=x2", "trainer.max_epochs=30", "ensemble.size=3", "progress_every=1000", "threads=1")
RECORD_KEYS = {"kernels", "torch", "cpu_capability", "mkl_cbwr", "onednn_max_cpu_isa", "cpu", "threads", "device",
               "dtype"}


def cpu_has_avx2() -> bool:
    try:
        return " avx2" in open("/proc/cpuinfo").read()
    except OSError:
        return False


def final_losses(run_dir) -> tuple[list[float], dict]:
    summary = json.loads((run_dir / "summary.json").read_text())
    return summary["metrics"]["final_train_loss"]["members"], summary["numerics"]


@pytest.mark.skipif(not cpu_has_avx2(), reason="needs a CPU with AVX2")
def test_two_kernel_sets_give_other_bits_and_one_set_the_same(tmp_path):
    runs = {}
    for name, kernels in (("avx2", "avx2"), ("avx2_again", "avx2"), ("default", "default")):
        res = run_cli(*SMALL, f"numerics.kernels={kernels}", f"hydra.run.dir={tmp_path / name}", cwd=tmp_path)
        assert res.returncode == 0, res.stderr[-2000:]
        runs[name] = final_losses(tmp_path / name)
    (avx2, rec), (again, _), (default, rec_default) = runs["avx2"], runs["avx2_again"], runs["default"]
    assert set(rec) >= RECORD_KEYS
    assert (rec["kernels"], rec["cpu_capability"], rec["mkl_cbwr"], rec["onednn_max_cpu_isa"]) == \
        ("avx2", "AVX2", "AVX2", "AVX2")
    assert (rec_default["kernels"], rec_default["cpu_capability"]) == ("default", "DEFAULT")
    assert (rec["threads"], rec["device"], rec["dtype"]) == (1, "cpu", "float32")
    assert avx2 == again  # bit for bit
    assert avx2 != default  # the same seeds and code, other kernels: other last bits
    assert avx2 == pytest.approx(default, rel=1e-3)  # ...but the same training


def test_joblib_sweep_puts_the_set_in_force_in_every_job(tmp_path):
    sweep = tmp_path / "sweep"
    res = run_cli("-m", *SMALL, "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "numerics.kernels=default",
                  "seed=0,1,2", f"hydra.sweep.dir={sweep}", cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-2000:]
    records = [json.loads(p.read_text())["numerics"] for p in sorted(sweep.glob("*/summary.json"))]
    assert len(records) == 3
    assert {(r["kernels"], r["cpu_capability"], r["mkl_cbwr"]) for r in records} == {("default", "DEFAULT", "COMPATIBLE")}


@pytest.mark.skipif(not cpu_has_avx2(), reason="needs a CPU with AVX2")
def test_the_basic_launcher_runs_one_set_per_sweep_and_refuses_a_second_in_one_line(tmp_path):
    """The basic launcher runs every job in the sweep's own process, which checks and builds them
    first: the first job's set is put in force there, and a job under another set is refused."""
    sweep = tmp_path / "sweep"
    res = run_cli("-m", *SMALL, "numerics.kernels=avx2,default", f"hydra.sweep.dir={sweep}", cwd=tmp_path)
    assert "runner: error: job 1: numerics.kernels=default cannot take effect: torch in this process already " \
           "runs AVX2 kernels" in res.stderr
    first = json.loads((sweep / "0" / "summary.json").read_text())
    assert first["status"] == "completed" and first["numerics"]["cpu_capability"] == "AVX2"


def test_submitit_local_sweep_puts_the_set_in_force(tmp_path):
    sweep = tmp_path / "sweep"
    res = run_cli("-m", *SMALL, "hydra/launcher=local", "numerics.kernels=default", "seed=0,1",
                  f"hydra.sweep.dir={sweep}", cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-2000:]
    records = [json.loads(p.read_text())["numerics"] for p in sorted(sweep.glob("*/summary.json"))]
    assert len(records) == 2 and {r["cpu_capability"] for r in records} == {"DEFAULT"}


def test_an_unknown_kernel_set_is_one_line(tmp_path):
    res = run_cli(*SMALL, "numerics.kernels=avx9", f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path)
    assert res.returncode == 2
    assert res.stderr.strip().splitlines() == [
        "runner: error: numerics.kernels='avx9' is invalid: must be one of native, avx2, default"]
    assert not (tmp_path / "run" / "summary.json").exists()


def test_a_process_that_already_computed_cannot_switch():
    torch.ones(4).sum()  # this process's kernels are fixed now
    current = torch.backends.cpu.get_cpu_capability().lower()
    other = "default" if current != "default" else "avx2"
    with pytest.raises(ConfigError, match=f"numerics.kernels={other} cannot take effect"):
        numerics.use_kernels(other)


def test_native_changes_nothing_and_the_record_says_what_is_in_force(monkeypatch):
    monkeypatch.delenv("MKL_CBWR", raising=False)
    numerics.use_kernels("native")
    rec = numerics.record("native", "cpu", torch.float64)
    assert rec["cpu_capability"] == torch.backends.cpu.get_cpu_capability() and rec["mkl_cbwr"] is None
    assert rec["dtype"] == "float64" and rec["threads"] == torch.get_num_threads()
    assert numerics.describe(rec).startswith(f"{rec['cpu_capability']} kernels (numerics.kernels=native; ")


@pytest.mark.parametrize("chosen", [None, "mine"])
def test_each_kernel_set_compiles_into_a_cache_of_its_own(tmp_path, chosen):
    """inductor's on-disk cache does not key its kernels by the kernel set, and a kernel compiled
    under one set computed garbage under another: a set other than native gets its own directory
    (one the user chose is left alone)."""
    env = {k: v for k, v in os.environ.items() if k not in ("TORCHINDUCTOR_CACHE_DIR", *numerics.ENV_KEYS)}
    if chosen:
        env["TORCHINDUCTOR_CACHE_DIR"] = str(tmp_path / chosen)
    code = ("import os, runner.run; from runner import numerics; numerics.use_kernels('default'); "
            "print(os.environ['TORCHINDUCTOR_CACHE_DIR'])")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    from torch._inductor.runtime.cache_dir_utils import default_cache_dir
    tag = "-".join(numerics.KERNEL_SETS["default"][k] for k in numerics.ENV_KEYS)
    expected = tmp_path / chosen if chosen else Path(default_cache_dir()).resolve() / f"kernels-{tag}"
    assert Path(out.strip()) == expected
