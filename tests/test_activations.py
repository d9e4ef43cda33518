import math

import pytest
import torch

from conftest import BUILTIN_ACTIVATIONS
from runner.checks import ConfigError
from runner.theory import activations
from runner.theory.criticality import criticality

pytestmark = pytest.mark.numerics  # compares numbers with references or across code paths

Z = torch.linspace(-3, 3, 601, dtype=torch.float64)


def closed_forms():
    erf = torch.special.erf
    phi = lambda z: torch.exp(-z**2 / 2) / math.sqrt(2 * math.pi)  # noqa: E731
    sig = lambda z: 1 / (1 + torch.exp(-z))  # noqa: E731
    return {
        "relu": (lambda z: torch.where(z > 0, z, 0 * z), lambda z: (z > 0).double()),
        "leaky_relu": (lambda z: torch.where(z > 0, z, 0.01 * z), lambda z: torch.where(z > 0, torch.ones_like(z), torch.full_like(z, 0.01))),
        "tanh": (torch.tanh, lambda z: 1 - torch.tanh(z) ** 2),
        "sin": (torch.sin, torch.cos),
        "gelu": (lambda z: z * 0.5 * (1 + erf(z / math.sqrt(2))),
                 lambda z: 0.5 * (1 + erf(z / math.sqrt(2))) + z * phi(z)),
        "silu": (lambda z: z * sig(z), lambda z: sig(z) * (1 + z * (1 - sig(z)))),
        "softplus": (lambda z: torch.log1p(torch.exp(z)), sig),
        "sigmoid": (sig, lambda z: sig(z) * (1 - sig(z))),
        "elu": (lambda z: torch.where(z > 0, z, torch.exp(z) - 1), lambda z: torch.where(z > 0, 1.0, torch.exp(z))),
        "repu": (lambda z: torch.clamp(z, min=0) ** 2, lambda z: 2 * torch.clamp(z, min=0)),
        "mrepu": (lambda z: z * torch.clamp(z + 1, min=0) ** 2,
                  lambda z: torch.clamp(z + 1, min=0) ** 2 + 2 * z * torch.clamp(z + 1, min=0)),
    }


@pytest.mark.parametrize("name", BUILTIN_ACTIVATIONS)
def test_values_and_derivatives_match_closed_forms(name):
    f, df = closed_forms()[name]
    act = getattr(activations, name)()
    away_from_kinks = torch.ones_like(Z, dtype=torch.bool)
    for k in act.kinks:
        away_from_kinks &= (Z - k).abs() > 1e-9
    torch.testing.assert_close(act(Z), f(Z), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(act.derivative(Z)[away_from_kinks], df(Z)[away_from_kinks],
                               rtol=1e-10, atol=1e-12)


def test_mrepu_is_linear_at_zero_and_kinked_at_minus_shift():
    act = activations.mrepu(p=3, shift=1.0)
    z0 = torch.zeros(1, dtype=torch.float64)
    assert act(z0).item() == 0.0 and act.derivative(z0).item() == pytest.approx(1.0)
    assert act.kinks == (-1.0,)
    left = torch.tensor([-1.5, -1.0001], dtype=torch.float64)
    assert torch.all(act(left) == 0)


@pytest.mark.parametrize("bad", [0, -1, 2.5, "x"])
def test_repu_power_must_be_positive_integer(bad):
    with pytest.raises(ConfigError, match=r"^p=.* is invalid: must be an integer >= 1$"):
        activations.repu(p=bad)


@pytest.mark.parametrize("formula,builtin", [
    ("max(z, 0)", "relu"), ("relu(z)", "relu"), ("max(z, 0.01*z)", "leaky_relu"), ("tanh(z)", "tanh"),
    ("z*0.5*(1 + erf(z/sqrt(2)))", "gelu"), ("z*sigmoid(z)", "silu"), ("softplus(z)", "softplus"),
    ("min(z, 0)*0 + sigmoid(z)", "sigmoid"), ("z*max(0, z + 1)**2", "mrepu")])
def test_a_formula_is_the_builtin_it_writes(formula, builtin):
    """The expression engine's activation functions, against the built-ins, values and derivatives;
    and the theory measures the same class and critical C_W of both."""
    act, ref = activations.Formula(formula), getattr(activations, builtin)()
    z = Z
    for kink in (0.0, *ref.kinks):  # at a kink the derivative is a convention (and differs between kernel sets)
        z = z[(z - kink).abs() > 1e-9]
    torch.testing.assert_close(act(Z), ref(Z), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(act.derivative(z), ref.derivative(z), rtol=1e-10, atol=1e-12)
    c, r = criticality(act), criticality(ref)
    assert c.universality == r.universality and c.exists == r.exists
    if r.exists:
        assert c.C_W == pytest.approx(r.C_W, rel=1e-6) and c.C_b == pytest.approx(r.C_b, abs=1e-6)


def test_a_python_function_and_its_keyword_arguments():
    act = activations.Function("torch.nn.functional.leaky_relu", negative_slope=0.2)
    assert act.name == "leaky_relu" and act.params == {"negative_slope": 0.2}
    torch.testing.assert_close(act(Z), activations.leaky_relu(slope=0.2)(Z), rtol=0, atol=0)


@pytest.mark.parametrize("make,message", [
    (lambda: activations.Formula("1/z"), ": formula(1/z) is not finite at 0: σ(0) = inf"),
    (lambda: activations.Formula("sqrt(z)"), ": formula(sqrt(z)) is not defined on all of R: σ(-0.01) = nan"),
    (lambda: activations.Formula("z*beta"), "formula='z*beta' is invalid: 'z*beta': unknown name 'beta'"),
    (lambda: activations.Formula("z", gamma=2.0), "gamma is not a parameter of the formula 'z'"),
    (lambda: activations.Formula("3"), "formula='3' is invalid: it does not mention z"),
    (lambda: activations.Function("nope.mish"), "fn='nope.mish' cannot be imported: ModuleNotFoundError"),
    (lambda: activations.Function("torch.sum"), ": sum() is not elementwise"),
    (lambda: activations.Activation("kinky", torch.tanh, kinks=["a"]), "kinks=['a'] is invalid"),
])
def test_a_function_the_theory_cannot_take_is_refused_in_one_line(make, message):
    with pytest.raises(ConfigError) as err:
        make()
    assert str(err.value).startswith(message) and "\n" not in str(err.value)
