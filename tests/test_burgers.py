"""Burgers PINN (the Burgers preset of task=pde): the exact solution against the published data and
the PDE, the same losses as the Burgers task had, training that works for tanh and fails for ReLU,
ensembles equal separate runs, the sweep plot, bad input."""

import csv
import json
import math

import numpy as np
import pytest

from conftest import make_cfg, run_cli
from runner.config import ConfigError, validate
from runner.run import build_task, run
from runner.run import build_model
from runner.tasks.burgers import PUBLISHED_DATA, PUBLISHED_NU, exact_solution, load_reference, resolve_path


def data_file():
    """The published data set (../shared/data from the repository)."""
    path = resolve_path(PUBLISHED_DATA)
    if not path.exists():
        pytest.skip(f"reference data not found at {path}")
    return path


@pytest.mark.parametrize("name", ["burgers_shock.mat", "Burgers.npz"])
def test_exact_solution_matches_published_data(name):
    path = data_file().with_name(name)
    if not path.exists():
        pytest.skip(f"{path} not found")
    x, t, usol = load_reference(path)
    assert usol.shape == (256, 100) and t[-1] == pytest.approx(0.99)
    u = exact_solution(x[:, None], t[None, :], PUBLISHED_NU)
    # measured: 2.9e-12 relative, 4.2e-11 absolute (the data file's own precision)
    assert np.linalg.norm(u - usol) / np.linalg.norm(usol) < 1e-10
    assert np.abs(u - usol).max() < 1e-9


def test_exact_solution_satisfies_pde_and_conditions():
    nu, h = PUBLISHED_NU, 1e-4
    x = np.concatenate([np.linspace(-0.9, -0.3, 31), np.linspace(0.3, 0.9, 31)])[:, None]
    t = np.linspace(0.1, 0.9, 17)[None, :]
    u = exact_solution(x, t, nu)
    u_t = (exact_solution(x, t + h, nu) - exact_solution(x, t - h, nu)) / (2 * h)
    u_xp, u_xm = exact_solution(x + h, t, nu), exact_solution(x - h, t, nu)
    u_x, u_xx = (u_xp - u_xm) / (2 * h), (u_xp - 2 * u + u_xm) / h**2
    residual = u_t + u * u_x - nu * u_xx
    # away from the shock at x = 0 the terms are O(1); central differences leave ~1e-7
    assert np.abs(u_t).max() > 0.5
    assert np.abs(residual).max() < 1e-5
    xs = np.linspace(-1, 1, 201)
    np.testing.assert_allclose(exact_solution(xs, 0.0, nu), -np.sin(np.pi * xs), atol=1e-14)
    ts = np.linspace(0, 1, 51)
    assert np.abs(exact_solution(-1.0, ts, nu)).max() < 1e-12
    assert np.abs(exact_solution(1.0, ts, nu)).max() < 1e-12


def test_reference_grid_is_the_published_one():
    x, t, usol = load_reference(data_file())
    task = build_task(make_cfg("task=burgers", "task.n_collocation=10"))
    assert task.variables == ("x", "t") and math.isclose(task.params["nu"], PUBLISHED_NU)
    np.testing.assert_allclose(task.axes[0], x, atol=1e-15)
    np.testing.assert_allclose(task.axes[1], t, atol=1e-15)
    assert np.abs(task.u_ref - usol).max() < 1e-9


# Losses and metrics of the Burgers task before it became a preset of task=pde (commit c5520fc),
# task=burgers activation=tanh model=mlp_3x64 n_collocation=200 n_boundary=40 ensemble.size=2 seed=3:
# at initialization (loss terms) and after 5 Adam epochs, per member, float32 and float64.
BEFORE = {
    "32-true": {"pde": [0.5848361253738403, 0.2273271530866623], "initial": [0.4169856607913971, 0.5039409399032593],
                "boundary": [0.07405005395412445, 0.010742854326963425],
                "final_train_loss": [0.44819846749305725, 0.3965442180633545],
                "rel_l2": [0.8501210996780106, 0.8816879245281385]},
    "64-true": {"pde": [0.5848359952031646, 0.22732712906372698], "initial": [0.41698564833756163, 0.5039408969917314],
                "boundary": [0.0740500440504054, 0.010742853206626195],
                "final_train_loss": [0.4481985577880013, 0.3965442084843356],
                "rel_l2": [0.8501211183226525, 0.8816879385720591]},
}


