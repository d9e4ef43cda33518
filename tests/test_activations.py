import math

import pytest
import torch

from conftest import BUILTIN_ACTIVATIONS
from runner.checks import ConfigError
from runner.theory import activations

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
