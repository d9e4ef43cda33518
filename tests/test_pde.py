"""task=pde: every preset's exact solution solves its own equation, derivatives and conditions by
autograd, a PDE typed on the command line trains, bad input is one line, and the suite's sweep
gives a table, a heat map and a claim row."""

import ast
import csv
import json
import re
from dataclasses import replace

import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir

from omegaconf import OmegaConf

from conftest import ROOT, colored_fraction, make_cfg, make_experiment, run_cli
from runner.config import quote_expressions
from runner.papers import pinn_suite
from runner.papers.report import write_report
from runner.results.summary import FINISHED
from runner.checks import ConfigError
from runner.run import build, run
from runner.tasks.pde import equation
from runner.tasks.pde.equation import partials
from runner.tasks.pde.samplers import LatinHypercube
from runner.tasks.pde.task import PDE

# the PDE presets: task options built on the generic pde task
PRESETS = sorted(p.stem for p in (ROOT / "conf" / "task").glob("*.yaml")
                 if "defaults:\n  - pde\n" in p.read_text())
HEAT = dict(variables={"x": [0, 1], "t": [0, 0.5]}, params={"k": 0.2}, residual="u_t - k*u_xx",
            conditions=[{"where": "t=0", "u": "sin(pi*x)"}, {"where": "x=0", "u": 0}, {"where": "x=1", "u": 0}],
            exact="exp(-k*pi**2*t)*sin(pi*x)", n_collocation=64, n_boundary=16)


def pde_task(**arguments) -> PDE:
    """A PDE task of conf/task/pde.yaml's settings with these arguments."""
    settings = OmegaConf.to_container(make_cfg("task=heat").task, resolve=True)
    settings = {k: v for k, v in settings.items() if not k.startswith("_")}
    return PDE(**{**settings, "name": "pde", "eval_grid": None, "sampler": LatinHypercube(), **arguments})


