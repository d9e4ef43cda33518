"""What the theory says of one activation, as a card: its values at 0, how often it is
differentiable and where it is not, its universality class and critical initialization (or why
there is none), with χ∥/χ⊥ at small and large K, and its neural tangent kernel through depth.
Measured from the function, never declared.

The card's other facts come from the runner's own tasks run on the activation (runner.screen):
the susceptibility sweep and the phase diagram of initialization.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np
import torch

from runner.theory.activations import Activation
from runner.theory.criticality import criticality
from runner.theory.ntk import ntk_flow

MAX_ORDER = 4      # derivatives examined for jumps; smoother than this reads "C^4 or smoother"
GRID = torch.arange(-6000, 6001, dtype=torch.float64) / 1000   # where jumps are looked for, step 1e-3
JUMP = 20.0        # a step of σ^(k) this many times what σ^(k+1) explains over the grid step is a jump
NTK_DEPTH = 10     # layers the card's NTK is followed through
FLOOR = 1e-7       # and larger than this (relative to the scale of σ^(k)): round-off is no jump


@dataclass(frozen=True)
class Smoothness:
    """σ is C^order (`order` continuous derivatives) on the grid; `jumps` lists where a derivative
    jumps, (z, k): σ^(k) jumps at z; `undeclared` those z that are not among the activation's kinks
    (the theory's quadrature is exact only at declared kinks). `order` is None when no derivative up
    to MAX_ORDER jumps."""

    order: int | None
    jumps: list[tuple[float, int]] = field(default_factory=list)
    undeclared: list[float] = field(default_factory=list)

    def text(self) -> str:
        if self.order is None:
            return f"C^{MAX_ORDER} or smoother on [-6, 6]"
        where = ", ".join(f"σ{chr(8242) * k if k <= 3 else f'^({k})'} jumps at z = {z:g}" for z, k in self.jumps)
        return f"C^{self.order}: {where}" if self.order >= 0 else f"discontinuous: {where}"


def derivatives(act: Activation, z: torch.Tensor, order: int) -> list[torch.Tensor]:
    """σ, σ', ..., σ^(order) at z (float64), by repeated autograd (exact for the functions torch
    differentiates; the one-sided value at a kink)."""
    z = z.detach().clone().requires_grad_(True)
    values = [act(z)]
    with torch.enable_grad():
        for _ in range(order):
            y = values[-1]
            if not y.requires_grad:
                values.append(torch.zeros_like(z))
                continue
            (g,) = torch.autograd.grad(y.sum(), z, create_graph=True, allow_unused=True)
            values.append(torch.zeros_like(z) if g is None else g)
    return [v.detach() for v in values]


def smoothness(act: Activation) -> Smoothness:
    """Where σ or a derivative jumps on GRID: a step of σ^(k) between neighbours that σ^(k+1) does
    not explain (JUMP times its size over the step, and above FLOOR); the lowest such k sets the
    order, and the points of that k are listed (a cluster of neighbouring flags is one point)."""
    values = derivatives(act, GRID, MAX_ORDER + 1)
    step = float(GRID[1] - GRID[0])
    for k in range(MAX_ORDER + 1):
        d = values[k].diff().abs()
        slope = torch.maximum(values[k + 1][:-1].abs(), values[k + 1][1:].abs())
        scale = float(values[k].abs().max().clamp_min(1.0))
        flags = (d > JUMP * slope * step) & (d > FLOOR * scale) | ~torch.isfinite(d)
        if flags.any():
            points: list[float] = []
            for i in torch.nonzero(flags).flatten().tolist():
                z = round(float(GRID[i] + GRID[i + 1]) / 2, 2)
                if not points or abs(z - points[-1]) > 2 * step + 1e-12:
                    points.append(z)
            points = [round(z, 2) + 0.0 for z in points]  # -0.0 reads 0
            undeclared = [z for z in points if all(abs(z - c) > 0.01 for c in (*act.kinks, 0.0))]
            return Smoothness(k - 1, [(z, k) for z in points], undeclared)
    return Smoothness(None)


@dataclass(frozen=True)
class Card:
    """The theory card of an activation (module docstring)."""

    activation: str
    sigma_0: float
    derivative_0: float
    smoothness: str
    smoothness_order: int | None
    not_differentiable_at: list[float]
    undeclared_kinks: list[float]
    universality: str
    critical: str          # 'critical C_W 1' or 'none'
    C_b: float | None
    C_W: float | None
    K_star: float | None
    stable: bool | None
    a1: float | None
    reason: str
    K_small: float
    K_large: float
    ratio_small_K: float
    ratio_large_K: float
    ntk: str               # the NTK of a unit input through NTK_DEPTH layers (ntk_text)
    ntk_first: float       # Θ(1) and Θ(NTK_DEPTH) there
    ntk_last: float

    def as_dict(self) -> dict:
        """JSON-safe (inf and NaN as strings)."""
        return {k: (str(v) if isinstance(v, float) and not math.isfinite(v) else v) for k, v in asdict(self).items()}


def card_ntk(act: Activation, depth: int = NTK_DEPTH) -> tuple[str, float, float]:
    """The NTK (λ_b = λ_W = 1) of a unit input (K0 = 1) through `depth` layers at the critical
    (C_b, C_W), or at C_W = 1, C_b = 0 where there is none: its text, Θ(1) and Θ(depth). At
    criticality (χ⊥ = 1) Θ grows linearly with depth; away from it, geometrically."""
    c = criticality(act)
    C_b, C_W = (c.C_b, c.C_W) if c.exists else (0.0, 1.0)
    with np.errstate(all="ignore"):
        _, theta = ntk_flow(act, C_b, C_W, 1.0, depth)
    first, last = float(theta[0]), float(theta[-1])
    growth = f" = {last / first:.3g} Θ(1)" if math.isfinite(last) else " (the kernel explodes)"
    text = f"Θ(1) {first:.4g} -> Θ({depth}) {last:.4g}{growth} (unit input, C_W {C_W:.4g}, C_b {C_b:.4g})"
    return text, first, last


def card(act: Activation) -> Card:
    """The card of `act` from the theory alone."""
    zero = torch.zeros(1, dtype=torch.float64)
    smooth = smoothness(act)
    c = criticality(act)
    return Card(repr(act), float(act(zero)[0]), float(act.derivative(zero)[0]), smooth.text(), smooth.order,
                [z for z, _ in smooth.jumps], smooth.undeclared, c.universality,
                f"critical C_W {c.C_W:.4g}" + (f", C_b {c.C_b:.4g}" if c.C_b else "") if c.exists else "none",
                c.C_b, c.C_W, c.K_star, c.stable, c.a1, c.reason, c.K_small, c.K_large, c.ratio_small_K,
                c.ratio_large_K, *card_ntk(act))
