"""What the trackers get when a run ends (runner.trackers.reports), read back from their own files: the
offline W&B record (tests/wandb_record.py) and TensorBoard's event files, compared with the run's
summary.json; a sweep's summary run; and the time left on the progress lines."""

import csv
import hashlib
import json
import logging
import math
from types import SimpleNamespace

import pytest
import torch

from conftest import fit_run, make_cfg, run_cli
import factories
from runner.trackers import reports
from runner.aggregate import main as aggregate_main
from runner.training.callbacks import EpochBar, ProgressPrinter, StopOnSignal
from runner.results.summary import member_stats
from runner.run import build, run
from wandb_record import offline_runs

SMALL = ["trainer=cpu", "trainer.max_epochs=30", "log_every=10", "ensemble.size=3", "task.n_eval=51", "threads=1",
         "progress_every=1000"]
REL = 1e-12  # float64 values through JSON on both sides


def metrics_csv(run_dir) -> list[dict]:
    with (run_dir / "metrics.csv").open() as f:
        return [r for r in csv.DictReader(f) if r.get("train/loss/mean")]


def test_offline_wandb_record_holds_the_summary(tmp_path, wandb_offline):
    run_dir = tmp_path / "run"
    res = run_cli("logger=wandb", "logger.wandb.mode=offline", "activation=tanh", *SMALL,
                  f"hydra.run.dir={run_dir}", cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-2000:]
    summary = json.loads((run_dir / "summary.json").read_text())
    (record,) = offline_runs(run_dir)
    s = record.summary

    assert s["status"] == summary["status"] == "completed" and "status:completed" in record.tags
    assert s["duration_s"] == summary["duration_s"]
    assert record.group == summary["group"] and record.name == summary["name"]
    assert (s["members/ok"], s["members/blown_up"], s["members/diverged"]) == (3, 0, 0)
    assert len(summary["metrics"]) > 5
    for name, stats in summary["metrics"].items():
        for stat in ("mean", "median", "min", "max"):
            assert s[f"final/{name}/{stat}"] == pytest.approx(stats[stat], rel=REL), (name, stat)

    init = summary["resolved_init"]
    assert summary["init"]["C_W"] == "auto" and isinstance(init["C_W"], float)  # as written; resolved before training
    for key in ("C_W_first", "C_W", "C_b"):
        assert s[f"resolved_init/{key}"] == record.config["resolved_init"][key] == init[key]
    assert record.config["resolved_init"]["scheme"] == "critical"
    forecast = summary["init_forecast"]
    assert s["forecast/verdict"] == record.config["forecast"]["verdict"] == forecast["verdict"]
    assert s["forecast/leaves_at"] == record.config["forecast"]["leaves_at"] == forecast["leaves_at"]
    # the float kernels that produced the numbers (runner.numerics), in the run's config
    assert record.config["numerics"] == summary["numerics"]
    assert summary["numerics"]["cpu_capability"] and summary["numerics"]["dtype"] == "float32"

    # training rows: the summary of a loss is its minimum, with the last value beside it
    rows = metrics_csv(run_dir)
    for key in ("train/loss/mean", "train/loss/min"):
        values = [float(r[key]) for r in rows]
        assert s[key] == {"min": pytest.approx(min(values), rel=REL), "last": pytest.approx(values[-1], rel=REL)}

    table = json.loads((record.files_dir / s["member_values"]["path"]).read_text())
    assert s["member_values"]["_type"] == "table-file"
    assert table["columns"][:2] == ["member", "status"]
    assert len(table["data"]) == 3
    for k, row in enumerate(table["data"]):
        values = dict(zip(table["columns"], row))
        assert values["member"] == k and values["status"] == summary["member_status"][k]
        for name, stats in summary["metrics"].items():
            assert values[name] == pytest.approx(stats["members"][k], rel=REL), name

    pngs = sorted((run_dir / "plots").glob("*.png"))
    assert pngs
    for png in pngs:
        image = s[f"plots/{png.stem}"]
        assert image["_type"] == "image-file"
        assert image["sha256"] == hashlib.sha256(png.read_bytes()).hexdigest()
        assert (record.files_dir / image["path"]).read_bytes() == png.read_bytes()


