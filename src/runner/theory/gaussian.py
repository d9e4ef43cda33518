"""Gaussian expectations <f>_K = E[f(z)], z ~ N(0, K): the one integral every theory quantity is made of.

Gauss-Legendre quadrature in u = z/sqrt(K) on [-U, U], split at 0 and at every kink of f (a point
where f or a derivative jumps, moved to u = kink/sqrt(K)), so piecewise-polynomial integrands
(ReLU, RePU, MRePU and their derivatives) integrate to round-off and smooth ones to ~1e-13
relative for moderate K. Arrays broadcast: a tensor of K gives a tensor of expectations in one
pass. This module knows nothing of networks; kernels, susceptibilities, the vertex and the NTK
are built on it (runner.theory.kernels, finite_width, ntk).
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Callable, Sequence

import numpy as np
import torch

U_MAX = 13.0        # |u| beyond this holds < 1e-37 of the Gaussian mass
NODES = 200         # Gauss-Legendre nodes per piece
K_FLOOR = 1e-300    # K = 0 is evaluated here (sigma(0) exactly for smooth sigma)

ArrayLike = float | np.ndarray | Sequence[float]


@lru_cache(maxsize=8)
def _legendre(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    x, w = np.polynomial.legendre.leggauss(n)
    return torch.from_numpy(x), torch.from_numpy(w)


def _nodes(K: torch.Tensor, kinks: Sequence[float], n: int = NODES) -> tuple[torch.Tensor, torch.Tensor]:
    """Standard-normal nodes u and weights (density included), shape K.shape + (pieces * n,).

    Breakpoints are -U, 0, every kink at u = kink/sqrt(K) (clamped into [-U, U]) and U; a kink
    far outside the bulk gives a zero-length piece that contributes nothing.
    """
    points = sorted({0.0, *map(float, kinks)})
    root = K.clamp_min(K_FLOOR).sqrt().unsqueeze(-1)
    inner = [torch.zeros_like(root) if c == 0 else (c / root).clamp(-U_MAX, U_MAX) for c in points]
    edges = [torch.full_like(root, -U_MAX), *inner, torch.full_like(root, U_MAX)]
    x, w = _legendre(n)
    us, ws = [], []
    for a, b in zip(edges[:-1], edges[1:]):
        half = (b - a) / 2
        u = a + half * (x + 1)
        us.append(u)
        ws.append(half * w * torch.exp(-u**2 / 2) / math.sqrt(2 * math.pi))
    return torch.cat(us, -1), torch.cat(ws, -1)


def as_tensor(K: ArrayLike) -> torch.Tensor:
    """K (a number or an array) as a float64 tensor."""
    return torch.as_tensor(np.asarray(K, dtype=np.float64))


def as_output(t: torch.Tensor, scalar: bool) -> float | np.ndarray:
    """A result tensor as a float (scalar inputs) or a numpy array."""
    a = t.detach().numpy()
    return float(a) if scalar else a


def expect(K: torch.Tensor, kinks: Sequence[float], *fs: Callable[[torch.Tensor], torch.Tensor],
           n: int = NODES) -> list[torch.Tensor]:
    """<f>_K for several integrands at once, sharing nodes; non-finite K gives inf (exploded)."""
    return expect_joint(K, kinks, lambda z: [f(z) for f in fs], n)


def expect_joint(K: torch.Tensor, kinks: Sequence[float],
                 g: Callable[[torch.Tensor], list[torch.Tensor]], n: int = NODES) -> list[torch.Tensor]:
    """<g_i>_K for integrands g(z) = [g_1(z), ...] computed together (one pass of autograd).

    z has shape K.shape + (nodes,): an integrand that needs K itself broadcasts K.unsqueeze(-1).
    """
    u, w = _nodes(K, kinks, n)
    z = K.clamp_min(0).sqrt().unsqueeze(-1) * u
    return [torch.where(torch.isfinite(K), (w * v).sum(-1), torch.inf) for v in g(z)]


def gaussian_expectation(f: Callable[[torch.Tensor], torch.Tensor], K: ArrayLike,
                         kinks: Sequence[float] | None = None, nodes: int = NODES) -> float | np.ndarray:
    """<f(z)>_K for z ~ N(0, K); f maps a float64 tensor elementwise (an Activation works).

    `kinks` are points where f or a derivative jumps (default: f.kinks for an Activation).
    Returns a float for scalar K, else an array of K's shape.
    """
    Kt = as_tensor(K)
    kinks = getattr(f, "kinks", ()) if kinks is None else kinks
    return as_output(expect(Kt, kinks, f, n=nodes)[0], Kt.dim() == 0)
