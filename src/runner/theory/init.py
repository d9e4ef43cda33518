"""An initialization as numbers: what a layer draws, and the variances the theory reads from it.

An `Init` holds the Gaussian variances (C_W_first, C_W, C_b) the kernel forecast uses and draws
the layers; `PyTorchInit` and `XavierInit` draw by the frameworks' rules and keep their Gaussian
equivalents. How a run arrives at these numbers (fixed in the config, or solved from the theory
by `init.C_W=auto`) is a scheme's business (runner.theory.schemes).

Every member draws from its own torch.Generator, seeded from (seed, member index), so member k
of an ensemble is bit-for-bit the single-member run with `ensemble.member_offset=k`.

The readout (the output layer) may carry variances of its own, C_W_last and C_b_last, which
`init.C_W=auto` sets where the output would start far above the targets (runner.theory.schemes).
The readout is drawn as every other layer and then scaled to them, so a network without them
draws exactly what it drew before they existed, by any layer rule (a subclass's `draw`).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np
import torch


@dataclass(frozen=True)
class Init:
    """A network's initialization as numbers, and how its layers are drawn.

    W ~ N(0, C_W / fan_in) in every layer but the first, which has C_W_first, and b ~ N(0, C_b)
    (the effective theory's convention). Subclasses draw by other rules (PyTorchInit, XavierInit);
    their numbers are then the Gaussian equivalents the kernel forecast uses. C_W_last and C_b_last,
    where set, are the readout's (the last layer's) variances, reached by scaling its drawn weights
    and biases (`layers`); None follows C_W and C_b. Keyword-only, so a subclass may add fields.
    """

    scheme: str
    C_W_first: float
    C_W: float
    C_b: float
    C_W_last: float | None = field(default=None, kw_only=True)
    C_b_last: float | None = field(default=None, kw_only=True)

    def __post_init__(self):
        if self.C_b_last and not self.C_b:
            raise ValueError(f"C_b_last={self.C_b_last} needs C_b > 0: the readout's bias is the drawn one, scaled")

    def as_dict(self) -> dict:
        """The numbers by name; C_W_last and C_b_last only where set (a readout of its own)."""
        return {key: value for key, value in asdict(self).items()
                if value is not None or key not in ("C_W_last", "C_b_last")}

    def layers(self, dims: list[int], gen: torch.Generator) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Every layer (weight, bias) of one network of sizes `dims` (input, hidden..., output), in
        order from one stream, each by `draw`; the readout then scaled to C_W_last and C_b_last."""
        drawn = [self.draw(fan_in, fan_out, gen, first=i == 0)
                 for i, (fan_in, fan_out) in enumerate(zip(dims[:-1], dims[1:]))]
        w, b = drawn[-1]
        if self.C_W_last is not None:
            w = w * math.sqrt(self.C_W_last / self.C_W)
        if self.C_b_last is not None and self.C_b:
            b = b * math.sqrt(self.C_b_last / self.C_b)
        drawn[-1] = (w, b)
        return drawn

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
