"""Before a step is taken: where the kernel of the actual training inputs goes, and `init.C_W=auto`.

The infinite-width theory (runner.theory.kernels) gives, for one input x of a network with weights
W ~ N(0, C_W/fan_in) and biases b ~ N(0, C_b), the preactivation variance of every layer:
K(1) = C_b + C_W_first |x|²/n0, then K(l+1) = C_b + C_W <σ²>_{K(l)}. A perturbation of the
input's direction grows by χ⊥(K(l)) = C_W <σ'²>_{K(l)} per layer. Both stay near 1 through
the depth only near criticality; far from it the kernel explodes or vanishes, and training
starts from overflowed or constant outputs. `forecast` computes this for the smallest, median
and largest training input; `choose_init` is the data- and depth-aware `init.C_W=auto`:

    maximize C_W_first K0 of the median input (the input's part of K(1): the signal the first
    nonlinearity sees; at most the plain C_W_first = C_W for an activation with a critical
    point, and K(1) at most TOP otherwise),
    subject to  max over the three inputs and every layer l of
                max(|log K(l)/K(1)|, |log Π_{l'<l} χ⊥(K(l'))|) <= log BAND.

Where the activation has a stable (ReLU, tanh) or half-stable (GELU, SiLU) critical point, the
hidden (C_W, C_b) are PDLT's critical values and only C_W_first is searched; otherwise (MRePU,
whose K* = 0 is unstable; RePU, sigmoid, softplus: none) all three are. Where no setting keeps
the band (RePU), the least bad one (smallest deviation) is taken and the forecast says so.

The last layer is the output, whose variance at the start adds to the zero predictor's loss
(E[(f − y)²] = E[f²] + E[y²] for f independent of y). auto cannot lower it through the hidden
layers where χ⊥ ≈ 1 forces C_W<σ²> ≥ C_W σ(0)² (σ(0) ≠ 0: squareplus, softplus, sigmoid), so
where auto searches the hidden layers itself (no critical point to take) it holds the output
against the task's targets (`readout_factor`): where the hidden kernel keeps the band and the
largest of the three inputs' output variance is more than BAND times the targets' mean square
(Task.target_moment), the readout's weight and bias variances are both multiplied by
r = mean square / that variance, so the largest output variance equals the targets' mean square.
Elsewhere (auto at a critical point, a given init) nothing is scaled and the forecast line says
when the output starts more than BAND above the targets.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import torch

from runner.theory.activations import Activation
from runner.theory.criticality import criticality
from runner.theory.fate import BAND, FATES, STABLE, kernel_fate
from runner.theory.init import Init
from runner.theory.kernels import chi_perp, kernel_flow

NODES = 48    # quadrature nodes per piece: the forecast needs ~1e-6, not round-off
INPUTS = ("smallest", "median", "largest")
TOP = 10.0    # the largest first-layer kernel auto considers where no critical C_W sets the scale


@dataclass
class Forecast:
    """Kernel and χ⊥ product per layer for the smallest, median and largest input, and the fate.

    `verdict` is stable (every kernel within BAND of its first-layer value), explodes or
    vanishes, with `leaves_at` the first layer (1-based) where a kernel leaves the band. K's last
    layer is the output with the readout at the hidden layers' C_W and C_b; where the init gives
    the readout variances of its own (C_W_last, C_b_last), `output_variance` is the output as drawn.
    """

    activation: str
    init: dict
    auto: bool
    band: float
    K0: list[float]
    K: list[list[float]]
    chi_perp_product: list[list[float]]
    verdict: str
    leaves_at: int | None
    chi_perp_in_band: bool
    deviation: float
    note: str = ""
    criticality: str = ""  # the activation's measured class and critical C_W (Criticality.line)
    target_moment: float | None = None  # the targets' mean square the output is held against (None: none)

    @property
    def readout_scale(self) -> float | None:
        """r where the readout's weight variance is its own, C_W_last = r C_W; else None."""
        last = self.init.get("C_W_last")
        return None if last is None else last / self.init["C_W"]

    @property
    def output_variance(self) -> float:
        """The largest of the three inputs' output variance at the start, the readout as drawn:
        C_b_last + C_W_last <σ²> of the last hidden layer (C_W and C_b where not its own)."""
        out = max(k[-1] for k in self.K)
        i = self.init
        if "C_W_last" not in i and "C_b_last" not in i:
            return out
        C_W_last, C_b_last = i.get("C_W_last", i["C_W"]), i.get("C_b_last", i["C_b"])
        return C_b_last + C_W_last / i["C_W"] * (out - i["C_b"])

    @property
    def output_far_above(self) -> bool:
        """The output's variance at the start of some input is more than the band above the
        targets' mean square: training starts far worse than predicting 0. False without targets."""
        return self.target_moment is not None and self.output_variance > self.band * self.target_moment

    def as_dict(self) -> dict:
        """JSON-safe: inf and NaN become strings."""
        def safe(v):
            if isinstance(v, float) and not math.isfinite(v):
                return str(v)
            if isinstance(v, list):
                return [safe(u) for u in v]
            if isinstance(v, dict):
                return {k: safe(u) for k, u in v.items()}
            return v
        out = {k: safe(v) for k, v in asdict(self).items()}
        out["inputs"] = list(INPUTS)
        return out

    def line(self) -> str:
        """One console line: settings, median input's first -> last kernel, verdict."""
        i = self.init
        head = (f"kernel forecast ({self.activation}: {self.criticality}; {len(self.K[0])} layers, "
                f"C_W_first {i['C_W_first']:.4g}, "
                f"C_W {i['C_W']:.4g}, C_b {i['C_b']:.4g}{', auto' if self.auto else ''}): ")
        flows = ", ".join(f"{name} input {k[0]:.3g} -> {k[-1]:.3g}" for name, k in zip(INPUTS, self.K))
        fate = self.verdict if self.verdict == "stable" else f"{self.verdict} at layer {self.leaves_at}"
        tail = f": {fate} (band x{self.band:g})"
        if not self.chi_perp_in_band:
            tail += f"; input correlations change by x{self.chi_perp_product[1][-1]:.3g} (χ⊥ product)"
        if self.readout_scale is not None:
            tail += (f"; readout scaled x{self.readout_scale:.2g}: output variance {max(k[-1] for k in self.K):.3g} "
                     f"vs targets {self.target_moment:.3g}")
        elif self.verdict == "stable" and self.output_far_above:  # the hidden kernel in band, the output not
            tail += (f"; output variance {self.output_variance:.3g} at the start, over x{self.band:g} "
                     f"the targets' mean square ({self.target_moment:.3g})")
        if self.verdict != "stable" and not self.auto:
            tail += " (set init.C_W=auto)"
        return head + flows + tail + (f"; {self.note}" if self.note else "")


