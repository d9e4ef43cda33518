"""Finite-width corrections at initialization (PDLT ch. 4): the four-point vertex and the kernel to
next-to-leading order in 1/width.

Conventions as runner.theory.kernels. Given layer l-1 the preactivations of layer l are exactly
N(0, Ĝ(l)), Ĝ a random variance with E[Ĝ] = K(l) + O(1/n) and Var(Ĝ) = V(l)/n_{l-1}: V is the
vertex, and its effect on E[z²] is the NLO kernel.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from runner.theory.activations import Activation
from runner.theory.gaussian import ArrayLike, expect, expect_joint
from runner.theory.kernels import first_layer, sigma_moments


def _curvature(act: Activation, K: torch.Tensor) -> torch.Tensor:
    """d²<σ²>_K/dK² = <σ² He4(u)>/(4K²), He4(u) = u⁴ − 6u² + 3 (Stein's identity twice)."""
    s0 = float(act(torch.zeros((), dtype=torch.float64)))
    Kd = K.clamp_min(1e-8 if s0 else 1e-150)

    def integrand(z):
        u2 = z**2 / Kd.unsqueeze(-1)
        return [(act(z) ** 2 - s0**2) * (u2**2 - 6 * u2 + 3)]

    return expect_joint(Kd, act.kinks, integrand)[0] / (4 * Kd**2)


def _width_ratios(widths: int | Sequence[int], depth: int) -> torch.Tensor:
    """n_l / n_{l-1} for l = 1..depth-1 (the factor multiplying V(l) in V(l+1))."""
    if isinstance(widths, (int, np.integer)):
        return torch.ones(max(depth - 1, 0), dtype=torch.float64)
    n = [float(v) for v in widths]
    if len(n) < depth:
        raise ValueError(f"widths has {len(n)} entries; need the {depth} hidden widths n_1..n_depth")
    return torch.tensor([n[l] / n[l - 1] for l in range(1, depth)], dtype=torch.float64)


def vertex_flow(act: Activation, C_b: ArrayLike, C_W: ArrayLike, K0: ArrayLike, depth: int,
                widths: int | Sequence[int], C_W_first: ArrayLike | None = None) -> np.ndarray:
    """Leading-order four-point vertex V(l), l = 1..depth (PDLT's convention, see below).

    The connected four-point function of one layer-l neuron is E[z⁴] − 3E[z²]² = 3V(l)/n_{l-1}.
    V(1) = 0 and V(l+1) = C_W²(<σ⁴> − <σ²>²)_{K(l)} + χ∥(K(l))² (n_l/n_{l-1}) V(l). `widths` is
    one hidden width or the list n_1..n_depth (only their ratios enter V itself).
    """
    Cb, Cw, K = first_layer(C_b, C_W, K0, C_W_first)
    ratios = _width_ratios(widths, depth)
    V = torch.zeros_like(K)
    out = [V]
    for l in range(depth - 1):
        s2, s4, ds2 = sigma_moments(act, K)
        V = Cw**2 * (s4 - s2**2) + (Cw * ds2) ** 2 * ratios[l] * V
        K = Cb + Cw * s2
        out.append(V)
    return torch.stack(out, -1).numpy()


def kernel_flow_nlo(act: Activation, C_b: ArrayLike, C_W: ArrayLike, K0: ArrayLike, depth: int,
                    widths: int | Sequence[int], C_W_first: ArrayLike | None = None) -> np.ndarray:
    """E[z²] per layer to first order in 1/width: the kernel recursion with its 1/n correction.

    Given layer l-1 the preactivations of layer l are exactly N(0, Ĝ(l)), with E[Ĝ] = K̄(l) and
    Var(Ĝ) = V(l)/n_{l-1}, so K̄(l+1) = C_b + C_W(<σ²>_{K̄} + ½ d²<σ²>/dK² · V(l)/n_{l-1}) + O(1/n²).
    The correction is what makes deep RePU networks leave the leading-order recursion.
    """
    Cb, Cw, K = first_layer(C_b, C_W, K0, C_W_first)
    n = [float(widths)] * depth if isinstance(widths, (int, np.integer)) else [float(v) for v in widths]
    ratios = _width_ratios(widths, depth)
    Kbar = K
    V = torch.zeros_like(K)
    out = [Kbar]
    for l in range(depth - 1):
        s2, s4, ds2 = sigma_moments(act, K)
        var_G = V / n[l - 1] if l > 0 else torch.zeros_like(V)  # Var(Ĝ(l)) = V(l)/n_{l-1}
        Kbar = Cb + Cw * (expect(Kbar, act.kinks, lambda z: act(z) ** 2)[0]
                          + 0.5 * _curvature(act, Kbar) * var_G)
        V = Cw**2 * (s4 - s2**2) + (Cw * ds2) ** 2 * ratios[l] * V
        K = Cb + Cw * s2
        out.append(Kbar)
    return torch.stack(out, -1).numpy()


def excess_kurtosis(V: np.ndarray, K: np.ndarray, n_prev: ArrayLike) -> np.ndarray:
    """The normalized four-point function (E[z⁴] − 3E[z²]²)/E[z²]² = 3V/(n_{l-1} K²)."""
    return 3 * np.asarray(V) / (np.asarray(n_prev, dtype=float) * np.asarray(K) ** 2)