def domain_points(task: PDE, n: int = 4000, seed: int = 1) -> torch.Tensor:
    """n uniform float64 points in the task's domain."""
    u = torch.rand(n, task.in_dim, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    return task.lo + u * (task.hi - task.lo)


# ---------------------------------------------------------------- the presets


def test_the_suite_has_the_issues_presets():
    assert set(PRESETS) >= {"burgers", "heat", "advection", "wave", "poisson", "helmholtz", "kdv"}
    assert len(PRESETS) >= 8
    suite = make_cfg("experiment=pinn_suite")
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        hydra = compose("config", ["experiment=pinn_suite"], return_hydra_config=True).hydra
    assert sorted(hydra.sweeper.params.task.split(",")) == PRESETS
    assert hydra.sweeper.params.activation.split(",") == ["tanh", "gelu", "mrepu", "relu", "sin"]
    assert suite.init.C_W == "auto" and suite.init.C_W_first is None  # every activation at the default init
    assert suite.init.C_W == make_cfg().init.C_W


@pytest.mark.numerics
@pytest.mark.parametrize("name", PRESETS)
def test_preset_exact_solution_satisfies_its_residual_and_conditions(name):
    """Float64, derivatives of the exact solution by autograd: mean squared residual <= 1e-8 in the
    domain, and every condition (values and u_t alike) met on its own points."""
    task = build(make_cfg(f"task={name}", "task.n_collocation=16")).task
    assert task.name == name
    errors = task.check_exact(domain_points(task))
    assert errors["residual"] <= 1e-8, errors
    conditions = {k: v for k, v in errors.items() if k != "residual"}
    assert conditions and all(v <= 1e-8 for v in conditions.values()), errors
    assert np.isfinite(task.u_ref).all() and np.abs(task.u_ref).max() > 0.1  # a real reference, not ~0


@pytest.mark.parametrize("name", PRESETS)
def test_preset_yaml_names_its_source(name):
    text = (ROOT / "conf" / "task" / f"{name}.yaml").read_text()
    header = "\n".join(line for line in text.splitlines() if line.startswith("#"))
    assert re.search(r"\b(19|20)\d\d\b", header), f"{name}.yaml: no source with a year in its header"


def test_a_wrong_exact_solution_is_caught():
    """The same check, on a typo'd solution: it is the check that tells presets apart."""
    task = pde_task(**{**HEAT, "exact": "exp(-k*pi*t)*sin(pi*x)"})
    assert task.check_exact(domain_points(task))["residual"] > 1e-3


def test_burgers_has_one_spelling_built_on_the_generic_pde_task():
    burgers = make_cfg("task=burgers").task
    assert burgers._target_ == make_cfg("task=pde").task._target_ and burgers.name == "burgers"
    assert make_cfg("experiment=kimkang_burgers").task == burgers
    assert make_cfg("experiment=raissi_burgers").task.exact._target_ == "runner.tasks.pde.burgers.ColeHopf"
    assert not (ROOT / "conf" / "pde").exists()
    with pytest.raises(Exception, match="pde"):
        make_cfg("pde=burgers")


# ---------------------------------------------------------------- derivatives and conditions


@pytest.mark.numerics
def test_partials_match_hand_derivatives_and_compute_only_what_is_named(monkeypatch):
    calls = []
    grad = equation._grad
    monkeypatch.setattr(equation, "_grad", lambda y, p, c: calls.append(1) or grad(y, p, c))
    pts = torch.rand(50, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0)).requires_grad_(True)
    x, t = pts[:, :1].detach(), pts[:, 1:].detach()
    # u = sin(2x) t^3: keys () u, (0,) u_x, (0, 1) u_xt, (0, 0, 0) u_xxx, (1, 1) u_tt
    out = partials(lambda p: torch.sin(2 * p[:, :1]) * p[:, 1:] ** 3, pts, [(0, 1), (0, 0, 0), (1, 1), (0,)])
    want = {(): torch.sin(2 * x) * t**3, (0,): 2 * torch.cos(2 * x) * t**3, (0, 1): 6 * torch.cos(2 * x) * t**2,
            (0, 0, 0): -8 * torch.cos(2 * x) * t**3, (1, 1): 6 * torch.sin(2 * x) * t}
    assert set(out) == set(want)
    for key, value in want.items():
        torch.testing.assert_close(out[key], value, rtol=1e-12, atol=1e-12)
    assert len(calls) == 4  # gradients of u, u_x, u_xx, u_t: one backward pass each, nothing else
    burgers = build(make_cfg("task=burgers", "task.n_collocation=32")).task
    model = build(make_cfg("task=burgers", "task.n_collocation=32", "model=mlp_3x64", "ensemble.size=2")).build_model()
    calls.clear()
    burgers.loss(model, burgers.train_batch())
    assert len(calls) == 2  # u -> (u_x, u_t), u_x -> u_xx, as the hand-written Burgers residual did


def test_residual_is_compiled_once(monkeypatch):
    """Training steps never parse: the residual is a closure built at construction."""
    task = pde_task(**HEAT)
    model = replace(make_experiment("model=mlp_3x64", "ensemble.size=2"), task=task).build_model()

    def no_parse(*args, **kwargs):
        raise AssertionError("parsed during a training step")

    monkeypatch.setattr(ast, "parse", no_parse)
    loss = task.loss(model, task.train_batch())
    loss.sum().backward()
    assert torch.isfinite(loss).all()


@pytest.mark.numerics
def test_derivative_condition_enters_the_initial_term():
    """The wave preset's u_t(0, x) = 0: its squared error is part of the initial loss, per member."""
    cfg = make_cfg("task=wave", "task.n_collocation=16", "task.n_boundary=30", "ensemble.size=2", "model=mlp_3x64")
    task = build(cfg).task
    model = build(cfg).build_model()
    terms = task.terms(model, task.train_batch())
    (_, _, rows, target), (_, key, rows_t, target_t) = [t for t in task.targets if t[0] == "initial"]
    assert key == (1,) and torch.equal(rows, rows_t)
    pts = task.condition_points[rows].expand(2, -1, -1).clone().requires_grad_(True)
    u = model(task.scale(pts))
    (du,) = torch.autograd.grad(u.sum(), pts)
    want = (u - target.float()).pow(2).mean(dim=(1, 2)) + (du[..., 1:] - target_t.float()).pow(2).mean(dim=(1, 2))
    torch.testing.assert_close(terms["initial"], want.detach(), rtol=1e-5, atol=1e-7)


