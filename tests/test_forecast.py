"""The pre-flight kernel forecast and init.C_W=auto (runner.theory.forecast) against the theory and
against freshly drawn ensembles: auto's choice must keep real layer-L kernels in the band."""

import math

import numpy as np
import pytest
import torch

from conftest import make_experiment
from runner.theory import activations
from runner.theory import recursions
from runner.theory.forecast import BAND, choose_init, forecast, input_K0
from runner.theory.init import Init, PyTorchInit
from runner.theory.measurements import sample_init


def test_forecast_is_kernel_flow_of_the_smallest_median_and_largest_input():
    act = activations.tanh()
    x = torch.tensor([[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.5, 0.5], [2.0, 2.0]])
    K0 = input_K0(x)  # |x|²/n0 = 0, 0.5, 1, 0.25, 4
    assert K0 == pytest.approx([0.0, 0.5, 4.0])
    init = Init("critical", C_W_first=0.7, C_W=1.3, C_b=0.05)
    fc = forecast(act, K0, init, layers=6)
    want = recursions.kernel_flow(act, 0.05, 1.3, K0, 6, C_W_first=0.7)
    np.testing.assert_allclose(np.array(fc.K), want, rtol=1e-6)
    assert np.array(fc.K)[:, 0] == pytest.approx(0.05 + 0.7 * K0)
    chi = recursions.chi_perp(act, want[:, :-1], 1.3)
    np.testing.assert_allclose(np.array(fc.chi_perp_product)[:, 1:], np.cumprod(chi, 1), rtol=1e-6)


def test_forecast_verdicts_name_the_layer_where_the_kernel_leaves_the_band():
    mrepu, repu = activations.mrepu(p=2), activations.repu(p=2)
    K0 = np.array([0.1, 0.5, 1.0])
    fc = forecast(mrepu, K0, Init("critical", 1.0, 1.0, 0.0), layers=8)
    K = recursions.kernel_flow(mrepu, 0.0, 1.0, K0, 8)
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


def test_the_forecast_says_when_the_output_starts_far_above_the_targets():
    """squareplus (class none, σ(0) = 1) on x2's standardized inputs: auto keeps the hidden kernel in
    band, but the output's variance (the last layer's kernel) is more than the band above the
    targets' mean square, and the line says so; ReLU there and MRePU on Burgers' inputs do not."""
    squareplus = activations.Formula("(z+sqrt(z*z+4))/2", name="squareplus")
    cases = [(squareplus, "task=x2", True), (activations.relu(), "task=x2", False),
             (activations.mrepu(), "task=burgers", False)]
    for act, task, fires in cases:
        exp = make_experiment(task, "task.n_collocation=500") if task == "task=burgers" else make_experiment(task)
        K0, layers = input_K0(exp.task.network_inputs()), exp.model.depth + 1
        init, note = choose_init(act, K0, layers)
        f = forecast(act, K0, init, layers, auto=True, note=note)
        largest_output = max(k[-1] for k in f.K)
        assert f.verdict == "stable" and f.output_far_above is fires, (act, f.line())
        assert ("output variance" in f.line()) is fires
        assert (largest_output > BAND * 1.0) is fires  # the targets' mean square is 1 (standardized)