def test_diverged_run_is_tagged_and_counted(tmp_path, wandb_offline):
    cfg = make_cfg("logger=wandb", "logger.wandb.mode=offline", "task=x2", "ensemble.size=2", "trainer.max_epochs=40",
                   "optimizer.lr=1e6", "init.C_W=1e6", "progress_every=1000", "log_every=10")
    summary = run(cfg, tmp_path / "run")
    assert summary["status"] == "diverged"
    (record,) = offline_runs(tmp_path / "run")
    assert "status:diverged" in record.tags and record.summary["status"] == "diverged"
    assert (record.summary["members/ok"], record.summary["members/diverged"]) == (0, 2)
    assert record.summary["forecast/verdict"] == summary["init_forecast"]["verdict"] == "explodes"
    assert record.summary["forecast/leaves_at"] == summary["init_forecast"]["leaves_at"] >= 1
    assert summary["metrics"]["final_train_loss"]["mean"] is None
    assert record.summary["final/final_train_loss/mean"] is None


def test_new_fates_and_member_flags_flow_through():
    """Fates and per-member boolean lists that summary.json gains later need no code here."""
    rec = factories.record({"rel_l2": [0.5, None, 0.1]}, status="partly_diverged",
                           fates=["ok", "no_better_than_zero", "ok"], converged=[True, False, True], ensemble_size=3,
                           duration_s=1.5, tags=["task:x2"], config={"ensemble": {"member_offset": 4}},
                           init={"scheme": "pytorch"},
                           resolved_init={"scheme": "pytorch", "C_W_first": 1 / 3, "C_W": 1 / 3, "C_b": 0.01},
                           init_forecast={"verdict": "vanishes", "leaves_at": 3})
    values = reports.final_values(rec)
    assert values["members/no_better_than_zero"] == 1 and values["members/ok"] == 2
    assert values["members/blown_up"] == 0 and values["members/converged"] == 2
    assert values["final/rel_l2/median"] == pytest.approx(0.3) and values["final/rel_l2/max"] == 0.5
    # a framework scheme: the Gaussian-equivalent variances
    assert values["resolved_init/C_W"] == pytest.approx(1 / 3) and values["forecast/leaves_at"] == 3
    columns, rows = reports.member_table(rec)
    assert columns == ["member", "status", "converged", "rel_l2"]
    assert rows == [[4, "ok", True, 0.5], [5, "no_better_than_zero", False, None], [6, "ok", True, 0.1]]


def test_member_stats_median_over_finite_members():
    stats = member_stats([3.0, math.nan, 1.0, 10.0, math.inf])
    assert stats["median"] == 3.0 and stats["mean"] == pytest.approx(14 / 3) and stats["n_finite"] == 3
    assert member_stats([math.nan])["median"] is None


def test_a_tracker_error_is_one_warning_and_the_run_goes_on(tmp_path, wandb_offline, monkeypatch, caplog):
    def broken(rec):
        raise RuntimeError("simulated tracker failure\nsecond line")

    monkeypatch.setattr(reports, "member_table", broken)
    cfg = make_cfg("logger=wandb", "logger.wandb.mode=offline", "task=x2", "ensemble.size=2", "trainer.max_epochs=5",
                   "progress_every=1000")
    with caplog.at_level(logging.WARNING, logger="runner"):
        summary = run(cfg, tmp_path / "run")
    assert summary["status"] == "completed"
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["status"] == "completed"
    warnings = [r.getMessage() for r in caplog.records if "did not get the run's summary" in r.getMessage()]
    assert len(warnings) == 1 and "simulated tracker failure" in warnings[0] and "\n" not in warnings[0]
    import wandb

    assert wandb.run is None  # finished all the same: the next run in this process gets its own