@pytest.mark.parametrize("precision", ["32-true", "64-true"])
def test_burgers_through_pde_equals_the_burgers_task(precision, tmp_path):
    """Same seed, same points: the loss terms to float tolerance (bitwise, in fact), and the
    trained members' loss and rel_l2 after 5 epochs."""
    common = ["task=burgers", "activation=tanh", "model=mlp_3x64", "task.n_collocation=200", "task.n_boundary=40",
              "ensemble.size=2", "seed=3", "logger=none", f"trainer.precision={precision}"]
    cfg = make_cfg(*common)
    task = build_task(cfg)
    task.loss(build_model(cfg, task), task.train_batch())
    for term in ("pde", "initial", "boundary"):
        np.testing.assert_allclose(task.last_terms[term].tolist(), BEFORE[precision][term], rtol=1e-12)
    summary = run(make_cfg(*common, "trainer.max_epochs=5"), tmp_path)
    for name in ("final_train_loss", "rel_l2"):
        np.testing.assert_allclose(summary["metrics"][name]["members"], BEFORE[precision][name], rtol=1e-12)


# The raissi_burgers preset (tanh, 8x20, Adam then L-BFGS) at toy length: 500 collocation points,
# 50 Adam steps, 12 L-BFGS calls of 20 iterations. Measured: tanh 1.32 -> 0.16, ReLU ~0.63.
SHORT = ["experiment=raissi_burgers", "task.n_collocation=500", "optimizer.adam_steps=50",
         "trainer.max_epochs=62", "optimizer.lbfgs_max_iter=20", "log_every=5", "seed=0"]


@pytest.fixture(scope="module")
def short_runs(tmp_path_factory):
    out = {}
    for act in ("tanh", "relu"):
        run_dir = tmp_path_factory.mktemp(act)
        summary = run(make_cfg(*SHORT, f"activation={act}"), run_dir)
        with open(run_dir / "metrics.csv") as f:
            rows = [r for r in csv.DictReader(f) if r.get("rel_l2/mean")]
        out[act] = summary, rows, run_dir
    return out


def test_short_tanh_run_lowers_rel_l2(short_runs):
    summary, rows, run_dir = short_runs["tanh"]
    assert summary["status"] == "completed"
    first, final = float(rows[0]["rel_l2/mean"]), summary["metrics"]["rel_l2"]["mean"]
    assert first > 0.9 and final < 0.3 * first
    for name in ("loss_pde", "loss_initial", "loss_boundary", "max_abs_error", "final_train_loss"):
        assert name in summary["metrics"]
    for column in ("train/loss_pde/mean", "train/loss_initial/mean", "train/loss_boundary/mean"):
        assert column in rows[0]
    for plot in ("solution.png", "slices.png", "training.png"):
        assert (run_dir / "plots" / plot).stat().st_size > 10_000, plot
    pred = np.load(run_dir / "predictions.npz")
    assert pred["u_pred"].shape == (1, 256, 100) and pred["u_exact"].shape == (256, 100)
    assert float(pred["rel_l2"][0]) == pytest.approx(final, rel=1e-5)


def test_short_relu_run_does_not_reach_tanh(short_runs):
    relu = short_runs["relu"][0]["metrics"]["rel_l2"]["mean"]
    tanh = short_runs["tanh"][0]["metrics"]["rel_l2"]["mean"]
    assert relu > 2 * tanh


def test_blown_up_run_is_diverged_not_failed(tmp_path):
    # MRePU (degree-3 branch) through 8 Glorot-initialized layers overflows float32 at once
    summary = run(make_cfg(*SHORT, "activation=mrepu", "task.n_collocation=100", "trainer.max_epochs=8"),
                  tmp_path)
    assert summary["status"] == "diverged" and summary["metrics"]["rel_l2"]["n_finite"] == 0
    assert (tmp_path / "plots" / "training.png").exists()


