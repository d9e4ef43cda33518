"""Burgers PINN (the Burgers preset of task=pde): the exact solution against the published data and
the PDE, the preset against Burgers written out by hand, training that works for tanh and fails for ReLU,
ensembles equal separate runs, the sweep plot, bad input."""

import csv
import json
import math

import numpy as np
import pytest

from conftest import colored_fraction, make_cfg, run_cli
from runner.checks import ConfigError
from runner.run import build, run
from runner.tasks.pde.burgers import PUBLISHED_DATA, PUBLISHED_NU, exact_solution, load_reference


@pytest.mark.numerics
@pytest.mark.parametrize("kind", ["mat", "npz"])
def test_exact_solution_matches_published_data(kind, tmp_path):
    """Cole-Hopf against Raissi et al.'s burgers_shock.mat (shipped in runner/data), read as .mat and
    as the same values in an .npz."""
    path = PUBLISHED_DATA
    if kind == "npz":
        x, t, usol = load_reference()
        path = tmp_path / "Burgers.npz"
        np.savez(path, x=x[:, None], t=t[:, None], usol=usol)
    x, t, usol = load_reference(path)
    assert usol.shape == (256, 100) and t[-1] == pytest.approx(0.99)
    u = exact_solution(x[:, None], t[None, :], PUBLISHED_NU)
    # measured: 2.9e-12 relative, 4.2e-11 absolute (the data file's own precision)
    assert np.linalg.norm(u - usol) / np.linalg.norm(usol) < 1e-10
    assert np.abs(u - usol).max() < 1e-9


@pytest.mark.numerics
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
    x, t, usol = load_reference()
    task = build(make_cfg("task=burgers", "task.n_collocation=10")).task
    assert task.variables == ("x", "t") and math.isclose(task.params["nu"], PUBLISHED_NU)
    np.testing.assert_allclose(task.axes[0], x, atol=1e-15)
    np.testing.assert_allclose(task.axes[1], t, atol=1e-15)
    assert np.abs(task.u_ref - usol).max() < 1e-9


def hand_written_terms(model, collocation, conditions, nu=PUBLISHED_NU):
    """Burgers' three loss terms per member, written out by hand (no expression evaluator): the
    residual u_t + u u_x - nu u_xx on the collocation points, u + sin(pi x) on the t = 0 points and
    u on the x = +-1 points, each as a mean square. The network sees x as is and t mapped onto [-1, 1]."""
    import torch

    def u_of(points):
        points = points.to(model.weights[0].dtype).expand(model.size, -1, -1).clone().requires_grad_(True)
        x, t = points[..., 0], points[..., 1]
        return points, model(torch.stack([x, 2 * t - 1], -1))[..., 0]

    points, u = u_of(collocation)
    (du,) = torch.autograd.grad(u.sum(), points, create_graph=True)
    u_x, u_t = du[..., 0], du[..., 1]
    (d2u,) = torch.autograd.grad(u_x.sum(), points, create_graph=True)
    pde = (u_t + u * u_x - nu * d2u[..., 0]).pow(2).mean(1)
    points, u = u_of(conditions)
    x, t = points[0, :, 0].detach(), points[0, :, 1].detach()
    on_t0, on_side = t == 0, x.abs() == 1
    assert int(on_t0.sum()) == 50 and int(on_side.sum()) == 50 and not (on_t0 & on_side).any()
    initial = (u[:, on_t0] + torch.sin(math.pi * x[on_t0])).pow(2).mean(1)
    boundary = u[:, on_side].pow(2).mean(1)
    return {"pde": pde, "initial": initial, "boundary": boundary}


# float32 sums of a few hundred terms agree to ~1e-6 relative, whatever the vector width or thread
# count; float64 ones to ~1e-14. Five Adam steps on O(0.1) gradients keep that order.
RTOL = {"32-true": 1e-5, "64-true": 1e-10}


