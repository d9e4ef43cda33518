"""Chunked training steps: many optimizer steps per Lightning step, and nothing else
changes. The reference trains with one Lightning step per epoch
(`benchmarks/per_epoch.py`, also the baseline of benchmarks/bench_ensemble.py)."""

from pathlib import Path

import pytest
import torch

from runner.training.callbacks import StopOnSignal

from benchmarks.per_epoch import per_epoch_path
from conftest import fit_run, make_cfg
from runner.run import build

pytestmark = pytest.mark.numerics  # compares numbers with references or across code paths


def train_both(tmp_path: Path, *overrides: str):
    """(module, run dir) trained through the chunked path, then through the per-epoch reference."""
    out = []
    for name in ("chunked", "per_epoch"):
        cfg = make_cfg("logger=csv", *overrides)
        run_dir = tmp_path / name
        with StopOnSignal() as stop:
            if name == "per_epoch":
                with per_epoch_path():
                    module, _ = fit_run(build(cfg), run_dir, stop)
            else:
                module, _ = fit_run(build(cfg), run_dir, stop)
        out.append((module, run_dir))
    return out


PRESETS = {  # Paper A (with and without its spectral-norm penalty) and Table 4, at test size
    "tsvetkova_x2": ["experiment=tsvetkova_x2", "activation=tanh", "ensemble.size=3"],
    "tsvetkova_sn": ["experiment=tsvetkova_sn", "activation=relu", "regularizer.coef=1e-3", "ensemble.size=3"],
    "kimkang_table4": ["experiment=kimkang_table4", "kimkang=poly_low", "activation=relu", "ensemble.size=3",
                       "task.compile=false", "task.n_points=101"],
}


@pytest.mark.parametrize("preset", list(PRESETS))
def test_same_seed_same_final_losses_and_rows_as_one_step_per_epoch(tmp_path, preset):
    (chunked, new_dir), (reference, old_dir) = train_both(
        tmp_path, *PRESETS[preset], "trainer.max_epochs=130", "log_every=20", "checkpoint_every=50",
        "progress_every=40")
    assert chunked.trainer.global_step == reference.trainer.global_step == 130
    torch.testing.assert_close(chunked.member_loss, reference.member_loss, rtol=1e-6, atol=0)
    torch.testing.assert_close(chunked.initial_loss, reference.initial_loss, rtol=1e-6, atol=0)
    new_rows = (new_dir / "metrics.csv").read_text().splitlines()
    old_rows = (old_dir / "metrics.csv").read_text().splitlines()
    assert [r.split(",")[:2] for r in new_rows] == [r.split(",")[:2] for r in old_rows]  # epoch, step
    assert [int(r.split(",")[0]) for r in new_rows[1:]] == [0, 20, 40, 60, 80, 100, 120, 129]
    new_values = torch.tensor([[float(v) for v in r.split(",")[2:]] for r in new_rows[1:]])
    old_values = torch.tensor([[float(v) for v in r.split(",")[2:]] for r in old_rows[1:]])
    torch.testing.assert_close(new_values, old_values, rtol=1e-6, atol=1e-12)


def test_chunks_end_where_callbacks_are_due(tmp_path, caplog):
    """Checkpoints at every checkpoint_every and the end, progress lines at every progress_every
    (with the time left, but at the end), and a Lightning step that holds many epochs in between."""
    cfg = make_cfg("task=x2", "ensemble.size=2", "trainer.max_epochs=110", "checkpoint_every=50",
                   "progress_every=30", "log_every=1000", "logger=none")
    saved, chunk_starts = [], []
    from runner.training import callbacks as callbacks_lib, module as module_lib

    original_save, original_step = callbacks_lib.LastCheckpoint.save, module_lib.EnsembleModule.training_step

    def spy_save(self, trainer):
        saved.append(trainer.global_step)
        original_save(self, trainer)

    def spy_step(self, batch, batch_idx):
        chunk_starts.append(self.global_step)
        return original_step(self, batch, batch_idx)

    callbacks_lib.LastCheckpoint.save, module_lib.EnsembleModule.training_step = spy_save, spy_step
    try:
        with StopOnSignal() as stop, caplog.at_level("INFO", logger="runner"):
            fit_run(build(cfg), tmp_path, stop)
    finally:
        callbacks_lib.LastCheckpoint.save, module_lib.EnsembleModule.training_step = original_save, original_step
    assert saved == [50, 100, 110]
    # ends at 3 (ProgressPrinter's short first chunk: its rate is measured from there), 30, 50, 60, 90, 100, 110
    assert chunk_starts == [0, 3, 30, 50, 60, 90, 100]
    progress = [r.getMessage().split()[1] for r in caplog.records if r.getMessage().startswith("epoch ")]
    assert progress == ["30/110", "60/110", "90/110", "110/110"]
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("epoch ")]
    assert all(line.endswith(" left") for line in lines[:-1]) and "left" not in lines[-1]


def test_an_all_nan_ensemble_stops_inside_a_chunk(tmp_path):
    """Divergence ends the chunk at the step it happens, and the run there."""
    cfg = make_cfg("task=x2", "ensemble.size=2", "trainer.max_epochs=400", "checkpoint_every=400",
                   "progress_every=400", "optimizer.lr=1e6", "init.C_W=1e6", "logger=none")
    with StopOnSignal() as stop:
        module, _ = fit_run(build(cfg), tmp_path, stop)
    assert not torch.isfinite(module.member_loss).any()
    assert 0 < module.trainer.global_step < 400


def test_adam_then_lbfgs_ends_where_it_did(tmp_path):
    """Paper B's Raissi preset (Adam, then L-BFGS calls with line searches in float64): the same
    final losses. Its metrics rows now hold each epoch's first evaluation (the model before the
    update, as for Adam), where Lightning's logging kept the line search's last."""
    (chunked, _), (reference, _) = train_both(
        tmp_path, "experiment=raissi_burgers", "task.n_collocation=200", "task.n_boundary=50",
        "optimizer.adam_steps=10", "optimizer.lbfgs_max_iter=10", "trainer.max_epochs=14", "log_every=5")
    assert chunked.trainer.global_step == reference.trainer.global_step == 14
    torch.testing.assert_close(chunked.member_loss, reference.member_loss, rtol=1e-9, atol=0)


def test_a_checkpoint_from_one_step_per_epoch_resumes_to_the_uninterrupted_result(tmp_path):
    """A run checkpointed before chunked steps (at epoch 30) continues with them to epoch 60 and
    ends where an uninterrupted run ends (float64)."""
    common = ["task=x2", "ensemble.size=2", "trainer.precision=64-true", "logger=none", "progress_every=1000"]

    def fit(run_dir, epochs, ckpt=None, per_epoch=False):
        cfg = make_cfg(*common, f"trainer.max_epochs={epochs}", "checkpoint_every=30")
        with StopOnSignal() as stop:
            if per_epoch:
                with per_epoch_path():
                    return fit_run(build(cfg), run_dir, stop)[0]
            return fit_run(build(cfg), run_dir, stop, ckpt, 30 if ckpt else None)[0]

    uninterrupted = fit(tmp_path / "straight", 60)
    fit(tmp_path / "old", 30, per_epoch=True)
    resumed = fit(tmp_path / "old", 60, ckpt=tmp_path / "old" / "checkpoints" / "last.ckpt")
    assert resumed.trainer.global_step == 60
    torch.testing.assert_close(resumed.member_loss, uninterrupted.member_loss, rtol=1e-9, atol=0)
