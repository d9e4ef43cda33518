"""How an ensemble member's weights and biases are drawn: the schemes conf/init/*.yaml name by
`_target_`, and the numbers a scheme resolves to for one run.

A scheme (`Gaussian`, `PyTorchDefault`, `Xavier`, or a user's own class with the same two
members) has `auto` (whether it solves for its values from the theory) and
`resolve(activation, K0, layers, in_dim, width) -> (Init, note)`: the numbers for this run's
activation, training inputs (K0 of the smallest, median and largest) and depth. An `Init` holds
the Gaussian variances the kernel forecast uses and draws the layers.

Every member draws from its own torch.Generator, seeded from (seed, member index), so member k
of an ensemble is bit-for-bit the single-member run with `ensemble.member_offset=k`.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import torch

from runner.checks import invalid, is_real, nonnegative, positive
from runner.theory.activations import Activation


@dataclass(frozen=True)
class Init:
    """A network's initialization as numbers, and how its layers are drawn.

    W ~ N(0, C_W / fan_in) in every layer but the first, which has C_W_first, and b ~ N(0, C_b)
    (the effective theory's convention). Subclasses draw by other rules (PyTorchInit, XavierInit);
    their numbers are then the Gaussian equivalents the kernel forecast uses.
    """

    scheme: str
    C_W_first: float
    C_W: float
    C_b: float

    def as_dict(self) -> dict:
        return asdict(self)

    def draw(self, fan_in: int, fan_out: int, gen: torch.Generator,
             first: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """One layer's weight (fan_in, fan_out) and bias (fan_out,), in float64 for exact
        statistics; `first`: the network's first layer (C_W_first)."""
        c_w = self.C_W_first if first else self.C_W
        w = torch.randn(fan_in, fan_out, generator=gen, dtype=torch.float64) * math.sqrt(c_w / fan_in)
        b = torch.randn(fan_out, generator=gen, dtype=torch.float64) * math.sqrt(self.C_b)
        return w, b


def uniform(shape: tuple[int, ...], bound: float, gen: torch.Generator) -> torch.Tensor:
    """U(-bound, bound) in float64."""
    return (torch.rand(*shape, generator=gen, dtype=torch.float64) * 2 - 1) * bound


@dataclass(frozen=True)
class PyTorchInit(Init):
    """nn.Linear's default: W, b ~ U(±1/sqrt(fan_in))."""

    def draw(self, fan_in, fan_out, gen, first=False):
        bound = 1.0 / math.sqrt(fan_in)
        return uniform((fan_in, fan_out), bound, gen), uniform((fan_out,), bound, gen)


@dataclass(frozen=True)
class XavierInit(Init):
    """Glorot uniform weights, zero biases."""

    def draw(self, fan_in, fan_out, gen, first=False):
        return (uniform((fan_in, fan_out), math.sqrt(6.0 / (fan_in + fan_out)), gen),
                torch.zeros(fan_out, dtype=torch.float64))


class Gaussian:
    """conf/init/critical.yaml: W ~ N(0, C_W/fan_in), b ~ N(0, C_b), the first layer N(0, C_W_first/n0).

    C_W: a number > 0, or `auto`: whatever is left null (C_W_first, C_b) is solved for from the
    theory, for this activation, the training inputs and the depth (runner.theory.forecast.choose_init).
    C_W_first: null follows C_W (auto's choice when C_W is auto). C_b: null is 0 (or auto's choice).
    """

    scheme = "critical"

    def __init__(self, C_W: float | str, C_W_first: float | None, C_b: float | None):
        if not (C_W == "auto" or (is_real(C_W) and C_W > 0)):
            raise invalid("C_W", C_W, "a number > 0, or auto (from the theory)")
        self.C_W = C_W if C_W == "auto" else float(C_W)
        self.C_W_first = None if C_W_first is None else positive("C_W_first", C_W_first)
        self.C_b = None if C_b is None else nonnegative("C_b", C_b)

    @property
    def auto(self) -> bool:
        return self.C_W == "auto"

    def resolve(self, activation: Activation, K0: np.ndarray, layers: int, in_dim: int,
                width: int) -> tuple[Init, str]:
        if self.auto:
            from runner.theory.forecast import choose_init

            return choose_init(activation, K0, layers, C_W_first=self.C_W_first, C_b=self.C_b)
        first = self.C_W if self.C_W_first is None else self.C_W_first
        return Init(self.scheme, first, self.C_W, self.C_b or 0.0), ""


class PyTorchDefault:
    """conf/init/pytorch.yaml: nn.Linear's default; forecast with its Gaussian-equivalent variances
    from the hidden layers' fan-in (Var U(±a) = a²/3; the output layer takes the hidden layers')."""

    scheme, auto = "pytorch", False

    def resolve(self, activation, K0, layers, in_dim, width) -> tuple[Init, str]:
        return PyTorchInit(self.scheme, 1 / 3, 1 / 3, 1 / (3 * width)), ""


class Xavier:
    """conf/init/xavier.yaml: Glorot uniform weights, zero biases; forecast with the Gaussian
    equivalents (Var = 2/(fan_in + fan_out), times fan_in)."""

    scheme, auto = "xavier", False

    def resolve(self, activation, K0, layers, in_dim, width) -> tuple[Init, str]:
        return XavierInit(self.scheme, 2 * in_dim / (in_dim + width), 1.0, 0.0), ""


def member_generator(seed: int, member: int) -> torch.Generator:
    """An independent random stream for one ensemble member (no overlap between seeds)."""
    state = np.random.SeedSequence([seed, member]).generate_state(2, dtype=np.uint64)
    return torch.Generator().manual_seed(int(state[0] % (2**63)))