def test_points_lie_on_their_conditions_and_network_inputs_are_scaled():
    task = build(make_cfg("task=poisson", "task.n_collocation=100", "task.n_boundary=40")).task
    pts = task.condition_points
    on_edge = (pts == 0) | (pts == 1)
    assert on_edge.any(1).all() and len(pts) == 40
    assert [(term, len(rows)) for term, _, rows, _ in task.targets] == [("boundary", 40)]
    inputs = task.network_inputs()
    assert inputs.shape == (140, 2) and inputs.min() >= -1 and inputs.max() <= 1


# ---------------------------------------------------------------- the command line


def test_quoting_lets_expressions_through_hydras_grammar():
    assert quote_expressions(["task.exact=exp(-t)*sin(pi*x)", "task.residual=u_t - k*u_xx",
                              "task.target=poly_low,poly_high", "seed=1", "task.exact='sin(x)'"]) == [
        "task.exact='exp(-t)*sin(pi*x)'", "task.residual=u_t - k*u_xx", "task.target=poly_low,poly_high",
        "seed=1", "task.exact='sin(x)'"]


# A PDE typed on the command line, as in a shell (which removes the single quotes).
ISSUE = ["task=pde", "activation=tanh", "task.variables={x: [0, 1], t: [0, 0.5]}", "task.params={k: 0.2}",
         "task.residual=u_t - k*u_xx",
         'task.conditions=[{where: "t=0", u: "sin(pi*x)"}, {where: "x=0", u: "0"}, {where: "x=1", u: "0"}]',
         "task.exact=exp(-k*pi**2*t)*sin(pi*x)"]
# A PDE nobody wrote a preset for: Laplace on the unit square with u = e^x sin(y) on its edges.
LAPLACE = ["task=pde", "activation=tanh", "task.variables={x: [0, 1], y: [0, 1]}", "task.residual=u_xx + u_yy",
           'task.conditions=[{where: "x=0", u: "sin(y)"}, {where: "x=1", u: "exp(1)*sin(y)"}, '
           '{where: "y=0", u: "0"}, {where: "y=1", u: "exp(x)*sin(1)"}]', "task.exact=exp(x)*sin(y)"]


def test_the_issues_command_line_runs(tmp_path):
    res = run_cli(*ISSUE, "trainer=cpu", "trainer.max_epochs=3", "task.n_collocation=64", "logger=none",
                  f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-2000:]
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    # three steps: the run finishes; whether its members beat the zero function yet is their fate
    assert summary["status"] in FINISHED and len(summary["member_status"]) == 4
    assert summary["config"]["task"]["exact"] == "exp(-k*pi**2*t)*sin(pi*x)"


def test_a_pde_typed_on_the_command_line_trains(tmp_path):
    """tanh, 500 Adam steps at lr 1e-2: rel_l2 falls more than tenfold from its value at initialization
    (measured: 0.94 -> 0.11 after 300 steps, 0.004 after 1500)."""
    run_dir = tmp_path / "run"
    res = run_cli(*LAPLACE, "trainer=cpu", "threads=1", "model=mlp_3x64", "ensemble.size=2", "task.n_collocation=256",
                  "task.n_boundary=64", "optimizer.lr=1e-2", "trainer.max_epochs=500", "log_every=50",
                  "task.eval_grid={x: 41, y: 41}", f"hydra.run.dir={run_dir}", cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-2000:]
    summary = json.loads((run_dir / "summary.json").read_text())
    with open(run_dir / "metrics.csv") as f:
        rows = [r for r in csv.DictReader(f) if r.get("rel_l2/mean")]
    first, final = float(rows[0]["rel_l2/mean"]), summary["metrics"]["rel_l2"]["mean"]
    assert summary["task"] == "pde" and final < 0.1 * first, (first, final)
    for name in ("max_abs_error", "loss_pde", "loss_boundary", "loss_initial"):
        assert name in summary["metrics"]
    for plot in ("solution.png", "slices.png", "training.png"):
        assert colored_fraction(run_dir / "plots" / plot) > 0.01, plot  # maps and curves drawn, not blank axes
    pred = np.load(run_dir / "predictions.npz")
    assert pred["u_pred"].shape == (2, 41, 41) and pred["x"].shape == pred["y"].shape == (41,)


