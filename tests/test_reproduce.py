"""scripts/reproduce.py: sweep expansion, the runtime estimate, and the report's structure on a
small subset of the smoke scale (the verdicts themselves are science, checked in their own tests
and stated in reports/smoke/REPORT.md)."""

import json
import re
import subprocess
import sys

import pytest

from conftest import ROOT
from runner.claims import BEYOND, CLAIMS

sys.path.insert(0, str(ROOT / "scripts"))
import reproduce  # noqa: E402

VERDICTS = ("reproduced", "not reproduced", "inconclusive")


def test_sweep_jobs_expand_like_hydra():
    jobs = reproduce.sweep_jobs("tsvetkova_sn", ["ensemble.size=2", "regularizer.coef=0,1e-2"])
    assert len(jobs) == 2 * 4 * 2  # targets x activations x coefficients
    assert sum("regularizer.coef=0.01" in j for j in jobs) == 8  # as Hydra writes 1e-2
    # a plain override of a swept key replaces the preset's sweep over it
    jobs = reproduce.sweep_jobs("kimkang_table4", ["activation=mrepu", "init.C_W=0.1"])
    assert len(jobs) == 4 and all("activation=mrepu" in j for j in jobs)
    assert sorted(j[-1] for j in jobs) == [f"kimkang={t}" for t in ("poly2d_a", "poly2d_b", "poly_high", "poly_low")]


def test_work_scales_with_epochs_members_and_points():
    small, steps = reproduce.work(["experiment=kimkang_table4", "kimkang=poly2d_a", "ensemble.size=8",
                                   "trainer.max_epochs=1000"])
    full, full_steps = reproduce.work(["experiment=kimkang_table4", "kimkang=poly2d_a"])
    assert (steps, full_steps) == (1000, 10_000)
    assert full / small == pytest.approx(10 * 25 / 8)
    one_d, _ = reproduce.work(["experiment=kimkang_table4", "kimkang=poly_low"])
    assert full / one_d == pytest.approx(101)  # 101x101 grid vs 101 points


def test_unknown_sweep_is_one_line_error():
    res = subprocess.run([sys.executable, "scripts/reproduce.py", "--only", "fig9"], cwd=ROOT,
                         capture_output=True, text=True)
    assert res.returncode == 2
    assert res.stderr.strip() == ("reproduce: error: unknown sweep 'fig9'; choose from "
                                  + ", ".join(reproduce.load_plan("smoke")["sweeps"]))


def test_smoke_subset_writes_a_structured_report(tmp_path):
    """fig4 and fig1 at smoke size, table2 cut to a few epochs, sequentially in this process's
    launcher; then the report must have one computed row per claim and its figures beside it."""
    def run(*args):
        res = subprocess.run([sys.executable, "scripts/reproduce.py", "--scale", "smoke", "--out", str(tmp_path),
                              "--launcher", *args], cwd=ROOT, capture_output=True, text=True, timeout=600)
        assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
        return res.stdout

    out = run("--only", "fig4,fig1")
    assert "estimate:" in out and "fig1" in out
    run("--only", "table2", "--extra", "trainer.max_epochs=4", "checkpoint_every=4", "task.record_epochs=[0,2,4]")
    report = (tmp_path / "REPORT.md").read_text()
    assert "| claim | paper says | runner measured (mean ± std, n) | verdict |" in report
    assert "; table2 re-ran for " in report  # the header says which sweeps this invocation ran
    rows = {m.group(1): m.group(2) for m in re.finditer(r"^\| (\S+) \(.*\| \*\*([a-z ]+)\*\*", report, re.M)}
    assert list(rows) == [c.id for c in CLAIMS + BEYOND]  # BEYOND's rows: the PINN suite's section
    assert set(rows.values()) <= set(VERDICTS)
    ran = {c.id for c in CLAIMS if set(c.sweeps) <= {"fig4", "fig1", "table2"}}
    assert ran == {"B1", "B2", "B3", "B6"}
    assert all(rows[i] != "inconclusive" for i in ran)  # they ran, so the rule decided
    assert all(rows[c.id] == "inconclusive" for c in CLAIMS + BEYOND if c.id not in ran)
    assert "sweep tsvetkova did not run" in report
    figures = re.findall(r"!\[[^]]*\]\((figures/[^)]+)\)", report)
    assert figures and all((tmp_path / f).exists() for f in figures)
    assert any(f.startswith("figures/fig1-") for f in figures)
    timings = json.loads((tmp_path / "timings.json").read_text())
    assert set(timings) == {"fig4", "fig1", "table2"} and all(t > 0 for t in timings.values())