def input_K0(x: torch.Tensor | None) -> np.ndarray:
    """K0 = |x|²/n0 of the smallest, median and largest network input; unit inputs when x is None."""
    if x is None:
        return np.ones(3)
    k0 = x.detach().double().pow(2).mean(-1).reshape(-1).cpu().numpy()
    return np.array([k0.min(), np.median(k0), k0.max()])


def flows(act: Activation, K0: np.ndarray, C_W_first, C_W, C_b, layers: int) -> tuple[np.ndarray, np.ndarray]:
    """Kernels K (..., inputs, layers) and χ⊥ products P (P(1) = 1) for arrays of settings (...)."""
    Cf, Cw, Cb = (np.asarray(v, dtype=float)[..., None] for v in (C_W_first, C_W, C_b))
    with np.errstate(over="ignore", invalid="ignore"):
        K = kernel_flow(act, Cb, Cw, K0, layers, C_W_first=Cf, nodes=NODES)
        # an input at exactly K = 0 (x = 0, C_b = 0) takes χ⊥'s limit K -> 0+
        K_chi = np.clip(np.nan_to_num(K[..., :-1], nan=np.inf), 1e-12, None)
        chi = np.asarray(chi_perp(act, K_chi, Cw[..., None], nodes=NODES))
        P = np.concatenate([np.ones_like(K[..., :1]), np.cumprod(chi, -1)], -1)
    return K, P


