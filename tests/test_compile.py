"""The compiled optimizer step (runner.training.compiled): the same training as eager steps, the
decision `compile=auto` makes and its line, the fallback where inductor fails, resume."""

import json
import logging
from pathlib import Path

import pytest
import torch

from conftest import fit_run, make_cfg
from runner.results.summary import member_status
from runner.run import build, run
from runner.training import compiled
from runner.training.callbacks import StopOnSignal

# Not rerun under `make test-numerics`: every compile there would be cold again (inductor keeps a cache per
# kernel set, runner.numerics), minutes of CI for the comparison `make test` already makes.

# One-input regression at Table 4's shapes (5x32 on 101 points), few members, a few hundred steps.
BASE = ["task=polynomial", "task.target=poly_low", "task.n_points=101", "model=mlp_5x32", "ensemble.size=4",
        "optimizer.lr=2e-4", "log_every=25", "checkpoint_every=1000", "progress_every=1000", "logger=none"]
STEPS = 300
ACTIVATIONS = {"relu": ["activation=relu"], "gelu": ["activation=gelu"], "mrepu": ["activation=mrepu"],
               "mish": ["activation=formula", "activation.formula=z*tanh(softplus(z))", "activation.name=mish"]}

# Eager and compiled steps compute the same float32 arithmetic in another order (inductor fuses
# the elementwise passes and sums in its own order), so a step's loss and gradient differ by a few
# float32 roundings (2^-24 = 6e-8 each) of sums over 101 points and 5 layers: ~1e-7 relative, and
# so does Adam's update (its ratio m/sqrt(v) keeps relative errors relative). At this learning rate
# the descent does not amplify a difference, so after T = 300 steps the losses still differ by a few
# 1e-7 (measured: at most 3e-7); RTOL = 1e-5 leaves a 30x margin. A wrong gradient, a missed update
# or a stale Adam state moves them by 1e-3 or more within a few steps. At Table 4's lr 5e-3 the
# runs are chaotic: two eager runs whose sums differ in one rounding separate after ~50 steps (the
# ReLU kinks a point crosses one step earlier or later), so a test there would measure the dynamics.
RTOL = 1e-5


def train(tmp_path: Path, name: str, *overrides: str, steps: int = STEPS):
    with StopOnSignal() as stop:
        module, _ = fit_run(build(make_cfg(*BASE, f"trainer.max_epochs={steps}", *overrides)), tmp_path / name, stop)
    return module


def fates(module) -> list[str]:
    return member_status(module.member_loss, module.initial_loss, module.zero_output_loss, 1000)


@pytest.mark.slow
@pytest.mark.parametrize("activation", list(ACTIVATIONS))
def test_compiled_steps_train_as_eager_steps(tmp_path, activation):
    eager = train(tmp_path, "eager", *ACTIVATIONS[activation], "compile=false")
    fast = train(tmp_path, "compiled", *ACTIVATIONS[activation], "compile=true")
    record = fast.compile_record()
    if record.get("failed"):
        pytest.skip(f"inductor cannot build the step on this machine ({record['failed']})")
    assert record["compiled"] and record["from_epoch"] == 1 and eager.compile_record()["compiled"] is False
    assert fast.trainer.global_step == eager.trainer.global_step == STEPS
    assert fast.logged_epochs == eager.logged_epochs
    torch.testing.assert_close(fast.initial_loss, eager.initial_loss, rtol=0, atol=0)  # the same weights
    torch.testing.assert_close(torch.tensor(fast.logged_losses), torch.tensor(eager.logged_losses),
                               rtol=RTOL, atol=1e-7)
    torch.testing.assert_close(fast.member_loss, eager.member_loss, rtol=RTOL, atol=1e-7)
    # the losses moved (so the comparison says something) and Adam's state is where eager leaves it
    assert (eager.member_loss < 0.7 * eager.initial_loss.float()).all()
    state_c, state_e = (m.optimizers().optimizer.state for m in (fast, eager))
    for p_c, p_e in zip(fast.model.parameters(), eager.model.parameters()):
        assert float(state_c[p_c]["step"]) == float(state_e[p_e]["step"]) == STEPS
    assert fates(fast) == fates(eager)


