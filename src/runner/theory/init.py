"""An initialization as numbers: what a layer draws, and the variances the theory reads from it.

An `Init` holds the Gaussian variances (C_W_first, C_W, C_b) the kernel forecast uses and draws
the layers; `PyTorchInit` and `XavierInit` draw by the frameworks' rules and keep their Gaussian
equivalents. How a run arrives at these numbers (fixed in the config, or solved from the theory
by `init.C_W=auto`) is a scheme's business (runner.theory.schemes).

Every member draws from its own torch.Generator, seeded from (seed, member index), so member k
of an ensemble is bit-for-bit the single-member run with `ensemble.member_offset=k`.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import torch


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


def member_generator(seed: int, member: int) -> torch.Generator:
    """An independent random stream for one ensemble member (no overlap between seeds)."""
    state = np.random.SeedSequence([seed, member]).generate_state(2, dtype=np.uint64)
    return torch.Generator().manual_seed(int(state[0] % (2**63)))
