"""The pre-flight kernel forecast and init.C_W=auto (runner.theory.forecast) against the theory and
against freshly drawn ensembles: auto's choice must keep real layer-L kernels in the band."""

import math
from dataclasses import replace

import numpy as np
import pytest
import torch

from conftest import make_experiment
from runner.theory import activations
from runner.theory import kernels
from runner.theory.forecast import BAND, choose_init, forecast, input_K0, readout_factor
from runner.theory.init import Init, PyTorchInit
from runner.theory.measurements import sample_init


def test_forecast_is_kernel_flow_of_the_smallest_median_and_largest_input():
    act = activations.tanh()
    x = torch.tensor([[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.5, 0.5], [2.0, 2.0]])
    K0 = input_K0(x)  # |x|²/n0 = 0, 0.5, 1, 0.25, 4
    assert K0 == pytest.approx([0.0, 0.5, 4.0])
    init = Init("critical", C_W_first=0.7, C_W=1.3, C_b=0.05)
    fc = forecast(act, K0, init, layers=6)
    want = kernels.kernel_flow(act, 0.05, 1.3, K0, 6, C_W_first=0.7)
    np.testing.assert_allclose(np.array(fc.K), want, rtol=1e-6)
    assert np.array(fc.K)[:, 0] == pytest.approx(0.05 + 0.7 * K0)
    chi = kernels.chi_perp(act, want[:, :-1], 1.3)
    np.testing.assert_allclose(np.array(fc.chi_perp_product)[:, 1:], np.cumprod(chi, 1), rtol=1e-6)


def test_forecast_verdicts_name_the_layer_where_the_kernel_leaves_the_band():
    mrepu, repu = activations.mrepu(p=2), activations.repu(p=2)
    K0 = np.array([0.1, 0.5, 1.0])
    fc = forecast(mrepu, K0, Init("critical", 1.0, 1.0, 0.0), layers=8)
    K = kernels.kernel_flow(mrepu, 0.0, 1.0, K0, 8)
    first_out = int(np.argmax((K / K[:, :1] > BAND).any(0))) + 1
    assert fc.verdict == "explodes" and fc.leaves_at == first_out
    assert "explodes at layer" in fc.line() and "set init.C_W=auto" in fc.line()
    fc = forecast(repu, K0, Init("critical", 0.5, 0.5, 0.0), layers=8)
    assert fc.verdict == "vanishes"
    relu = forecast(activations.relu(), K0, Init("critical", 2.0, 2.0, 0.0), layers=8)
    assert relu.verdict == "stable" and relu.deviation == pytest.approx(0.0, abs=1e-9)


CASES = {  # the inputs and depth of each task as `python -m runner task=X` trains them
    "burgers": ["task=burgers", "task.n_collocation=2000"],
    "burgers_7x64": ["task=burgers", "task.n_collocation=2000", "model=mlp_7x64"],
    "polynomial": ["task=polynomial"],
    "x2": ["task=x2"],
}


@pytest.mark.parametrize("activation", ["mrepu", "relu", "tanh", "gelu"])
@pytest.mark.parametrize("case", list(CASES))
def test_auto_keeps_ninety_percent_of_an_ensembles_layer_L_kernels_in_the_band(activation, case):
    """64 freshly drawn members: the last hidden layer's kernel of each training input (mean of
    z² over its neurons) within x BAND of the theory's first-layer kernel of that input."""
    exp = make_experiment(f"activation={activation}", *CASES[case])
    x = exp.task.network_inputs()
    i, fc = exp.resolve_init()
    assert fc.auto and fc.verdict == "stable" and not fc.note, fc.line()
    x = x[torch.randperm(len(x), generator=torch.Generator().manual_seed(0))[:48]].double()
    stats = sample_init(exp.activation, x, exp.model.depth, exp.model.width, i.C_W, i.C_b,
                        members=64, seed=0, C_W_first=i.C_W_first)
    K1 = i.C_b + i.C_W_first * x.pow(2).mean(1).numpy()          # theory, per input
    K_L = stats.kernel[:, -1, :]                                  # (members, inputs)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where((K1 == 0) & (K_L == 0), 1.0, K_L / K1)
    inside = (ratio >= 1 / BAND) & (ratio <= BAND)
    assert inside.mean() >= 0.9, f"{inside.mean():.0%} inside; {fc.line()}"