def test_ensemble_equals_separate_runs(tmp_path):
    common = ["task=burgers", "activation=gelu", "model=mlp_3x64", "task.n_collocation=100",
              "task.n_boundary=20", "trainer.max_epochs=15", "log_every=5", "logger=none",
              "trainer.precision=64-true", "seed=2"]
    together = run(make_cfg(*common, "ensemble.size=2"), tmp_path / "ens")
    pred_together = np.load(tmp_path / "ens" / "predictions.npz")["u_pred"]
    for k in range(2):
        single = run(make_cfg(*common, "ensemble.size=1", f"ensemble.member_offset={k}"), tmp_path / f"m{k}")
        for name in ("rel_l2", "loss_pde", "final_train_loss"):
            a, b = together["metrics"][name]["members"][k], single["metrics"][name]["members"][0]
            assert a == pytest.approx(b, rel=1e-8), name
        pred = np.load(tmp_path / f"m{k}" / "predictions.npz")["u_pred"][0]
        np.testing.assert_allclose(pred_together[k], pred, rtol=1e-5, atol=1e-6)
    assert together["metrics"]["rel_l2"]["members"][0] != pytest.approx(
        together["metrics"]["rel_l2"]["members"][1], rel=1e-3)


def test_kimkang_sweep_plots_rel_l2_per_activation(tmp_path):
    res = run_cli("-m", "experiment=kimkang_burgers", "activation=tanh,mrepu", "trainer=cpu",
                  "model=mlp_3x64", "task.n_collocation=100", "trainer.max_epochs=5", "ensemble.size=2",
                  "logger=none", f"hydra.sweep.dir={tmp_path / 'sweep'}", cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-2000:]
    sweep = tmp_path / "sweep"
    assert (sweep / "plots" / "rel_l2_by_activation.png").exists()
    table = json.loads((sweep / "rel_l2_by_activation.json").read_text())
    assert set(table) == {"tanh", "mrepu"} and all(len(v) == 2 for v in table.values())
    c_w = {}
    for path in sweep.glob("*/summary.json"):
        summary = json.loads(path.read_text())
        c_w[summary["activation"]] = summary["config"]["init"]["C_W"]
    assert c_w == {"tanh": 1.0, "mrepu": 0.45}


@pytest.mark.parametrize("override,needle", [
    ("task.n_collocation=0", "task.n_collocation=0 is invalid"),
    ("task.sampler=sobol", "task.sampler='sobol' is invalid"),
    ("optimizer=adam_lbfgs optimizer.adam_steps=-1", "optimizer.adam_steps=-1 is invalid"),
    ("optimizer=adam_lbfgs optimizer.lbfgs_max_iter=0", "optimizer.lbfgs_max_iter=0 is invalid"),
])
def test_bad_input_is_one_line(override, needle):
    with pytest.raises(ConfigError, match=needle.replace("[", r"\[").replace("]", r"\]")):
        validate(make_cfg("task=burgers", *override.split()))


def test_adam_lbfgs_switches_phase_and_round_trips():
    import torch

    from runner.optim import AdamLBFGS

    gen = torch.Generator().manual_seed(0)
    a, b = torch.randn(20, 5, generator=gen, dtype=torch.float64), torch.randn(20, generator=gen, dtype=torch.float64)
    w = torch.zeros(5, dtype=torch.float64, requires_grad=True)
    opt = AdamLBFGS([w], lr=1e-2, adam_steps=3, lbfgs_max_iter=20)

    def closure():
        opt.zero_grad()
        loss = (a @ w - b).pow(2).mean()
        loss.backward()
        return loss

    best = torch.linalg.lstsq(a, b.unsqueeze(1)).solution.squeeze(1)
    phases = []
    for _ in range(5):
        phases.append(opt.phase)
        opt.step(closure)
    assert phases == ["adam"] * 3 + ["lbfgs"] * 2
    # a 5-dim least-squares problem: L-BFGS lands on the solution, Adam alone would not in 5 steps
    torch.testing.assert_close(w.detach(), best, rtol=1e-6, atol=1e-8)
    state = opt.state_dict()
    other = AdamLBFGS([w], adam_steps=3)
    other.load_state_dict(state)
    assert other.steps_done == 5 and other.phase == "lbfgs"
    assert other.lbfgs.state_dict()["state"][0]["n_iter"] == opt.lbfgs.state_dict()["state"][0]["n_iter"] > 0
    assert other.last_lbfgs_loss == opt.last_lbfgs_loss is not None  # the stall check resumes too