def test_compiled_run_resumes_to_the_uninterrupted_result(tmp_path):
    whole = train(tmp_path, "whole", "activation=mrepu", "compile=true", "checkpoint_every=100")
    if whole.compile_record().get("failed"):
        pytest.skip("inductor cannot build the step on this machine")
    ckpt = tmp_path / "whole" / "checkpoints" / "previous.ckpt"  # epoch 200: the one before the last
    assert torch.load(ckpt, weights_only=False)["global_step"] == 200
    resumed_dir = tmp_path / "resumed"
    with StopOnSignal() as stop:
        cfg = make_cfg(*BASE, f"trainer.max_epochs={STEPS}", "activation=mrepu", "compile=true")
        resumed, _ = fit_run(build(cfg), resumed_dir, stop, ckpt_path=ckpt, resume_step=200)
    assert resumed.compile_record()["from_epoch"] == 200  # not a fresh run: its first step compiled too
    torch.testing.assert_close(resumed.member_loss, whole.member_loss, rtol=1e-6, atol=0)


def test_inductor_failure_goes_on_eagerly_with_one_warning(tmp_path, monkeypatch, caplog):
    def backend(graph, example_inputs):  # as inductor where its C++ code does not build
        raise RuntimeError("C++ compile error")

    real_compile = torch.compile
    monkeypatch.setattr(compiled.torch, "compile", lambda fn, **kwargs: real_compile(fn, backend=backend))
    eager = train(tmp_path, "eager", "activation=relu", "compile=false")
    with caplog.at_level(logging.WARNING, logger="runner"):
        fallback = train(tmp_path, "fallback", "activation=relu", "compile=true")
    warnings = [r for r in caplog.records if "torch.compile of the training step failed" in r.getMessage()]
    assert len(warnings) == 1
    assert fallback.compile_record()["compiled"] is False and fallback.compile_record()["failed"]
    torch.testing.assert_close(fallback.member_loss, eager.member_loss, rtol=0, atol=0)  # eager after all


def test_auto_keeps_a_short_run_eager_without_reading_the_record(tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(compiled, "read_record", lambda key: pytest.fail("a short run read the record"))
    with caplog.at_level(logging.INFO, logger="runner"):
        # 30 epochs: eager at first, 9 timed, then 21 left, too few to save 10 s unless a step took 0.5 s
        module = train(tmp_path, "auto", "activation=mrepu", "compile=auto", steps=30)
    record = module.compile_record()
    assert record["compiled"] is False and record["source"] == "bound"
    assert record["epochs_left"] == 30 - 1 - compiled.PROBE_STEPS
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("compile=")]
    assert len(lines) == 1 and "eager steps" in lines[0] and "ms" in lines[0]


def test_auto_plan_compiles_where_the_saving_repays_the_compile(monkeypatch):
    monkeypatch.setattr(compiled, "read_record", lambda key: {"ratio": 0.5, "compile_s": 10.0})
    long = compiled.plan(4e-3, 12_000, "key")  # saves 24 s > 10 s compile + MIN_SAVING_S
    assert long["compile"] and long["source"] == "record" and long["saving_s"] == pytest.approx(24.0)
    assert not compiled.plan(4e-3, 9_000, "key")["compile"]  # 18 s <= 20 s
    monkeypatch.setattr(compiled, "read_record", lambda key: None)
    prior = compiled.plan(0.5, 1000, "key")  # Table 3's size: 500 ms steps
    assert prior["compile"] and prior["source"] == "prior" and prior["ratio"] == compiled.PRIOR_RATIO


def test_the_pinn_stays_eager_with_its_reason(tmp_path, caplog):
    with caplog.at_level(logging.INFO, logger="runner"):
        summary = run(make_cfg("task=burgers", "task.n_collocation=50", "task.n_boundary=20", "model=mlp_3x64",
                               "ensemble.size=2", "trainer.max_epochs=3", "compile=true", "logger=none"), tmp_path)
    assert summary["compile"]["compiled"] is False
    assert "derivatives with respect to its inputs" in summary["compile"]["line"]
    assert json.loads((tmp_path / "summary.json").read_text())["compile"] == summary["compile"]
    assert sum(r.getMessage().startswith("compile=true: eager steps") for r in caplog.records) == 1


def test_a_bad_compile_value_fails_in_one_line():
    with pytest.raises(Exception, match=r"compile='sometimes' is invalid: must be auto, true or false"):
        build(make_cfg("compile=sometimes"))