def test_one_variable_pde_runs_and_plots(tmp_path):
    """u_xx = -pi^2 sin(pi x) on [0, 1]: no slices to draw, one line plot."""
    cfg = make_cfg("task=pde", "task.variables={x: [0, 1]}", "task.residual=u_xx + pi**2*sin(pi*x)",
                   'task.conditions=[{where: "x=0", u: "0"}, {where: "x=1", u: "0"}]', "task.exact=sin(pi*x)",
                   "task.n_collocation=32", "task.n_boundary=4", "trainer.max_epochs=3", "logger=none",
                   "model=mlp_3x64", "ensemble.size=2")
    summary = run(cfg, tmp_path)
    assert summary["status"] in FINISHED  # three steps need not beat the zero function
    assert (tmp_path / "plots" / "solution.png").exists() and not (tmp_path / "plots" / "slices.png").exists()


@pytest.mark.parametrize("override,needle", [
    ("task.residual=u_t - a*u_z", "task.residual='u_t - a*u_z' is invalid: 'u_t - a*u_z': unknown derivative 'u_z'"),
    ('task.conditions=[{where: "x=2", u: "0"}]', "task.conditions[0].where='x=2' is invalid: outside the domain"),
    ("task.residual=a*x", "task.residual='a*x' is invalid: it does not mention u"),
    ("task.exact=x.__class__", "task.exact='x.__class__' is invalid: 'x.__class__': attribute access is not allowed"),
])
def test_the_issues_bad_input_is_one_line_and_exit_2(tmp_path, override, needle):
    res = run_cli("task=heat", "trainer=cpu", override, cwd=tmp_path)
    assert res.returncode == 2, res.stderr[-2000:]
    assert needle in res.stderr and len(res.stderr.strip().splitlines()) == 1, res.stderr
    assert "Traceback" not in res.stderr


@pytest.mark.parametrize("overrides,needle", [
    (["task=pde"], "task.variables, task.residual, task.conditions, task.exact are missing (???)"),
    (["task=heat", "task.variables={x: [1, 0]}"], "task.variables.x=[1, 0] is invalid"),
    ([o for o in ISSUE if "params" not in o] + ["task.params={k: 0.2, pi: 3}"], "task.params.pi is invalid"),
    (["task=heat", "task.residual=u_t - a*u_xx + y"], "unknown name 'y'"),
    (["task=heat", 'task.conditions=[{where: "z=0", u: "0"}]'], "task.conditions[0].where='z=0' is invalid"),
    (["task=heat", 'task.conditions=[{where: "t=0", v: "0"}]'], "task.conditions[0].v is not a known key"),
    (["task=heat", 'task.conditions=[{where: "t=0", u_y: "0"}]'], "task.conditions[0].u_y is invalid"),
    (["task=heat", 'task.conditions=[{where: "t=0", u: "u"}]'], "task.conditions[0].u='u' is invalid"),
    (["task=heat", "task.exact=nope"], "or a reference with a _target_, e.g. runner.tasks.pde.burgers.ColeHopf"),
    (LAPLACE + ["task.exact={_target_: runner.tasks.pde.burgers.ColeHopf, nu: 0.01}"],
     "task.exact is invalid: ColeHopf is a function of x, t; the equation's variables are x, y"),
    (["task=heat", "task.eval_grid={z: 10}"], "task.eval_grid.z is not a variable"),
    (["task=heat", "task.sampler=sobol"], "task.sampler='sobol' is invalid"),
    (["task=heat", "+task.sampler.bins=3"], "task.sampler.bins is not a known key"),
])
def test_more_bad_input_names_the_key(overrides, needle):
    with pytest.raises(ConfigError) as err:
        build(make_cfg(*overrides))
    assert needle in str(err.value) and "\n" not in str(err.value)


