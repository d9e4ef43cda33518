"""The infinite-width kernel of an MLP at initialization (PDLT ch. 4-5), computed exactly.

Conventions: W ~ N(0, C_W/fan_in), b ~ N(0, C_b); `<f>_K` is E[f(z)] for z ~ N(0, K)
(runner.theory.gaussian); K0 = |x|²/n0. One input's kernel: K(1) = C_b + C_W_first K0,
K(l+1) = C_b + C_W <σ²>_K(l); its susceptibilities χ∥ = C_W d<σ²>_K/dK and χ⊥ = C_W <σ'²>_K; the
fixed points of the map. Every function integrates the same `Activation` object the networks use,
so the theory and the measurement never disagree about what σ is. Arrays broadcast: pass a
vector of C_W values and get one kernel flow per value in one call.
"""

from __future__ import annotations

import math
import numpy as np
import torch
from scipy.optimize import brentq

from runner.theory.activations import Activation
from runner.theory.gaussian import NODES, ArrayLike, K_FLOOR, as_output, as_tensor, expect, expect_joint


def sigma_moments(act: Activation, K: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """<σ²>_K, <σ⁴>_K and d<σ²>_K/dK.

    The derivative is Stein's form <(σ² − σ(0)²)(u² − 1)>/(2K), u = z/sqrt(K): no derivative of σ
    (kinks need no care) and, with σ(0)² subtracted (its average against u² − 1 is zero), no
    cancellation as K -> 0. Where σ(0) ≠ 0 the odd remainder still cancels to ~1e-16/sqrt(K), so
    K is floored at 1e-12 there.
    """
    s0 = float(act(torch.zeros((), dtype=torch.float64)))
    Kd = K.clamp_min(1e-12 if s0 else K_FLOOR)

    def integrands(z):
        s2 = act(z) ** 2
        return [s2, s2**2]

    s2, s4 = expect_joint(K, act.kinks, integrands)
    (ds,) = expect_joint(Kd, act.kinks, lambda z: [(act(z) ** 2 - s0**2) * (z**2 / Kd.unsqueeze(-1) - 1)])
    return s2, s4, ds / (2 * Kd)


def chi_par(act: Activation, K: ArrayLike, C_W: ArrayLike):
    """Parallel susceptibility χ∥(K) = C_W d<σ²>_K/dK = (C_W/2K²)<σ²(z² − K)>_K."""
    Kt, C = as_tensor(K), as_tensor(C_W)
    Kb, Cb = torch.broadcast_tensors(Kt, C)
    return as_output(Cb * sigma_moments(act, Kb)[2], Kb.dim() == 0)


def chi_perp(act: Activation, K: ArrayLike, C_W: ArrayLike, nodes: int = NODES):
    """Perpendicular susceptibility χ⊥(K) = C_W <σ'(z)²>_K."""
    Kt, C = as_tensor(K), as_tensor(C_W)
    Kb, Cb = torch.broadcast_tensors(Kt, C)
    return as_output(Cb * expect(Kb, act.kinks, lambda z: act.derivative(z) ** 2, n=nodes)[0], Kb.dim() == 0)


def kernel_map(act: Activation, K: ArrayLike, C_b: ArrayLike, C_W: ArrayLike):
    """One layer of the single-input kernel recursion: C_b + C_W <σ²>_K."""
    Kt = as_tensor(K)
    s2 = expect(Kt, act.kinks, lambda z: act(z) ** 2)[0]
    out = as_tensor(C_b) + as_tensor(C_W) * s2
    return as_output(out, out.dim() == 0)


def first_layer(C_b: ArrayLike, C_W: ArrayLike, K0: ArrayLike,
                C_W_first: ArrayLike | None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Broadcast (C_b, C_W, K(1)) with K(1) = C_b + C_W_first K0 (C_W_first defaults to C_W)."""
    first = C_W if C_W_first is None else C_W_first
    Cb, Cw, Cf, K = torch.broadcast_tensors(as_tensor(C_b), as_tensor(C_W), as_tensor(first), as_tensor(K0))
    return Cb, Cw, Cb + Cf * K


def kernel_flow(act: Activation, C_b: ArrayLike, C_W: ArrayLike, K0: ArrayLike, depth: int,
                C_W_first: ArrayLike | None = None, nodes: int = NODES) -> np.ndarray:
    """K(l) for l = 1..depth, shape broadcast(C_b, C_W, K0, C_W_first) + (depth,).

    K(1) = C_b + C_W_first K0 with K0 = |x|²/n0 (C_W_first: the first layer's weight variance,
    C_W unless given), and K(l+1) = C_b + C_W <σ²>_{K(l)}. An exploded kernel reads inf (or nan
    where sigma itself is undefined at infinity).
    """
    Cb, Cw, K = first_layer(C_b, C_W, K0, C_W_first)
    out = [K]
    for _ in range(depth - 1):
        K = Cb + Cw * expect(K, act.kinks, lambda z: act(z) ** 2, n=nodes)[0]
        out.append(K)
    return torch.stack(out, -1).numpy()


def fixed_points(act: Activation, C_b: float, C_W: float, K_range: tuple[float, float] = (1e-10, 1e8),
                 grid: int = 400) -> list[dict]:
    """Nonzero fixed points K* = C_b + C_W<σ²>_{K*} in K_range, each with χ∥(K*) and stability.

    Found as sign changes of log(C_b + C_W<σ²>_K) − log K on a log grid, refined by Brent's method;
    stable where χ∥(K*) < 1 (a perturbation of the kernel shrinks layer by layer).
    """
    Ks = np.logspace(math.log10(K_range[0]), math.log10(K_range[1]), grid)
    with np.errstate(divide="ignore", invalid="ignore"):
        gap = np.log(kernel_map(act, Ks, C_b, C_W)) - np.log(Ks)

    def h(logK: float) -> float:
        return math.log(kernel_map(act, math.exp(logK), C_b, C_W)) - logK

    found = []
    for i in np.flatnonzero(np.isfinite(gap[:-1]) & np.isfinite(gap[1:]) & (np.sign(gap[:-1]) != np.sign(gap[1:]))):
        K = math.exp(brentq(h, math.log(Ks[i]), math.log(Ks[i + 1]), xtol=1e-14))
        cp = chi_par(act, K, C_W)
        found.append({"K": K, "chi_par": cp, "chi_perp": chi_perp(act, K, C_W), "stable": cp < 1})
    return found


def lowest_fixed_point(act: Activation, C_b: float, C_W: ArrayLike,
                       K_range: tuple[float, float] = (1e-10, 1e8), grid: int = 400,
                       steps: int = 60) -> np.ndarray:
    """The smallest nonzero fixed point K* for each C_W (NaN where none lies in K_range).

    Vectorized over C_W: one log grid of <σ²>_K locates the first sign change of
    C_b + C_W<σ²>_K − K, then bisection in log K refines every C_W at once.
    """
    Cw = np.atleast_1d(np.asarray(C_W, dtype=float))
    Ks = np.logspace(math.log10(K_range[0]), math.log10(K_range[1]), grid)
    s2 = np.asarray(kernel_map(act, Ks, 0.0, 1.0))
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        gap = np.log(C_b + Cw[:, None] * s2) - np.log(Ks)
    change = np.isfinite(gap[:, :-1]) & np.isfinite(gap[:, 1:]) & (np.sign(gap[:, :-1]) != np.sign(gap[:, 1:]))
    has = change.any(1)
    first = change.argmax(1)
    lo, hi = np.log(Ks[first]), np.log(Ks[first + 1])
    sign_lo = np.sign(gap[np.arange(len(Cw)), first])
    for _ in range(steps):
        mid = (lo + hi) / 2
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            g = np.log(np.asarray(kernel_map(act, np.exp(mid), C_b, Cw))) - mid
        same = np.sign(g) == sign_lo
        lo, hi = np.where(same, mid, lo), np.where(same, hi, mid)
    out = np.where(has, np.exp((lo + hi) / 2), np.nan)
    return out.reshape(np.shape(C_W))


# Closed forms for RePU_p(z) = max(0, z)^p, from <z^{2m}; z > 0>_K = (2m-1)!! K^m / 2.

def _double_factorial(k: int) -> int:
    return math.prod(range(k, 0, -2)) if k > 0 else 1


def repu_kernel_map(p: int, K: ArrayLike, C_b: float = 0.0, C_W: float = 1.0):
    """C_b + C_W <RePU_p²>_K = C_b + C_W (2p−1)!! K^p / 2."""
    return C_b + C_W * _double_factorial(2 * p - 1) * np.asarray(K, dtype=float) ** p / 2


def repu_chi_par(p: int, K: ArrayLike, C_W: float = 1.0):
    """χ∥ = C_W p (2p−1)!! K^{p−1} / 2."""
    return C_W * p * _double_factorial(2 * p - 1) * np.asarray(K, dtype=float) ** (p - 1) / 2


def repu_chi_perp(p: int, K: ArrayLike, C_W: float = 1.0):
    """χ⊥ = C_W p² (2p−3)!! K^{p−1} / 2."""
    return C_W * p**2 * _double_factorial(2 * p - 3) * np.asarray(K, dtype=float) ** (p - 1) / 2


def repu_chi_ratio(p: int) -> float:
    """χ∥/χ⊥ = (2p−1)/p for every K: 1 only for ReLU, > 1 for every p ≥ 2."""
    return (2 * p - 1) / p