def log_ratios(K: np.ndarray, P: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """log K(l)/K(1) (0 where an input stays exactly at K = 0; inf where a kernel is not finite)
    and log P(l), same shapes as K and P."""
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        r = np.log(K / K[..., :1])
        r = np.where((K[..., :1] == 0) & (K == 0), 0.0, r)
        r = np.where(np.isfinite(K), r, np.inf)
        p = np.log(P)
    return np.nan_to_num(r, nan=np.inf), np.nan_to_num(p, nan=np.inf)


def deviation(K: np.ndarray, P: np.ndarray) -> np.ndarray:
    """The auto objective: max over inputs and layers of |log K(l)/K(1)| and |log P(l)|."""
    r, p = log_ratios(K, P)
    return np.maximum(np.abs(r), np.abs(p)).max((-2, -1))


def forecast(act: Activation, K0: np.ndarray, init: Init, layers: int, auto: bool = False,
             note: str = "", band: float = BAND, target_moment: float | None = None) -> Forecast:
    """The kernel's fate through `layers` layers for inputs of these K0 (smallest, median, largest),
    the output held against the targets' mean square `target_moment` (None: no targets)."""
    K, P = flows(act, K0, init.C_W_first, init.C_W, init.C_b, layers)
    r, p = log_ratios(K, P)
    with np.errstate(over="ignore"):
        fates = kernel_fate(np.exp(r), band)    # (inputs, layers)
    out = fates != STABLE
    verdict, leaves_at = FATES[STABLE], None
    if out.any():
        layer = int(np.argmax(out.any(0)))      # first layer where any input leaves
        row = int(np.argmax(np.abs(r[:, layer])))
        verdict, leaves_at = FATES[fates[row, layer]], layer + 1
    return Forecast(repr(act), init.as_dict(), auto, band, [float(k) for k in K0],
                    K.tolist(), P.tolist(), verdict, leaves_at,
                    bool(np.abs(p).max() <= math.log(band)), float(deviation(K, P)), note, criticality(act).line(),
                    target_moment)


def readout_factor(fc: Forecast) -> float | None:
    """The factor r for the readout's variances (C_W_last = r C_W, C_b_last = r C_b) that brings the
    largest output variance down to the targets' mean square, where the hidden kernel keeps the
    band and that variance is more than the band above it; None where nothing needs scaling (or
    there are no targets, or they are all 0)."""
    if fc.verdict != FATES[STABLE] or not fc.target_moment or not fc.output_far_above:
        return None
    return fc.target_moment / fc.output_variance


def has_critical(act: Activation) -> bool:
    """Whether the activation has a stable or half-stable critical point (ReLU, tanh, GELU, SiLU),
    whose (C_W, C_b) auto takes for the hidden layers; otherwise auto searches them itself."""
    crit = criticality(act)
    return crit.exists and (crit.stable or crit.universality == "half-stable")


def _pick(dev: np.ndarray, signal: np.ndarray, band: float) -> int:
    """Index of the largest input signal among settings in the band, else of the smallest deviation."""
    ok = dev <= math.log(band)
    if ok.any():
        return int(np.flatnonzero(ok)[np.argmax(signal[ok])])
    return int(np.lexsort((-signal, dev))[0])


def _search(act: Activation, K0: np.ndarray, layers: int, C_W: np.ndarray, C_b: np.ndarray,
            K1: np.ndarray, C_W_first: float | None, band: float):
    """Evaluate every (C_W, C_b, K1) combination (or C_W_first when fixed); return the best."""
    Cw, Cb, k1 = (a.ravel() for a in np.meshgrid(C_W, C_b, K1, indexing="ij"))
    Cf = (k1 - Cb) / K0[1] if C_W_first is None else np.full_like(k1, C_W_first)
    keep = Cf > 0
    Cw, Cb, Cf = Cw[keep], Cb[keep], Cf[keep]
    K, P = flows(act, K0, Cf, Cw, Cb, layers)
    dev = deviation(K, P)
    i = _pick(dev, Cf * K0[1], band)
    return Init("critical", float(Cf[i]), float(Cw[i]), float(Cb[i])), float(dev[i])


def _solve(act: Activation, K0: np.ndarray, layers: int, C_W_first: float | None, C_W: float | None,
           C_b: float | None, has_critical: bool, band: float) -> tuple[Init, float]:
    """A coarse grid search of auto's objective, then a finer one around its optimum."""
    Cw = np.array([C_W]) if C_W is not None else np.concatenate([np.logspace(-1, 1.5, 11), [1.0]])
    Cb = np.array([C_b]) if C_b is not None else np.concatenate([[0.0], np.logspace(-4, 0, 5)])
    # first-layer kernel of the median input: up to the plain C_W_first = C_W where that is critical
    top = Cb.max() + Cw.max() * K0[1] if has_critical else TOP
    K1 = np.geomspace(1e-4 * top, top, 13)
    best, dev = _search(act, K0, layers, Cw, Cb, K1, C_W_first, band)
    if C_W is None or C_b is None:  # refine around the coarse optimum
        k1 = best.C_b + best.C_W_first * K0[1]
        Cw = Cw if C_W is not None else best.C_W * np.geomspace(0.75, 1.33, 9)
        Cb = Cb if C_b is not None else (best.C_b * np.geomspace(0.5, 2, 7) if best.C_b else
                                         np.concatenate([[0.0], np.logspace(-6, -4, 3)]))
        refined, dev_r = _search(act, K0, layers, Cw, Cb, np.minimum(k1 * np.geomspace(0.5, 2, 13), top),
                                 C_W_first, band)
        if (dev_r <= math.log(band) and (dev > math.log(band) or refined.C_W_first >= best.C_W_first)) or \
                (dev > math.log(band) and dev_r < dev):
            best, dev = refined, dev_r
    return best, dev


def choose_init(act: Activation, K0: np.ndarray, layers: int, C_W_first: float | None = None,
                C_W: float | None = None, C_b: float | None = None,
                band: float = BAND) -> tuple[Init, str]:
    """`init.C_W=auto`: the (C_W_first, C_W, C_b) of the module docstring's objective; values
    given are kept and only the others are chosen. Returns the choice and a note ('' when the
    band is kept)."""
    K0 = np.asarray(K0, dtype=float).copy()
    K0[1] = max(K0[1], 1e-12)  # the median input sets the first-layer scale
    critical = has_critical(act)
    if critical:
        crit = criticality(act)
        C_W = crit.C_W if C_W is None else C_W
        C_b = crit.C_b if C_b is None else C_b
    best, dev = _solve(act, K0, layers, C_W_first, C_W, C_b, critical, band)
    note = "" if dev <= math.log(band) else (
        f"auto: no setting keeps {act!r} within x{band:g} through {layers} layers for these inputs; "
        "this is the least bad")
    return best, note
