"""Criticality (PDLT ch. 5): an activation's universality class and its critical (C_b, C_W), measured.

χ∥/χ⊥ does not depend on C_W, so criticality needs a K* where it is 1; everything here is found
numerically from the kernel map and the susceptibilities (runner.theory.kernels), so a
researcher's own function is classified as a built-in is. `criticality(act)` computes the answer
once per Activation object.
"""

from __future__ import annotations

import math
import weakref
from dataclasses import asdict, dataclass

import numpy as np
import torch
from scipy.optimize import brentq

from runner.theory.activations import Activation
from runner.theory.kernels import chi_par, chi_perp, kernel_map


@dataclass(frozen=True)
class Criticality:
    """Answer of `critical_init`: the critical (C_b, C_W) and fixed point, or why none exists.

    `universality` is PDLT's class found numerically: scale-invariant (χ∥/χ⊥ = 1 for every K),
    K*=0 (σ(0) = 0, σ'(0) ≠ 0: criticality approached as K -> 0), half-stable (a nonzero K* with
    C_b ≥ 0 where both susceptibilities are 1) or none. `K_star` is None when any K is a fixed
    point (scale-invariant). `a1` is the K*=0 class's coefficient in K(l+1) = K + a1 K² + ...
    at criticality: a1 < 0 pulls the kernel to 0, a1 > 0 (MRePU, GELU, SiLU) pushes it away, so
    `stable` is False there. When `exists` is False, C_b and C_W are None and `reason` says why.
    """

    activation: str
    universality: str
    exists: bool
    C_b: float | None
    C_W: float | None
    K_star: float | None
    chi_ratio: float | None
    stable: bool | None = None
    a1: float | None = None
    reason: str = ""
    K_small: float | None = None       # the ends of the K range measured,
    K_large: float | None = None
    ratio_small_K: float | None = None  # and χ∥/χ⊥ there
    ratio_large_K: float | None = None

    def values(self) -> tuple[float, float]:
        """(C_b, C_W); raises ValueError with the reason where no criticality exists."""
        if not self.exists:
            raise ValueError(f"{self.activation}: no critical initialization: {self.reason}")
        return self.C_b, self.C_W

    def as_dict(self) -> dict:
        return asdict(self)

    def line(self) -> str:
        """'class K*=0, critical C_W 1' or 'class none, no criticality', for a console line."""
        if not self.exists:
            return f"class {self.universality}, no criticality"
        return f"class {self.universality}, critical C_W {self.C_W:.4g}" + (f", C_b {self.C_b:.4g}" if self.C_b else "")


def _a1(act: Activation, sigma1: float, K: float = 1e-3) -> float:
    """(K(l+1) − K)/K² at C_W = 1/σ'(0)², C_b = 0 and small K: PDLT's a1 = σ3/σ1 + (3/4)(σ2/σ1)²."""
    return (float(kernel_map(act, K, 0.0, 1.0 / sigma1**2)) - K) / K**2


def critical_init(act: Activation, K_range: tuple[float, float] = (1e-8, 1e3),
                  grid: int = 200, tol: float = 1e-7) -> Criticality:
    """The (C_b, C_W) that make χ∥ = χ⊥ = 1 at the kernel's fixed point, or a reason why none do.

    χ∥/χ⊥ does not depend on C_W, so criticality needs a K* where it is 1; then
    C_W = 1/<σ'²>_{K*} and C_b = K* − C_W<σ²>_{K*}, which must be ≥ 0. Checked in PDLT's order:
    scale-invariant, K*=0 with a1 < 0, a nonzero K* (half-stable), K*=0 with a1 ≥ 0, none.
    """
    Ks = np.logspace(math.log10(K_range[0]), math.log10(K_range[1]), grid)
    with np.errstate(all="ignore"):
        ratio = chi_par(act, Ks, 1.0) / chi_perp(act, Ks, 1.0)
    zero = torch.zeros((), dtype=torch.float64)
    s0, s1 = float(act(zero)), float(act.derivative(zero))
    ends = {"K_small": float(Ks[0]), "K_large": float(Ks[-1]),
            "ratio_small_K": float(ratio[0]), "ratio_large_K": float(ratio[-1])}

    def found(*answer, **more) -> Criticality:
        return Criticality(repr(act), *answer, **more, **ends)

    if np.all(np.isfinite(ratio)) and np.ptp(ratio) < tol * max(1.0, float(np.abs(ratio).max())):
        r = float(ratio.mean())
        if abs(r - 1) < tol:
            return found("scale-invariant", True, 0.0, 1.0 / float(chi_perp(act, 1.0, 1.0)),
                               None, r, stable=True)
        return found("none", False, None, None, None, r, reason=(
            f"χ∥/χ⊥ = {r:.6g} for every K (a homogeneous activation of degree ≠ 1), so no "
            "(C_b, C_W) makes both susceptibilities 1; the kernel explodes or collapses "
            "double-exponentially with depth"))
    k0 = abs(s0) < 1e-15 and abs(s1) > 1e-15
    a1 = _a1(act, s1) if k0 else None
    if k0 and a1 < 0:
        return found("K*=0", True, 0.0, 1.0 / s1**2, 0.0, 1.0, stable=True, a1=a1)
    gap = ratio - 1
    rejected = []
    # ratio -> 1 as K -> 0 for every smooth σ; sign flips of round-off size there are not roots
    big = np.maximum(np.abs(gap[:-1]), np.abs(gap[1:])) > 1e-6
    for i in np.flatnonzero(np.isfinite(gap[:-1]) & big & (np.sign(gap[:-1]) != np.sign(gap[1:]))):
        def f(logK: float) -> float:
            K = math.exp(logK)
            return float(chi_par(act, K, 1.0) / chi_perp(act, K, 1.0)) - 1

        K = math.exp(brentq(f, math.log(Ks[i]), math.log(Ks[i + 1]), xtol=1e-14))
        C_W = 1.0 / float(chi_perp(act, K, 1.0))
        C_b = K - C_W * float(kernel_map(act, K, 0.0, 1.0))
        if C_b >= -1e-9:
            return found("half-stable", True, max(C_b, 0.0), C_W, K, 1.0, stable=False,
                               a1=a1, reason="χ∥ = 1 at K* with dχ∥/dK ≠ 0: the kernel approaches "
                               "K* from one side and leaves it on the other")
        rejected.append(f"K={K:.4g} needs C_b={C_b:.4g}")
    if k0:
        return found("K*=0", True, 0.0, 1.0 / s1**2, 0.0, 1.0, stable=False, a1=a1,
                           reason=f"a1 = {a1:.4g} > 0: at C_W = {1 / s1**2:.4g} the kernel grows away "
                           "from K = 0 (K -> K + a1 K²); a nonzero fixed point needs C_W below it")
    reason = (f"χ∥/χ⊥ ≠ 1 for every K in [{K_range[0]:g}, {K_range[1]:g}] and σ(0) = {s0:.4g} ≠ 0"
              if not rejected else "χ∥ = χ⊥ only where the fixed point would need a negative bias "
              "variance (" + "; ".join(rejected) + ")")
    return found("none", False, None, None, None, None, reason=reason)


_MEASURED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def criticality(act: Activation) -> Criticality:
    """`critical_init(act)`, computed once per Activation object (the forecast, the card, the run
    record and the susceptibility task all ask for it)."""
    if act not in _MEASURED:
        _MEASURED[act] = critical_init(act)
    return _MEASURED[act]