def test_tensorboard_hparams_hold_the_final_metrics(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams import plugin_data_pb2

    cfg = make_cfg("logger=tensorboard", "task=x2", "activation=tanh", *SMALL[1:])
    summary = run(cfg, tmp_path / "run")
    events = EventAccumulator(str(tmp_path / "run" / "tensorboard"), size_guidance={"scalars": 0})
    events.Reload()
    content = events.PluginTagToContent("hparams")
    start = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/session_start_info"])
    hparams = start.session_start_info.hparams
    assert hparams["activation/name"].string_value == "tanh"
    assert hparams["status"].string_value == "completed"
    assert hparams["forecast/verdict"].string_value == summary["init_forecast"]["verdict"]
    for key in ("C_W_first", "C_W", "C_b"):
        assert hparams[f"resolved_init/{key}"].number_value == pytest.approx(summary["resolved_init"][key], rel=REL)
    experiment = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/experiment"]).experiment
    tags = {m.name.tag for m in experiment.metric_infos}
    assert {"members/ok", "duration_s"} <= tags
    for name, stats in summary["metrics"].items():
        for stat in ("mean", "median", "min", "max"):
            assert f"final/{name}/{stat}" in tags
            (scalar,) = events.Scalars(f"final/{name}/{stat}")
            assert scalar.value == pytest.approx(stats[stat], rel=1e-6)  # event files hold float32


def test_sweep_leaves_one_summary_run_with_the_aggregate_table(tmp_path, wandb_offline):
    sweep = tmp_path / "sweep"
    res = run_cli("-m", "logger=wandb", "logger.wandb.mode=offline", "activation=relu,tanh", *SMALL,
                  f"hydra.sweep.dir={sweep}", cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-2000:]
    jobs = offline_runs(sweep / "0") + offline_runs(sweep / "1")
    assert [j.name for j in jobs] == ["x2-relu-s0", "x2-tanh-s0"]  # one W&B run per job
    assert {j.group for j in jobs} == {"sweep"}

    assert aggregate_main([str(sweep), "--wandb", "--metric", "test_mse", "--extra", "extrap_mse"]) == 0
    (summary_run,) = offline_runs(sweep / "wandb")
    assert summary_run.group == "sweep" and summary_run.job_type == "aggregate"
    assert summary_run.summary["jobs/completed"] == 2
    table = json.loads((summary_run.files_dir / summary_run.summary["aggregate/test_mse"]["path"]).read_text())
    with (sweep / "table.csv").open() as f:
        header, *rows = list(csv.reader(f))
    assert table["columns"] == header
    assert [r[0] for r in table["data"]] == [r[0] for r in rows] == ["relu", "tanh"]
    for got, want in zip(table["data"], rows):
        assert got[1:] == pytest.approx([float(v) for v in want[1:]], rel=1e-6)  # table.csv: 7 digits
    assert "aggregate/extrap_mse" in summary_run.summary
    assert summary_run.summary["plots/loss_curves"]["sha256"] == hashlib.sha256(
        (sweep / "plots" / "loss_curves.png").read_bytes()).hexdigest()


def test_time_left_from_this_process_rate(caplog):
    """A run resumed at epoch 1000 of 2000: the first chunk is 3 epochs (setup and first steps
    stay out of the rate), then 1 s per epoch gives 500 s left at epoch 1500."""
    now = [100.0]
    printer = ProgressPrinter(every=100, warmup=3, clock=lambda: now[0])
    assert printer.next_due(1000) == 1003
    trainer = SimpleNamespace(global_step=1003, max_epochs=2000)
    module = SimpleNamespace(member_loss=torch.tensor([1.0, 2.0]))
    now[0] = 160.0  # a slow first chunk: not in the rate
    printer.on_train_epoch_end(trainer, module)
    assert printer.next_due(1003) == 1100
    with caplog.at_level(logging.INFO, logger="runner"):
        for epoch in (1100, 1500, 2000):
            trainer.global_step, now[0] = epoch, 160.0 + (epoch - 1003)
            printer.on_train_epoch_end(trainer, module)
    lines = [r.getMessage() for r in caplog.records]
    assert lines[0].startswith("epoch 1100/2000") and lines[0].endswith(", ~15m00s left")
    assert lines[1].startswith("epoch 1500/2000") and lines[1].endswith("557.0s, ~8m20s left")
    assert lines[2].startswith("epoch 2000/2000") and "left" not in lines[2]


def test_progress_bar_counts_epochs(tmp_path, capsys):
    """progress=bar: one bar over the run's epochs (not Lightning's chunks), with the loss."""
    cfg = make_cfg("task=x2", "ensemble.size=2", "trainer.max_epochs=60", "progress_every=20", "logger=none", "threads=1",
                   "progress=bar")
    with StopOnSignal() as stop:
        _, trainer = fit_run(build(cfg), tmp_path, stop)
    assert any(isinstance(c, EpochBar) for c in trainer.callbacks)
    assert not any(isinstance(c, ProgressPrinter) for c in trainer.callbacks)
    out = capsys.readouterr()
    text = out.out + out.err
    assert "epochs: 100%" in text and "60/60" in text and "loss=" in text
