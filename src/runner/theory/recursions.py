"""The infinite-width effective theory of an MLP at initialization (PDLT ch. 4-5), computed exactly.

Conventions: W ~ N(0, C_W/fan_in), b ~ N(0, C_b); `<f>_K` is E[f(z)] for z ~ N(0, K); K0 = |x|²/n0.
Every function integrates the same `Activation` object the networks use, so the theory and the
measurement never disagree about what sigma is. Arrays broadcast: pass a vector of C_W values
and get one kernel flow per value in one call.

Gaussian expectations use Gauss-Legendre quadrature in u = z/sqrt(K) on [-U, U], split at 0 and at
every kink of sigma (moved to u = kink/sqrt(K)), so piecewise-polynomial activations (ReLU, RePU,
MRePU) integrate to round-off and smooth ones to ~1e-13 relative for moderate K.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import Callable, Sequence

import numpy as np
import torch
from scipy.optimize import brentq

from runner.theory.activations import Activation

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


def _as_tensor(K: ArrayLike) -> torch.Tensor:
    return torch.as_tensor(np.asarray(K, dtype=np.float64))


def _out(t: torch.Tensor, scalar: bool):
    a = t.detach().numpy()
    return float(a) if scalar else a


def _expect(K: torch.Tensor, kinks: Sequence[float], *fs: Callable[[torch.Tensor], torch.Tensor],
            n: int = NODES) -> list[torch.Tensor]:
    """<f>_K for several integrands at once, sharing nodes; non-finite K gives inf (exploded)."""
    return _expect_joint(K, kinks, lambda z: [f(z) for f in fs], n)


def _expect_joint(K: torch.Tensor, kinks: Sequence[float],
                  g: Callable[[torch.Tensor], list[torch.Tensor]], n: int = NODES) -> list[torch.Tensor]:
    """<g_i>_K for integrands g(z) = [g_1(z), ...] computed together (one pass of autograd)."""
    u, w = _nodes(K, kinks, n)
    z = K.clamp_min(0).sqrt().unsqueeze(-1) * u
    return [torch.where(torch.isfinite(K), (w * v).sum(-1), torch.inf) for v in g(z)]


def gaussian_expectation(f: Callable[[torch.Tensor], torch.Tensor], K: ArrayLike,
                         kinks: Sequence[float] | None = None, nodes: int = NODES):
    """<f(z)>_K for z ~ N(0, K); f maps a float64 tensor elementwise (an Activation works).

    `kinks` are points where f or a derivative jumps (default: f.kinks for an Activation).
    Returns a float for scalar K, else an array of K's shape.
    """
    Kt = _as_tensor(K)
    kinks = getattr(f, "kinks", ()) if kinks is None else kinks
    return _out(_expect(Kt, kinks, f, n=nodes)[0], Kt.dim() == 0)


def _sigma_moments(act: Activation, K: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
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

    s2, s4 = _expect_joint(K, act.kinks, integrands)
    (ds,) = _expect_joint(Kd, act.kinks, lambda z: [(act(z) ** 2 - s0**2) * (z**2 / Kd.unsqueeze(-1) - 1)])
    return s2, s4, ds / (2 * Kd)


def _curvature(act: Activation, K: torch.Tensor) -> torch.Tensor:
    """d²<σ²>_K/dK² = <σ² He4(u)>/(4K²), He4(u) = u⁴ − 6u² + 3 (Stein's identity twice)."""
    s0 = float(act(torch.zeros((), dtype=torch.float64)))
    Kd = K.clamp_min(1e-8 if s0 else 1e-150)

    def integrand(z):
        u2 = z**2 / Kd.unsqueeze(-1)
        return [(act(z) ** 2 - s0**2) * (u2**2 - 6 * u2 + 3)]

    return _expect_joint(Kd, act.kinks, integrand)[0] / (4 * Kd**2)


def chi_par(act: Activation, K: ArrayLike, C_W: ArrayLike):
    """Parallel susceptibility χ∥(K) = C_W d<σ²>_K/dK = (C_W/2K²)<σ²(z² − K)>_K."""
    Kt, C = _as_tensor(K), _as_tensor(C_W)
    Kb, Cb = torch.broadcast_tensors(Kt, C)
    return _out(Cb * _sigma_moments(act, Kb)[2], Kb.dim() == 0)


def chi_perp(act: Activation, K: ArrayLike, C_W: ArrayLike, nodes: int = NODES):
    """Perpendicular susceptibility χ⊥(K) = C_W <σ'(z)²>_K."""
    Kt, C = _as_tensor(K), _as_tensor(C_W)
    Kb, Cb = torch.broadcast_tensors(Kt, C)
    return _out(Cb * _expect(Kb, act.kinks, lambda z: act.derivative(z) ** 2, n=nodes)[0], Kb.dim() == 0)


def kernel_map(act: Activation, K: ArrayLike, C_b: ArrayLike, C_W: ArrayLike):
    """One layer of the single-input kernel recursion: C_b + C_W <σ²>_K."""
    Kt = _as_tensor(K)
    s2 = _expect(Kt, act.kinks, lambda z: act(z) ** 2)[0]
    out = _as_tensor(C_b) + _as_tensor(C_W) * s2
    return _out(out, out.dim() == 0)


def _first_layer(C_b: ArrayLike, C_W: ArrayLike, K0: ArrayLike, C_W_first: ArrayLike | None):
    """Broadcast (C_b, C_W, K(1)) with K(1) = C_b + C_W_first K0 (C_W_first defaults to C_W)."""
    first = C_W if C_W_first is None else C_W_first
    Cb, Cw, Cf, K = torch.broadcast_tensors(_as_tensor(C_b), _as_tensor(C_W), _as_tensor(first), _as_tensor(K0))
    return Cb, Cw, Cb + Cf * K


def kernel_flow(act: Activation, C_b: ArrayLike, C_W: ArrayLike, K0: ArrayLike, depth: int,
                C_W_first: ArrayLike | None = None, nodes: int = NODES) -> np.ndarray:
    """K(l) for l = 1..depth, shape broadcast(C_b, C_W, K0, C_W_first) + (depth,).

    K(1) = C_b + C_W_first K0 with K0 = |x|²/n0 (C_W_first: the first layer's weight variance,
    C_W unless given), and K(l+1) = C_b + C_W <σ²>_{K(l)}. An exploded kernel reads inf (or nan
    where sigma itself is undefined at infinity).
    """
    Cb, Cw, K = _first_layer(C_b, C_W, K0, C_W_first)
    out = [K]
    for _ in range(depth - 1):
        K = Cb + Cw * _expect(K, act.kinks, lambda z: act(z) ** 2, n=nodes)[0]
        out.append(K)
    return torch.stack(out, -1).numpy()


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
    Cb, Cw, K = _first_layer(C_b, C_W, K0, C_W_first)
    ratios = _width_ratios(widths, depth)
    V = torch.zeros_like(K)
    out = [V]
    for l in range(depth - 1):
        s2, s4, ds2 = _sigma_moments(act, K)
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
    Cb, Cw, K = _first_layer(C_b, C_W, K0, C_W_first)
    n = [float(widths)] * depth if isinstance(widths, (int, np.integer)) else [float(v) for v in widths]
    ratios = _width_ratios(widths, depth)
    Kbar = K
    V = torch.zeros_like(K)
    out = [Kbar]
    for l in range(depth - 1):
        s2, s4, ds2 = _sigma_moments(act, K)
        var_G = V / n[l - 1] if l > 0 else torch.zeros_like(V)  # Var(Ĝ(l)) = V(l)/n_{l-1}
        Kbar = Cb + Cw * (_expect(Kbar, act.kinks, lambda z: act(z) ** 2)[0]
                          + 0.5 * _curvature(act, Kbar) * var_G)
        V = Cw**2 * (s4 - s2**2) + (Cw * ds2) ** 2 * ratios[l] * V
        K = Cb + Cw * s2
        out.append(Kbar)
    return torch.stack(out, -1).numpy()


def excess_kurtosis(V: np.ndarray, K: np.ndarray, n_prev: ArrayLike) -> np.ndarray:
    """The normalized four-point function (E[z⁴] − 3E[z²]²)/E[z²]² = 3V/(n_{l-1} K²)."""
    return 3 * np.asarray(V) / (np.asarray(n_prev, dtype=float) * np.asarray(K) ** 2)


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