def test_auto_says_when_nothing_keeps_the_band():
    """Sigmoid through 8 layers of unit inputs: no setting keeps both the kernel and χ⊥ in band."""
    init, note = choose_init(activations.sigmoid(), np.array([0.0, 0.33, 1.0]), 8)
    assert "least bad" in note
    fc = forecast(activations.sigmoid(), np.array([0.0, 0.33, 1.0]), init, 8, auto=True, note=note)
    assert "least bad" in fc.line()
    assert fc.deviation > math.log(BAND)


def test_given_values_are_kept_and_the_rest_chosen():
    act = activations.mrepu(p=2)
    init, _ = choose_init(act, np.array([0.0, 0.5, 2.0]), 6, C_b=0.0)
    assert init.C_b == 0.0
    init, _ = choose_init(act, np.array([0.0, 0.5, 2.0]), 6, C_W_first=0.01)
    assert init.C_W_first == 0.01


def test_resolving_leaves_the_scheme_as_configured():
    """The resolved init is its own object (summary.json's resolved_init); the scheme still says auto."""
    exp = make_experiment("activation=mrepu", "task=x2")
    init, fc = exp.resolve_init()
    assert exp.init.C_W == "auto" and exp.init.C_W_first is None and exp.init.C_b is None
    assert exp.config.init.C_W == "auto"
    assert init.scheme == "critical" and fc.init == init.as_dict() and init.C_W > 0
    given, _ = make_experiment("init.C_W=0.8").resolve_init()
    assert given == Init("critical", C_W_first=0.8, C_W=0.8, C_b=0.0)  # null C_W_first follows C_W; null C_b is 0
    pytorch, _ = make_experiment("init=pytorch", "model.width=64").resolve_init()
    assert pytorch == PyTorchInit("pytorch", 1 / 3, 1 / 3, 1 / (3 * 64))  # the Gaussian equivalent


def test_a_config_without_init_C_W_fails_in_one_line(tmp_path):
    from conftest import run_cli

    res = run_cli("~init.C_W", "trainer=cpu", cwd=tmp_path)
    assert res.returncode == 2 and res.stderr.strip() == (
        "runner: error: init.C_W is missing: runner.theory.schemes.Gaussian needs it")
    assert not list(tmp_path.rglob("summary.json"))  # stopped before any work


SQUAREPLUS = ["activation=formula", "activation.formula=(z+sqrt(z*z+4))/2", "activation.name=squareplus"]


def test_the_targets_mean_square_is_the_tasks():
    """Regression: mean y² in the network's units (standardized x2, raw Kim-Kang polynomials); a PINN:
    the exact solution's mean square on the evaluation grid; no targets for tasks that train nothing."""
    x2 = make_experiment("task=x2").task
    assert x2.target_moment() == pytest.approx(float(x2.train_batch()["y"].double().pow(2).mean()))
    assert x2.target_moment() == pytest.approx(1.0, abs=0.01)  # standardized (std with N - 1)
    poly = make_experiment("experiment=kimkang_table4", "kimkang=poly_high").task
    assert poly.target_moment() == pytest.approx(float(poly.y_train.double().pow(2).mean()), rel=1e-6)
    burgers = make_experiment("task=burgers", "task.n_collocation=500").task
    assert burgers.target_moment() == pytest.approx(float((burgers.u_ref_flat.norm() ** 2 / burgers.u_ref_flat.numel())))
    assert make_experiment("task=kernel_init").task.target_moment() is None