@pytest.mark.numerics
@pytest.mark.parametrize("precision", ["32-true", "64-true"])
def test_burgers_preset_trains_like_a_hand_written_pinn(precision, tmp_path):
    """The Burgers preset of task=pde (expression evaluator, chunked Lightning steps) against Burgers
    written out by hand: the loss terms at initialization, then five Adam steps of a plain torch loop,
    scored on the published data set."""
    import copy

    import torch

    common = ["task=burgers", "activation=tanh", "model=mlp_3x64", "task.n_collocation=200", "task.n_boundary=100",
              "ensemble.size=2", "seed=3", "logger=none", f"trainer.precision={precision}"]
    cfg = make_cfg(*common)
    task = build(cfg).task
    model = build(cfg).build_model()
    batch = task.train_batch()
    task.loss(model, batch)
    reference = hand_written_terms(copy.deepcopy(model).double(), batch["collocation"].double(),
                                   batch["conditions"].double())
    for term in ("pde", "initial", "boundary"):
        np.testing.assert_allclose(task.last_terms[term].double(), reference[term].detach(),
                                   rtol=RTOL[precision], err_msg=term)

    adam = torch.optim.Adam(model.parameters(), lr=cfg.optimizer.lr, fused=True)
    for _ in range(5):
        losses = sum(hand_written_terms(model, batch["collocation"], batch["conditions"]).values())
        adam.zero_grad()
        losses.sum().backward()
        adam.step()
    x, t, usol = load_reference()
    grid = torch.tensor(np.stack(np.meshgrid(x, t, indexing="ij"), -1).reshape(-1, 2))
    with torch.no_grad():
        u = model(torch.stack([grid[:, 0], 2 * grid[:, 1] - 1], -1).to(model.weights[0].dtype))[..., 0]
    rel_l2 = np.linalg.norm(u.double().numpy() - usol.reshape(-1), axis=1) / np.linalg.norm(usol)

    summary = run(make_cfg(*common, "trainer.max_epochs=5"), tmp_path)
    # final_train_loss is the loss of the last step's model before its update, as in the loop above
    np.testing.assert_allclose(summary["metrics"]["final_train_loss"]["members"], losses.detach().double(),
                               rtol=RTOL[precision])
    np.testing.assert_allclose(summary["metrics"]["rel_l2"]["members"], rel_l2, rtol=RTOL[precision])
    assert 0.3 < rel_l2.min() and rel_l2.max() < 1.5  # five steps from a random net: far from the solution


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
        assert colored_fraction(run_dir / "plots" / plot) > 0.01, plot  # maps and curves drawn, not blank axes
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


@pytest.mark.numerics
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
    table = json.loads((sweep / "rel_l2_by_activation.json").read_text())
    c_w, ok_members = {}, {}
    for path in sweep.glob("*/summary.json"):
        summary = json.loads(path.read_text())
        c_w[summary["activation"]] = summary["config"]["init"]["C_W"]
        ok_members[summary["activation"]] = sorted(v for v, fate in zip(summary["metrics"]["rel_l2"]["members"],
                                                                         summary["member_status"]) if fate == "ok")
    # the plot shows exactly the members every table counts (ok ones), per activation
    assert {act: sorted(v) for act, v in table.items()} == ok_members and any(ok_members.values())
    assert colored_fraction(sweep / "plots" / "rel_l2_by_activation.png") > 0.002  # the points and medians
    assert c_w == {"tanh": 1.0, "mrepu": 0.45}


@pytest.mark.parametrize("override,needle", [
    ("task.n_collocation=0", "task.n_collocation=0 is invalid"),
    ("task.sampler=sobol", "task.sampler='sobol' is invalid: must be a sampler with a _target_"),
    ("optimizer=adam_lbfgs optimizer.adam_steps=-1", "optimizer.adam_steps=-1 is invalid"),
    ("optimizer=adam_lbfgs optimizer.lbfgs_max_iter=0", "optimizer.lbfgs_max_iter=0 is invalid"),
])
def test_bad_input_is_one_line(override, needle):
    with pytest.raises(ConfigError, match=needle.replace("[", r"\[").replace("]", r"\]")):
        build(make_cfg("task=burgers", *override.split()))


def test_adam_lbfgs_switches_phase_and_round_trips():
    import torch

    from hydra.utils import instantiate

    gen = torch.Generator().manual_seed(0)
    a, b = torch.randn(20, 5, generator=gen, dtype=torch.float64), torch.randn(20, generator=gen, dtype=torch.float64)
    w = torch.zeros(5, dtype=torch.float64, requires_grad=True)
    factory = instantiate(make_cfg("optimizer=adam_lbfgs", "optimizer.lr=1e-2", "optimizer.adam_steps=3",
                                   "optimizer.lbfgs_max_iter=20").optimizer)
    opt = factory([w])

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
    other = factory([w])
    other.load_state_dict(state)
    assert other.steps_done == 5 and other.phase == "lbfgs"
    assert other.lbfgs.state_dict()["state"][0]["n_iter"] == opt.lbfgs.state_dict()["state"][0]["n_iter"] > 0
    assert other.last_lbfgs_loss == opt.last_lbfgs_loss is not None  # the stall check resumes too
