"""summary.json as a type (runner.results.record.RunRecord): every summary committed under reports/
loads and writes back the same, old ones included; a record writes only what a run reached."""

import json

from conftest import ROOT
from runner.results.record import RunRecord

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
