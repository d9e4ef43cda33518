"""scripts/reproduce.py and runner.sweeps: sweep expansion, the runtime estimate, and the report's
structure on a small subset of the smoke scale (the verdicts themselves are science, checked in
their own tests and stated in reports/smoke/REPORT.md)."""

import json
import re
import signal
import subprocess
import sys

import pytest

from conftest import ROOT
import factories
from runner import sweeps
from runner.config import compose
from runner.papers import PAPERS
from runner.results.verdicts import NOT_RUN, VERDICTS

CLAIMS = [c for paper in PAPERS if paper.section is None for c in paper.claims]  # the report's claims table
ALL_CLAIMS = [c for paper in PAPERS for c in paper.claims]


def test_sweep_jobs_expand_like_hydra():
    jobs = sweeps.sweep_jobs("tsvetkova_sn", ["ensemble.size=2", "regularizer.coef=0,1e-2"])
    assert len(jobs) == 2 * 4 * 2  # targets x activations x coefficients
    assert sum("regularizer.coef=0.01" in j for j in jobs) == 8  # as Hydra writes 1e-2
    assert all("experiment=tsvetkova_sn" in j and "ensemble.size=2" in j for j in jobs)
    assert len({tuple(sorted(j)) for j in jobs}) == len(jobs)
    # a plain override of a swept key replaces the preset's sweep over it
    jobs = sweeps.sweep_jobs("kimkang_table4", ["activation=mrepu", "init.C_W=0.1"])
    assert len(jobs) == 4 and all("activation=mrepu" in j and "init.C_W=0.1" in j for j in jobs)
    assert sorted(o for j in jobs for o in j if o.startswith("kimkang=")) == [
        f"kimkang={t}" for t in ("poly2d_a", "poly2d_b", "poly_high", "poly_low")]