def test_auto_scales_the_readout_where_the_output_would_start_far_above_the_targets():
    """squareplus (no critical point, σ(0) = 1) on x2: auto keeps the hidden kernel in band but the
    output would start more than the band above the targets' mean square, so the readout's weight
    and bias variances are both scaled down to it. Drawn (no training), 32 members: the mean start
    loss is within 2x the zero predictor's (the expected loss is at most zero's + the targets' mean
    square, i.e. 2x, once no input's output variance exceeds it), by two standard errors of the
    members' spread; with the readout as auto's hidden layers set it, above 2x by two of them."""
    exp = make_experiment("task=x2", "ensemble.size=32", *SQUAREPLUS)
    init, fc = exp.resolve_init()
    moment, unscaled = exp.task.target_moment(), max(k[-1] for k in fc.K)
    assert fc.verdict == "stable" and unscaled > BAND * moment, fc.line()
    r = moment / unscaled
    assert init.C_W_last == pytest.approx(r * init.C_W) and init.C_b_last == pytest.approx(r * init.C_b)
    assert fc.init == init.as_dict() and fc.output_variance == pytest.approx(moment) and not fc.output_far_above
    assert f"readout scaled x{r:.2g}: output variance {unscaled:.3g} vs targets {moment:.3g}" in fc.line()
    batch = exp.task.train_batch()
    losses = {}
    for label, drawn in (("before", replace(init, C_W_last=None, C_b_last=None)), ("after", init)):
        model = exp.build_model(drawn)
        with torch.no_grad():
            losses[label] = exp.task.loss(model, batch).double()
            with model.zero_output():
                zero = exp.task.loss(model, batch).double().mean().item()
    (before, after) = ((v.mean().item(), v.std().item() / math.sqrt(len(v))) for v in losses.values())
    assert after[0] + 2 * after[1] < 2 * zero < before[0] - 2 * before[1], (before, after, zero)


@pytest.mark.parametrize("overrides", [
    ["task=x2", *SQUAREPLUS, "init.C_W=1.54", "init.C_W_first=12.6", "init.C_b=0.63"],  # auto's values, given
    ["experiment=kimkang_table4", "kimkang=poly_high", "activation=gelu", "init.C_W=auto"],  # a critical point
])
def test_a_given_init_or_a_critical_point_keeps_its_readout(overrides):
    """Where auto does not search the hidden layers itself (the numbers given, or GELU's critical
    point) the readout is drawn as before; the forecast line only says the output starts far above
    the targets' mean square, the task's."""
    exp = make_experiment(*overrides)
    init, fc = exp.resolve_init()
    assert init.C_W_last is None and init.C_b_last is None and set(fc.init) == {"scheme", "C_W_first", "C_W", "C_b"}
    assert fc.verdict == "stable" and fc.output_far_above and fc.target_moment == exp.task.target_moment()
    assert (f"output variance {max(k[-1] for k in fc.K):.3g} at the start, over x{BAND:g} the targets' mean "
            f"square ({fc.target_moment:.3g})") in fc.line() and "readout" not in fc.line()
    K0, layers = input_K0(exp.task.network_inputs()), exp.model.depth + 1
    assert forecast(exp.activation, K0, init, layers, fc.auto, fc.note, target_moment=fc.target_moment) == fc


@pytest.mark.parametrize("overrides", [
    ["activation=mrepu", "task=burgers"],  # the card command
    ["experiment=kimkang_table4", "kimkang=poly_high", "activation=mrepu", "init.C_W=auto"],
    ["experiment=kimkang_burgers", "activation=mrepu", "init.C_W=auto"],
])
def test_the_papers_mrepu_runs_under_auto_keep_their_readout(overrides):
    """MRePU under auto starts with its largest output variance below the targets' mean square
    (0.89 of it on the card's Burgers net, at most 0.03 on Kim-Kang's grids), a factor of ten or
    more inside the band: the readout rule does not act there."""
    exp = make_experiment(*overrides)
    init, fc = exp.resolve_init()
    assert fc.auto and fc.verdict == "stable" and readout_factor(fc) is None and init.C_W_last is None
    assert fc.output_variance < fc.target_moment, fc.line()
