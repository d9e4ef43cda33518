"""How an ensemble member's weights and biases are drawn.

Every member draws from its own torch.Generator, seeded from (seed, member index), so
member k of an ensemble is bit-for-bit the single-member run with `ensemble.member_offset=k`.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import torch

SCHEMES = ("critical", "pytorch", "xavier")


@dataclass(frozen=True)
class Init:
    """A network's initialization as numbers: cfg.init resolved (runner.theory.forecast.plan_init).

    critical: W ~ N(0, C_W / fan_in) in every layer but the first, which has C_W_first, and
    b ~ N(0, C_b). pytorch and xavier draw by their own rules; their numbers are the Gaussian
    equivalents the kernel forecast uses.
    """

    scheme: str
    C_W_first: float
    C_W: float
    C_b: float

    def as_dict(self) -> dict:
        return asdict(self)


def member_generator(seed: int, member: int) -> torch.Generator:
    """An independent random stream for one ensemble member (no overlap between seeds)."""
    state = np.random.SeedSequence([seed, member]).generate_state(2, dtype=np.uint64)
    return torch.Generator().manual_seed(int(state[0] % (2**63)))


def draw_layer(scheme: str, fan_in: int, fan_out: int, gen: torch.Generator,
               C_W: float, C_b: float) -> tuple[torch.Tensor, torch.Tensor]:
    """One layer's weight (fan_in, fan_out) and bias (fan_out,), in float64 for exact statistics.

    critical: W ~ N(0, C_W / fan_in), b ~ N(0, C_b) (the convention of the effective theory);
    pytorch: nn.Linear's default, U(+-1/sqrt(fan_in)) for both; xavier: Glorot uniform, b = 0
    (these two ignore C_W and C_b).
    """
    if scheme == "critical":
        w = torch.randn(fan_in, fan_out, generator=gen, dtype=torch.float64) * math.sqrt(C_W / fan_in)
        b = torch.randn(fan_out, generator=gen, dtype=torch.float64) * math.sqrt(C_b)
    elif scheme == "pytorch":
        bound = 1.0 / math.sqrt(fan_in)
        w = (torch.rand(fan_in, fan_out, generator=gen, dtype=torch.float64) * 2 - 1) * bound
        b = (torch.rand(fan_out, generator=gen, dtype=torch.float64) * 2 - 1) * bound
    elif scheme == "xavier":
        bound = math.sqrt(6.0 / (fan_in + fan_out))
        w = (torch.rand(fan_in, fan_out, generator=gen, dtype=torch.float64) * 2 - 1) * bound
        b = torch.zeros(fan_out, dtype=torch.float64)
    else:
        raise ValueError(f"init.scheme={scheme!r}: choose one of {', '.join(SCHEMES)}")
    return w, b
