"""summary.json as a type (runner.results.record.RunRecord): every summary committed under reports/
loads and writes back the same, old ones included; a record writes only what a run reached; and
the reading rules (status by today's rule, member fates, which members count) read it."""

import json
import re

import pytest

from conftest import ROOT
from factories import job, record, write_run
from runner.results.jobs import collect
from runner.results.record import MISSING, RunRecord

COMMITTED = sorted((ROOT / "reports").rglob("summary.json"))


def test_every_committed_summary_round_trips():
    assert len(COMMITTED) > 200  # reports/medium, its AVX2 rerun, reports/smoke
    for path in COMMITTED:
        data = json.loads(path.read_text())
        rec = RunRecord.from_json(data)
        assert rec.to_json() == data and list(rec.to_json()) == list(data), path  # the same keys, in order
        assert rec.extra == {}, (path, rec.extra)  # every key of the runner's summaries is a field


def test_unknown_keys_are_kept_and_absent_ones_stay_absent(tmp_path):
    data = {"status": "completed", "metrics": {}, "written_by_a_later_runner": [1, 2]}
    rec = RunRecord.from_json(data)
    assert rec.extra == {"written_by_a_later_runner": [1, 2]} and rec.to_json() == data
    rec.write(tmp_path)
    assert RunRecord.read(tmp_path) == rec and RunRecord.read(tmp_path / "nothing") is None


def test_a_record_writes_what_the_run_reached():
    """A config error before the run: three keys; a run off SLURM records its host and a null job id;
    an interrupted run its signal and epoch."""
    failed = RunRecord("failed", overrides=["task=nope"], error="ConfigError: task: no such option")
    assert failed.to_json() == {"status": "failed", "overrides": ["task=nope"],
                                "error": "ConfigError: task: no such option"}
    assert RunRecord("running", host="vm").to_json() == {"status": "running", "host": "vm", "slurm_job_id": None}
    assert RunRecord("interrupted", signal="SIGTERM", epoch=None).to_json() == {
        "status": "interrupted", "signal": "SIGTERM", "epoch": None}


@pytest.mark.parametrize("fates,metric,want", [
    (["ok", "blown_up", "no_better_than_zero"], "train_mse", ["ok", "blown_up", "no_better_than_zero"]),
    (None, "train_mse", ["ok", "diverged", "ok"]),             # no fates recorded: finite is ok
    (["ok", "ok", "ok"], "agreement", ["ok"]),                  # a metric of the whole run
])
def test_one_rule_of_member_fates(fates, metric, want):
    rec = record({"train_mse": [0.1, None, 0.3], "agreement": [0.9]}, fates=fates)
    assert rec.fates(metric) == want and job(rec).fates(metric) == want
    values = rec.values(metric)
    assert rec.members(metric) == [v if f == "ok" else None for v, f in zip(values, want)]


def test_convergence_not_recorded_is_undecided():
    rec = record({"train_mse": [0.1, 0.2]}, converged=[True])
    assert rec.converged(2) == [True, False] and rec.improvement(2) == [None, None]


def test_the_init_as_numbers_also_from_summaries_before_resolved_init():
    numbers = {"scheme": "critical", "C_W_first": 1.0, "C_W": 2.0, "C_b": 0.0}
    assert record(resolved_init=numbers, init={"C_W": "auto"}).used_init() == numbers
    assert record(init={"_target_": "x", "C_W": 2.0, "C_b": 0.0}).used_init()["C_W"] == 2.0
    assert record(init={"C_W": "auto"}).used_init() is None  # failed before it was resolved


def test_a_run_directory_without_a_summary_is_missing(tmp_path):
    write_run(tmp_path / "0", None, ["activation=relu"])
    (missing,) = collect([tmp_path])
    assert missing.status == MISSING and missing.value("activation") == "relu" and missing.members("x") == []


def test_the_reading_example_of_docs_extending_runs(tmp_path):
    doc = (ROOT / "docs" / "extending.md").read_text()
    (code,) = re.findall(r"```python\n(from runner.results.jobs import collect\n.*?)```", doc, flags=re.S)
    numbers = {"scheme": "critical", "C_W_first": 1.0, "C_W": 2.0, "C_b": 0.0}
    write_run(tmp_path / "0", record({"test_mse": [0.1, 5.0]}, fates=["ok", "blown_up"],
                                     config={"model": {"depth": 3}}, resolved_init=numbers))
    names = {}
    exec(code.replace("outputs/multirun/2026-12-05_10-00-00", str(tmp_path)), names)
    assert names["values"] == [0.1, None] and names["fates"] == ["ok", "blown_up"]
    assert names["depth"] == 3 and names["init"] == numbers