# ---------------------------------------------------------------- the suite sweep


def test_suite_sweep_table_heatmap_and_claim(tmp_path):
    """Two equations x the ranking's four activations, a few steps each: the sweep ends with the
    activation x equation table and heat map, and the claim row is computed by B13's rule (three
    steps converge nothing, and two members per activation cannot reach 5%: inconclusive)."""
    sweep = tmp_path / "runs" / "pinn_suite"
    res = run_cli("-m", "experiment=pinn_suite", "task=heat,poisson", "activation=gelu,tanh,mrepu,relu",
                  "trainer=cpu", "threads=1", "model=mlp_3x64", "ensemble.size=2", "trainer.max_epochs=3",
                  "task.n_collocation=32",
                  "task.n_boundary=8", "task.eval_grid={x: 11}", "logger=csv", f"hydra.sweep.dir={sweep}",
                  cwd=tmp_path, timeout=600)
    assert res.returncode == 0, res.stderr[-2000:]
    table = (sweep / "table.md").read_text()
    assert "| activation.name \\ task.name | heat | poisson |" in table and "max_abs_error" in table
    assert colored_fraction(sweep / "plots" / "rel_l2_heatmap.png") > 0.08  # eight colored cells and the color bar: 0.125
    plan = {"verdicts": {"alpha": 0.05}, "sweeps": {"pinn_suite": {"experiment": "pinn_suite", "overrides": []}}}
    report = write_report(tmp_path, "smoke", plan, {}, 0.0).path.read_text()
    section = report.split("## Beyond the papers: PINN suite")[1].split("\n## ")[0]
    assert "| activation | heat | poisson |" in section and "| mrepu |" in section
    row = next(line for line in report.splitlines() if line.startswith("| [S1](#s1) "))
    assert "**inconclusive**" in row and "smallest attainable p" in row
    s1 = report.split('<a id="s1"></a>')[1].split("<a id=")[0]
    tests = [line.split(" | ")[0].strip("| ") for line in s1.splitlines() if line.startswith("| heat") or
             line.startswith("| poisson")]
    assert tests == [f"{eq}: {a} < {b}" for eq in ("heat", "poisson")
                     for a, b in (("gelu", "tanh"), ("tanh", "mrepu"), ("mrepu", "relu"))]
    assert (tmp_path / "figures" / "pinn_suite-rel_l2_heatmap.png").exists()
    assert [c.id for c in pinn_suite.CLAIMS] == ["S1"]


@pytest.mark.parametrize("activation,warned", [("relu", True), ("tanh", False)])
def test_a_derivative_the_activation_makes_zero_is_one_warning(caplog, activation, warned):
    """Heat needs u_xx: under ReLU (piecewise linear) it is 0 at every point, so the run says so once."""
    exp = make_experiment("task=heat", f"activation={activation}", "ensemble.size=2", "task.n_collocation=64",
                          "task.n_boundary=16")
    model = exp.build_model()
    with caplog.at_level("WARNING", logger="runner"):
        for _ in range(2):
            exp.task.loss(model, exp.task.train_batch())
    said = [r.getMessage() for r in caplog.records if "identically 0" in r.getMessage()]
    assert said == ([f"task.residual needs u_xx, identically 0 under {activation} (a derivative of that order "
                     "vanishes wherever σ is smooth): the PINN cannot fit that term; take an activation smooth to "
                     "that order (tanh, gelu, mrepu, ...)"] if warned else [])
