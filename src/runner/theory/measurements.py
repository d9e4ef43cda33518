"""What the effective theory predicts, measured on finite ensembles: kernels, vertex, susceptibility.

`sample_init` draws M networks with the same per-member streams as `EnsembleMLP` (member k here
is member k of a trained ensemble with the same seed), one layer and one chunk of members at a
time, so memory stays at chunk x width² numbers whatever M is. It keeps per member, layer and
input the few numbers every estimator needs, so a 1000-member run stores kilobytes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from runner.theory.activations import Activation
from runner.theory.fate import BAND, EXPLODES, VANISHES, kernel_fate
from runner.theory.init import Init, member_generator


@dataclass
class InitStats:
    """Per member (M), hidden layer (L) and input (N) summaries of an ensemble at initialization.

    kernel: mean over neurons of z²; fourth: mean over neurons of z⁴; G: the conditional variance
    Ĝ = C_b + (C_W/n_{l-1}) Σ_j σ(z_j^{(l-1)})² of every neuron of layer l given layer l-1 (layer 1:
    C_b + C_W |x|²/n0). n_prev[l] is n_{l-1}.
    """

    kernel: np.ndarray
    fourth: np.ndarray
    G: np.ndarray
    n_prev: np.ndarray

    @property
    def finite(self) -> np.ndarray:
        """(M, L): the member's kernel is finite at this layer and every earlier one (not overflowed)."""
        ok = np.isfinite(self.kernel).all(axis=2)
        return np.logical_and.accumulate(ok, axis=1)

    def overflowed(self) -> np.ndarray:
        """Members overflowed by each layer, (L,)."""
        return (~self.finite).sum(0)

    def _fates(self, band: float) -> np.ndarray:
        """(M, L, N): each member's kernel against its own layer-1 kernel, by the one fate rule
        (runner.theory.fate)."""
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            return kernel_fate(self.kernel / self.kernel[:, :1], band)

    def collapsed(self, band: float = BAND) -> np.ndarray:
        """Finite members whose kernel vanished (below 1/band of layer 1's) for every input, (L,)."""
        return (self.finite & (self._fates(band) == VANISHES).all(axis=2)).sum(0)

    def exploded(self, band: float = BAND) -> np.ndarray:
        """Finite members whose kernel exploded (above band x layer 1's) for any input, (L,)."""
        return (self.finite & (self._fates(band) == EXPLODES).any(axis=2)).sum(0)


def sample_init(act: Activation, x: torch.Tensor, depth: int, width: int, C_W: float, C_b: float,
                members: int, seed: int = 0, member_offset: int = 0, chunk: int = 32,
                dtype: torch.dtype = torch.float64, C_W_first: float | None = None) -> InitStats:
    """Forward `members` freshly initialized MLPs (depth hidden layers of `width`) on inputs x (N, n0).

    Weights are drawn as `Init.draw` draws them (Gaussian), per member in float64, and the forward
    pass runs in `dtype` (float32 overflows where a float32-trained network would); the first
    layer's weight variance is C_W_first (default C_W). Non-finite
    values are kept, never raised: `InitStats.finite` says which members overflowed.
    """
    x = torch.as_tensor(x, dtype=torch.float64)
    N, n0 = x.shape
    init = Init("critical", C_W if C_W_first is None else C_W_first, C_W, C_b)
    out = {k: np.empty((members, depth, N)) for k in ("kernel", "fourth", "G")}
    with torch.no_grad(), np.errstate(over="ignore", invalid="ignore"):
        for start in range(0, members, chunk):
            stop = min(start + chunk, members)
            gens = [member_generator(seed, member_offset + k) for k in range(start, stop)]
            h = x.to(dtype).expand(stop - start, N, n0)
            for layer in range(depth):
                fan_in = n0 if layer == 0 else width
                c_w = C_W if layer or C_W_first is None else C_W_first
                drawn = [init.draw(fan_in, width, g, first=layer == 0) for g in gens]
                W = torch.stack([w for w, _ in drawn]).to(dtype)
                b = torch.stack([b for _, b in drawn]).unsqueeze(1).to(dtype)
                G = C_b + c_w * h.double().pow(2).mean(-1)
                z = torch.baddbmm(b, h, W).double()
                z2 = z * z
                out["kernel"][start:stop, layer] = z2.mean(-1).numpy()
                out["fourth"][start:stop, layer] = (z2 * z2).mean(-1).numpy()
                out["G"][start:stop, layer] = G.numpy()
                h = act(z.to(dtype))
    n_prev = np.array([n0] + [width] * (depth - 1), dtype=float)
    return InitStats(out["kernel"], out["fourth"], out["G"], n_prev)


def mean_and_se(values: np.ndarray, valid: np.ndarray | None = None, axis: int = 0):
    """Mean and standard error over `axis`, counting only entries where `valid` (and finite)."""
    values = np.asarray(values, dtype=float)
    ok = np.isfinite(values) if valid is None else (np.asarray(valid) & np.isfinite(values))
    n = ok.sum(axis)
    v = np.where(ok, values, 0.0)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):  # exploded kernels: var = inf
        mean = v.sum(axis) / n
        var = (np.where(ok, values - np.expand_dims(mean, axis), 0.0) ** 2).sum(axis) / (n - 1)
        return mean, np.sqrt(var / n)


