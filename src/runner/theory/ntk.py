"""The neural tangent kernel at initialization, infinite width, beside the kernel's recursion.

For one input x, the NTK of a preactivation z_i(l) is Θ(l) = Σ_θ λ_θ (∂z_i(l)/∂θ)² summed over the
parameters θ of layers 1..l, with PDLT's learning-rate factors (ch. 7-8): λ_b for every bias and
λ_W/n_{l-1} for every weight of a layer whose fan-in is n_{l-1}. At infinite width it is
deterministic and follows the kernel layer by layer:

    Θ(1)   = λ_b + λ_W K0                                    (K0 = |x|²/n0)
    Θ(l+1) = λ_b + λ_W <σ²>_K(l) + C_W <σ'²>_K(l) Θ(l)        (C_W <σ'²>_K = χ⊥(K))

with K(l) the kernel of runner.theory.kernels (weights N(0, C_W/fan_in), first layer C_W_first,
biases N(0, C_b)). λ_b = λ_W = 1 is the NTK parameterization's with unit learning rate
(docs/initialization.md states the correspondence with standard training). σ² and σ'² are
integrated together with the kernel's quadrature, split at the activation's kinks, so any
Activation (built-in, formula or Python) gets it, exactly where the kernel is exact.
"""

from __future__ import annotations

import numpy as np
import torch

from runner.theory.activations import Activation
from runner.theory.gaussian import NODES, ArrayLike, as_tensor, expect
from runner.theory.kernels import first_layer


def ntk_flow(act: Activation, C_b: ArrayLike, C_W: ArrayLike, K0: ArrayLike, depth: int,
             C_W_first: ArrayLike | None = None, lambda_b: float = 1.0, lambda_W: float = 1.0,
             nodes: int = NODES) -> tuple[np.ndarray, np.ndarray]:
    """(K(l), Θ(l)) for l = 1..depth, each of shape broadcast(C_b, C_W, K0, C_W_first) + (depth,).

    The last layer of a network with `depth` - 1 hidden layers is its output (the readout, drawn
    with C_W). An exploded kernel gives inf (or nan) in both.
    """
    Cb, Cw, K = first_layer(C_b, C_W, K0, C_W_first)
    lb, lw = float(lambda_b), float(lambda_W)
    theta = lb + lw * torch.broadcast_to(as_tensor(K0), K.shape)
    Ks, thetas = [K], [theta]
    for _ in range(depth - 1):
        s2, d2 = expect(K, act.kinks, lambda z: act(z) ** 2, lambda z: act.derivative(z) ** 2, n=nodes)
        theta = lb + lw * s2 + Cw * d2 * theta
        K = Cb + Cw * s2
        Ks.append(K)
        thetas.append(theta)
    return torch.stack(Ks, -1).numpy(), torch.stack(thetas, -1).numpy()