def test_sweep_jobs_are_the_jobs_hydra_runs(tmp_path):
    """The expansion against a real multirun's job directories (the preset's sweep over four
    activations, times a sweep over seeds on the command line): the same override lists."""
    import yaml

    overrides = ["seed=0,1", "model=mlp_3x64", "ensemble.size=2", "task.n_C_W=2", "task.n_K0=2", "task.marks=[]"]
    sweep = tmp_path / "sweep"
    res = subprocess.run([sys.executable, "-m", "runner", "-m", "experiment=phase_diagram", *overrides,
                          "threads=1", "logger=none", f"hydra.sweep.dir={sweep}"], cwd=tmp_path,
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    ran = sorted(sorted(o for o in yaml.safe_load((d / ".hydra" / "overrides.yaml").read_text())
                        if not o.startswith(("threads=", "logger=")))
                 for d in sweep.iterdir() if d.is_dir())
    expected = sweeps.sweep_jobs("phase_diagram", overrides)
    assert len(ran) == 8 and ran == sorted(sorted(j) for j in expected)


def test_work_scales_with_epochs_members_and_points():
    small, steps = sweeps.work(["experiment=kimkang_table4", "kimkang=poly2d_a", "ensemble.size=8",
                              "trainer.max_epochs=1000"])
    full, full_steps = sweeps.work(["experiment=kimkang_table4", "kimkang=poly2d_a"])
    assert (steps, full_steps) == (1000, 10_000)
    assert full / small == pytest.approx(10 * 25 / 8)
    one_d, _ = sweeps.work(["experiment=kimkang_table4", "kimkang=poly_low"])
    assert full / one_d == pytest.approx(101)  # 101x101 grid vs 101 points


def test_queues_balance_the_probed_job_time_and_keep_the_plan_order():
    seconds = {"fig4": 2, "table3": 87, "table4": 79, "table4_auto": 90, "table5": 23, "tsvetkova": 7}
    split = sweeps.queues(seconds, 2)  # longest first onto the lighter queue: 90 | 87, 79 | +23, 7, 2
    assert split == [["fig4", "table4_auto", "table5", "tsvetkova"], ["table3", "table4"]]
    loads = [sum(seconds[n] for n in q) for q in split]
    assert max(loads) - min(loads) <= max(seconds.values()) and sorted(n for q in split for n in q) == sorted(seconds)
    assert all(q == [n for n in seconds if n in q] for q in split)  # each queue in the plan's order
    assert sweeps.queues(seconds, 1) == [list(seconds)]
    assert sweeps.queued_wall({"a": 10.0, "b": 10.0}, 2, startup=1.0) == 11.0


def test_unknown_sweep_is_one_line_error():
    res = subprocess.run([sys.executable, "scripts/reproduce.py", "--only", "fig9"], cwd=ROOT,
                         capture_output=True, text=True)
    assert res.returncode == 2
    assert res.stderr.strip() == ("reproduce: error: unknown sweep 'fig9'; choose from "
                                  + ", ".join(sweeps.load_plan("smoke")["sweeps"]))


def test_smoke_subset_writes_a_structured_report(tmp_path):
    """fig4 and fig1 at smoke size, table2 cut to a few epochs, sequentially in this process's
    launcher; then the report must have one computed row per claim and its figures beside it."""
    def run(*args):
        res = subprocess.run([sys.executable, "scripts/reproduce.py", "--scale", "smoke", "--out", str(tmp_path),
                              "--launcher", *args], cwd=ROOT, capture_output=True, text=True, timeout=600)
        assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
        return res.stdout

    out = run("--only", "fig4,fig1", "--queues", "2")  # side by side, one queue each
    assert "estimate:" in out and "  queue 1: fig4\n  queue 2: fig1\n" in out
    run("--only", "table2", "--extra", "trainer.max_epochs=4", "checkpoint_every=4", "callbacks.kernel_recorder.epochs=[0,2,4]")
    report = (tmp_path / "REPORT.md").read_text()
    assert "| claim | the paper says | verdict | fragility | deciding evidence |" in report
    assert "; table2 re-ran for " in report  # the header says which sweeps this invocation ran
    rows = {m.group(1): m.group(2) for m in re.finditer(r"^\| \[(\S+)\]\(#\S+\) \| .* \| \*\*([a-z ]+)\*\* \|",
                                                        report, re.M)}
    assert list(rows) == [c.id for c in ALL_CLAIMS]  # every claim's row on the first screen
    assert set(rows.values()) <= {*VERDICTS, NOT_RUN}
    assert re.search(r"\*\*\d+ reproduced( \(\d+ fragile\))?, \d+ contradicted( \(\d+ fragile\))?, \d+ inconclusive"
                     r"( \(\d+ fragile\))?, 20 not run\*\* of the papers' 24 claims at α = 0.05; beyond the papers: "
                     r"S1 not run", report)
    ran = {c.id for c in CLAIMS if set(c.sweeps) <= {"fig4", "fig1", "table2"}}
    assert ran == {"B1", "B2", "B3", "B6"}
    assert all(rows[i] != "inconclusive" for i in ran - {"B6"})  # they ran, so the rule decided
    # four epochs: no member has beaten the zero function yet (or it overflowed), so every member
    # failed and every comparison is a tie
    b6 = report.split('<a id="b6"></a>')[1].split("<a id=")[0]
    assert rows["B6"] == "inconclusive" and "| 0/32 members, 32 failed |" in b6
    assert all(rows[c.id] == NOT_RUN for c in ALL_CLAIMS if c.id not in ran)
    assert "sweep tsvetkova did not run" in report
    figures = re.findall(r"!\[[^]]*\]\((figures/[^)]+)\)", report)
    assert figures and all((tmp_path / f).exists() for f in figures)
    assert any(f.startswith("figures/fig1-") for f in figures)
    timings = json.loads((tmp_path / "timings.json").read_text())
    assert set(timings) == {"fig4", "fig1", "table2"} and all(t > 0 for t in timings.values())
    walls = json.loads((tmp_path / "runs" / "walls.json").read_text())  # each sweep's wall time, as it ended
    assert set(walls) == {"fig4", "fig1", "table2"}
    assert all(w["seconds"] > 0 and w["workers"] >= 1 for w in walls.values())
    record = json.loads((tmp_path / "claims.json").read_text())
    assert [c["id"] for c in record["claims"]] == [c.id for c in ALL_CLAIMS]
    b3 = next(c for c in record["claims"] if c["id"] == "B3")
    assert b3["verdict"] == rows["B3"] and all(t["kind"] == "share" for t in b3["tests"])
    assert all(t["wins"] + t["losses"] == t["n"] and t["dropped"] == 0 for t in b3["tests"])

    # the same table2 jobs again under the unvectorized kernels, compared member by member
    res = subprocess.run([sys.executable, "scripts/reproduce.py", "--replicate", str(tmp_path), "--scale", "smoke",
                          "--only", "table2", "--kernels", "default", "--launcher", "--extra", "trainer.max_epochs=4",
                          "checkpoint_every=4", "callbacks.kernel_recorder.epochs=[0,2,4]"],
                         cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    replication = (tmp_path / "REPLICATION.md").read_text()
    rerun = [json.loads(p.read_text())["numerics"] for p in (tmp_path / "replicate-default" / "runs").rglob("summary.json")]
    assert len(rerun) == 3 and {r["cpu_capability"] for r in rerun} == {"DEFAULT"}
    assert "- rerun here: DEFAULT kernels (numerics.kernels=default; MKL_CBWR=COMPATIBLE" in replication
    assert re.search(r"^\| table2 \| 3 \| 48 \| \d+ \| \d+ \| .*train_mse", replication, re.M)
    assert re.search(r"^\| B6 \| inconclusive \| .* \| inconclusive \| .* \| yes \|$", replication, re.M)
    assert replication.rstrip().endswith("1 of 1 verdicts agree.")

    # a rerun stopped part-way (one job's summary gone) is not judged, as in the report
    next((tmp_path / "replicate-default" / "runs" / "table2").glob("*/summary.json")).unlink()
    res = subprocess.run([sys.executable, "scripts/reproduce.py", "--replicate", str(tmp_path), "--scale", "smoke",
                          "--only", "table2", "--kernels", "default", "--report-only"],
                         cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    replication = (tmp_path / "REPLICATION.md").read_text()
    assert re.search(r"^\| table2 \| unfinished: 2 of 3 jobs finished \|", replication, re.M)
    assert "| B6 |" not in replication and replication.rstrip().endswith("0 of 0 verdicts agree.")


def test_a_claim_that_raises_is_an_error_and_reproduce_exits_non_zero(tmp_path):
    """A vertex run whose metrics.csv lacks a column (as a renamed metric would): claim B5 cannot be
    computed. The report says `error` with the exception, apart from the verdicts; the exit is 1."""
    job = factories.write_run(tmp_path / "runs" / "fig6" / "0",
                              factories.record({}, config={"activation": {"name": "relu"}}))
    (job / "metrics.csv").write_text("C_W,width,layer,kurtosis\n1,32,1,0.1\n1,32,2,0.2\n")
    res = subprocess.run([sys.executable, "scripts/reproduce.py", "--scale", "smoke", "--out", str(tmp_path),
                          "--report-only"], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert res.returncode == 1
    assert res.stderr.strip().splitlines() == ["reproduce: error: claim B5: KeyError: 'V_G'"]
    report = (tmp_path / "REPORT.md").read_text()
    assert re.search(r"^\| \[B5\]\(#b5\) \| .* \| \*\*error\*\* \|  \| KeyError: 'V_G' \|$", report, re.M)
    assert "1 error**" in report.split("\n## ")[0]


def test_estimate_probes_each_sweep_before_anything_runs(tmp_path):
    res = subprocess.run([sys.executable, "scripts/reproduce.py", "--scale", "smoke", "--only", "fig4,table2",
                          "--out", str(tmp_path), "--estimate"], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    lines = res.stdout.splitlines()
    assert lines[0].startswith("reproduce --scale smoke: timing probe of 2 sweeps")
    assert any(line.split()[:3] == ["fig4", "1", "jobs,"] for line in lines)
    assert any(line.split()[:3] == ["table2", "3", "jobs,"] and "on 2 workers (3 job kinds timed" in line
               for line in lines)
    assert lines[-1].startswith("  total ~")
    # nothing ran: only the estimate is kept, for the report to set beside each sweep's actual time
    assert [p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*")] == ["runs", "runs/estimates.json"]
    estimates = json.loads((tmp_path / "runs" / "estimates.json").read_text())
    assert set(estimates["sweeps"]) == {"fig4", "table2"} and all(s > 0 for s in estimates["sweeps"].values())


def test_a_probe_of_a_sweep_that_changed_since_is_not_its_estimate(tmp_path):
    """A sweep's probe times its overrides then: once the plan changes them, the estimate, the queues
    and the report fall back instead of printing the old time as the new sweep's."""
    from runner.papers.report import timing_lines
    plan = sweeps.load_plan("smoke")
    before = {"fig4": plan["sweeps"]["fig4"], "table2": plan["sweeps"]["table2"]}
    sweeps.record_estimates(tmp_path, {"fig4": 5.0, "table2": 50.0}, {"fig4": 4.0, "table2": 90.0}, before)
    now = {**plan, "sweeps": {**plan["sweeps"], "table2": {**before["table2"],
                                                           "overrides": [*before["table2"]["overrides"], "trainer.max_epochs=9"]}}}
    read = sweeps.read_estimates(tmp_path, now["sweeps"])
    assert read["sweeps"] == {"fig4": 5.0} and read["job_seconds"] == {"fig4": 4.0} and read["stale"] == ["table2"]
    assert sweeps.read_estimates(tmp_path)["sweeps"] == {"fig4": 5.0, "table2": 50.0}  # the file itself is kept
    assert read["probed_at"].keys() == {"fig4", "table2"}
    lines = sweeps.estimate(now, ["fig4", "table2"], ROOT / "reports" / "smoke" / "timings.json", read)
    assert "(probed here)" in lines[0] and "the probe here timed other overrides" in lines[1]
    table = "\n".join(timing_lines(now, tmp_path, {}, read))
    assert "| table2 | - (probed with other overrides) |" in table and "| fig4 | 5 s |" in table


def test_makespan_hands_jobs_to_the_first_free_worker():
    assert sweeps.makespan([4, 1, 1, 1], 2) == 4      # 4 on one worker, 1+1+1 on the other
    assert sweeps.makespan([1, 1, 4], 2) == 5         # the long job last waits for a free worker
    assert sweeps.makespan([3, 3, 3], 1) == 9


def test_medium_scale_pairs_at_least_eight_seeds_in_every_comparison():
    """A sign test on n pairs cannot go below 0.5^n: the medium scale must allow p < 0.05 with room."""
    medium = sweeps.load_plan("medium")
    assert sweeps.load_alpha(medium, "medium") == 0.05
    comparative = {s for c in ALL_CLAIMS if c.id in {"A4", "B8", "B9", "B10", "B11", "B12", "B13", "S1"}
                   for s in c.sweeps}
    assert comparative <= set(medium["sweeps"])
    for name in comparative:
        spec = medium["sweeps"][name]
        cfg = compose(*sweeps.sweep_jobs(spec["experiment"], spec["overrides"])[0])
        assert cfg.ensemble.size >= 8 and 0.5 ** cfg.ensemble.size < 0.005, name
    assert set(medium["sweeps"]) == set(sweeps.load_plan("smoke")["sweeps"])  # every claim has its sweeps


def test_alpha_must_be_a_probability():
    with pytest.raises(ValueError, match=r"verdicts.alpha=1.5 is invalid: must be a number in \(0, 1\)"):
        sweeps.load_alpha({"verdicts": {"alpha": 1.5}}, "x")


def test_a_regenerated_report_states_the_wall_time_of_its_runs(tmp_path):
    from runner.papers.report import provenance

    plan = {"sweeps": {"a": {}, "b": {}}}
    assert provenance(plan, {}, 0.0, tmp_path) == "; report regenerated from existing runs"
    assert provenance(plan, {"a": {}, "b": {}}, 3180.0, tmp_path) == "; sweeps ran for 53 min"
    again = provenance(plan, {}, 0.0, tmp_path)
    assert again.startswith("; report regenerated from the runs of ") and again.endswith(", whose sweeps ran for 53 min")
    assert provenance(plan, {"a": {}}, 60.0, tmp_path).startswith("; a re-ran for ")


@pytest.mark.parametrize("signum,code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_ends_the_estimate_in_one_line(tmp_path, signum, code):
    """Ctrl-C (or SIGTERM) while the probe runs: one line saying how far it got, no traceback."""
    proc = subprocess.Popen([sys.executable, "scripts/reproduce.py", "--scale", "smoke", "--estimate",
                             "--out", str(tmp_path)], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    lines = []
    while len(lines) < 3:  # the header, the process start and the first sweep
        lines.append(proc.stdout.readline())
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == code, err
    estimates = tmp_path / "runs" / "estimates.json"
    assert re.fullmatch(rf"reproduce: estimate stopped by {signal.Signals(signum).name} after \d+ of 16 sweeps; "
                        rf"each sweep probed is kept in {re.escape(str(estimates))}\n", err)
    # the first sweep's line was read before the signal, and a sweep is kept before its line: the
    # probes that ended are in the file, in the plan's order
    kept = list(json.loads(estimates.read_text())["sweeps"])
    assert kept and kept == list(sweeps.load_plan("smoke")["sweeps"])[:len(kept)]