def variance_and_se(values: np.ndarray, valid: np.ndarray, axis: int = 0):
    """Sample variance over `axis` of the valid entries and its standard error sqrt((m4 − s⁴)/M)."""
    ok = np.asarray(valid) & np.isfinite(values)
    n = ok.sum(axis)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        mean = np.where(ok, values, 0.0).sum(axis) / n
        dev = np.where(ok, values - np.expand_dims(mean, axis), 0.0)
        var = (dev**2).sum(axis) / (n - 1)
        m4 = (dev**4).sum(axis) / n
        return var, np.sqrt(np.maximum(m4 - var**2, 0.0) / n)


def vertex_from_G(stats: InitStats, input_index: int = 0):
    """V̂(l) = n_{l-1} Var_members(Ĝ(l)), and its standard error, for one input; shape (L,).

    Given layer l-1, layer l's preactivations are i.i.d. N(0, Ĝ), so their connected four-point
    function is 3 Var(Ĝ) and V(l) = n_{l-1} Var(Ĝ) has the expectation of the direct estimator
    with far less variance (no neuron-level sampling noise). Overflowed members are excluded.
    """
    var, se = variance_and_se(stats.G[:, :, input_index], stats.finite)
    return stats.n_prev * var, stats.n_prev * se


def vertex_direct(stats: InitStats, input_index: int = 0) -> np.ndarray:
    """V̂(l) = (n_{l-1}/3)(E[z⁴] − 3E[z²]²) over members and neurons for one input; shape (L,)."""
    ok = stats.finite & np.isfinite(stats.fourth[:, :, input_index])
    m4, _ = mean_and_se(stats.fourth[:, :, input_index], ok)
    m2, _ = mean_and_se(stats.kernel[:, :, input_index], ok)
    return stats.n_prev / 3 * (m4 - 3 * m2**2)


def ensemble_cumulants(z: torch.Tensor, valid: torch.Tensor) -> tuple[float, float]:
    """Second and fourth cumulants of preactivations z (K, N, n) over members, averaged over inputs
    and neurons; only `valid` members (K,) count. Model-free: holds for trained weights too."""
    zv = z[valid].double()
    if zv.shape[0] < 4:
        return math.nan, math.nan
    dev = zv - zv.mean(0)
    m2 = dev.pow(2).mean(0)
    m4 = dev.pow(4).mean(0)
    return float(m2.mean()), float((m4 - 3 * m2**2).mean())


def empirical_chi_perp(act: Activation, z: torch.Tensor, w_next: torch.Tensor) -> torch.Tensor:
    """χ̂⊥ per member: (1/n_{l+1}) Σ_j σ'(z_j)² Σ_i W_ji², averaged over inputs; shape (K,).

    The mean squared gain of the layer map z^{(l)} -> z^{(l+1)} on a random perpendicular
    perturbation, per neuron; at initialization its expectation is C_W <σ'²>_K = χ⊥(K).
    """
    gain = w_next.double().pow(2).sum(-1)  # (K, n_l)
    return (act.derivative(z.double()).pow(2) * gain.unsqueeze(1)).sum(-1).mean(-1) / w_next.shape[-1]


def sample_ntk(act: Activation, x: torch.Tensor, depth: int, width: int, init: Init, members: int,
               seed: int = 0, member_offset: int = 0, chunk: int = 4, lambda_b: float = 1.0,
               lambda_W: float = 1.0) -> np.ndarray:
    """The empirical NTK Θ(x, x) of each member's scalar output on each input, shape (M, N), float64.

    The networks are `EnsembleMLP`'s: `depth` hidden layers of `width` and a readout to one output,
    drawn by `init.draw` from member k's stream (seed, member_offset + k), so member k is member k
    of a trained ensemble with one output. Θ = Σ_l λ_b |∂f/∂b_l|² + (λ_W/n_{l-1}) |∂f/∂W_l|², the
    Jacobian inner product with PDLT's learning-rate factors (runner.theory.ntk). With
    δ_l = ∂f/∂z_l from autograd, ∂f/∂b_l = δ_l and ∂f/∂W_l = h_{l-1} δ_lᵀ, so every input's NTK
    comes from one backward pass. `chunk` members are held at once (every layer's weights).
    """
    x = torch.as_tensor(x, dtype=torch.float64)
    N, n0 = x.shape
    dims = [n0] + [width] * depth + [1]
    out = np.empty((members, N))
    with np.errstate(over="ignore", invalid="ignore"):
        for start in range(0, members, chunk):
            stop = min(start + chunk, members)
            layers = list(zip(*(init.layers(dims, member_generator(seed, member_offset + k))
                                for k in range(start, stop))))
            h = x.expand(stop - start, N, n0)
            inputs, preacts = [], []
            with torch.enable_grad():
                for i, drawn in enumerate(layers):
                    W = torch.stack([w for w, _ in drawn])
                    b = torch.stack([b for _, b in drawn]).unsqueeze(1)
                    z = torch.baddbmm(b, h, W)
                    if i == 0:
                        z.requires_grad_(True)  # the graph of ∂f/∂z_l starts at layer 1
                    inputs.append(h)
                    preacts.append(z)
                    h = act(z) if i < len(layers) - 1 else z
                deltas = torch.autograd.grad(h.sum(), preacts[:-1]) if depth else ()
            deltas = [*deltas, torch.ones_like(preacts[-1])]
            theta = torch.zeros(stop - start, N, dtype=torch.float64)
            for fan_in, h_in, delta in zip(dims[:-1], inputs, deltas):
                d2 = delta.detach().pow(2).sum(-1)
                theta += lambda_b * d2 + lambda_W / fan_in * h_in.detach().pow(2).sum(-1) * d2
            out[start:stop] = theta.numpy()
    return out
