"""runner.results.load: a real sweep's members as a DataFrame, value for value what summary.json
holds, blown-up and no-better-than-zero members included; and runner.aggregate --export."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import pandas as pd
import pytest

from conftest import ROOT, run_cli
from factories import record, write_run
from runner.results import load


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    """relu and repu at C_W = 4, lr 3e-3 and 1e-12: relu trains (ok), relu at 1e-12 does not move
    (no_better_than_zero where it started above the zero function), repu's kernel explodes (blown_up)."""
    where = tmp_path_factory.mktemp("members")
    res = run_cli("-m", "activation=relu,repu", "init.C_W=4.0", "optimizer.lr=3e-3,1e-12", "task=x2",
                  "ensemble.size=4", "ensemble.member_offset=10", "trainer.max_epochs=30", "log_every=5",
                  "task.n_eval=51", "threads=1", f"hydra.sweep.dir={where / 'sweep'}", cwd=where)
    assert res.returncode == 0, res.stderr[-2000:]
    return where / "sweep"


def test_every_value_is_the_summarys(sweep):
    df = load(sweep)
    summaries = {str(p.parent): json.loads(p.read_text()) for p in sweep.glob("*/summary.json")}
    assert len(summaries) == 4 and len(df) == 16
    assert {"blown_up", "no_better_than_zero", "ok"} <= set(df.fate)
    for path, s in summaries.items():
        rows = df[df.path == path].sort_values("member")
        assert list(rows.member) == [10, 11, 12, 13]  # the members' weight streams (member_offset + k)
        assert list(rows.fate) == s["member_status"] and list(rows.converged) == s["member_converged"]
        assert list(rows.counted) == [f == "ok" for f in s["member_status"]]
        # decided: converged or failed, the convergence gate of every comparison (aggregate --vs, claims)
        assert list(rows.decided) == [c or f != "ok" for c, f in zip(s["member_converged"], s["member_status"])]
        assert set(rows.status) == {s["status"]} and set(rows.activation) == {s["activation"]}
        assert set(rows.task) == {"x2"} and set(rows.seed) == {0}
        assert set(rows["optimizer.lr"]) == {dict(o.split("=") for o in s["overrides"])["optimizer.lr"]}
        for key in ("C_W_first", "C_W", "C_b"):
            assert set(rows[key]) == {s["resolved_init"][key]}
        for name, stats in s["metrics"].items():
            for got, want in zip(rows[name], stats["members"]):
                assert (math.isnan(got) and want is None) or got == want, (name, got, want)


def test_a_report_folder_of_sweeps_loads_whole(sweep, tmp_path):
    runs = tmp_path / "runs"
    runs.mkdir()
    (runs / "a").symlink_to(sweep)
    (runs / "b").symlink_to(sweep)
    assert len(load(runs)) == 32 and len(load(sweep / "0")) == 4  # a folder of sweeps; one run


@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
def test_export_writes_the_same_table(sweep, tmp_path, suffix):
    out = tmp_path / f"members{suffix}"
    res = subprocess.run([sys.executable, "-m", "runner.aggregate", str(sweep), "--export", str(out)], cwd=ROOT,
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    want = load(sweep)
    if suffix == ".parquet":
        pd.testing.assert_frame_equal(pd.read_parquet(out), want)
    else:  # CSV keeps text: compare as the text of each value, empty where there is none
        read = pd.read_csv(out, dtype=str, keep_default_na=False)
        assert (read == want.astype(object).where(want.notna(), "").astype(str)).all().all()


def test_an_export_of_nothing_is_one_line(tmp_path):
    res = subprocess.run([sys.executable, "-m", "runner.aggregate", str(tmp_path), "--export", "m.parquet"], cwd=tmp_path,
                         capture_output=True, text=True)
    assert res.returncode == 2 and res.stderr.strip() == f"runner.aggregate: error: no run under {tmp_path}"


def test_the_pairs_a_comparison_keeps_are_those_load_calls_decided(tmp_path):
    """One meaning of counted and decided: aggregate --vs keeps exactly the pairs that load() marks
    decided on both sides (no pair here is settled otherwise: the values are close)."""
    from runner.aggregate import versus
    from runner.results.jobs import collect

    sweep = tmp_path / "sweep"
    converged = {"relu": [True, True, False, True, True, True], "tanh": [True, False, True, True, True, True]}
    for num, act in enumerate(("relu", "tanh")):
        values = [1.0 + 0.01 * k + (0.001 if act == "tanh" else 0) for k in range(6)]
        rec = record({"test_mse": values}, fates=["ok"] * 6, converged=converged[act], improvement=[0.5] * 6,
                     activation=act, seed=0, config={"activation": {"name": act}, "task": {"name": "x2"}})
        write_run(sweep / str(num), rec, [f"activation={act}"])
    df = load(sweep)
    both = (df[df.activation == "relu"].decided.to_numpy() & df[df.activation == "tanh"].decided.to_numpy())
    assert df.counted.all() and both.sum() == 4
    versus(collect([sweep]), "relu", ["test_mse"], "task.name", sweep)
    table = (sweep / "vs_relu.md").read_text()
    row = next(line for line in table.splitlines() if line.startswith("| x2: tanh < relu |"))
    assert row.split(" | ")[1].split()[0] == "4" and "(2 pairs dropped)" in row, row
