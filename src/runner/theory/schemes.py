"""Init schemes: how a run arrives at its initialization's numbers (conf/init/*.yaml name them by
`_target_`).

A scheme (`Gaussian`, `PyTorchDefault`, `Xavier`, or a user's own class: see `InitScheme`) says
whether it solves for its values from the theory (`auto`) and resolves to an `Init`
(runner.theory.init), the numbers for this run's activation, training inputs (K0 of the
smallest, median and largest) and depth. Where auto searches the hidden layers itself (an
activation without a critical point to take: MRePU, RePU, squareplus, softplus, sigmoid),
`resolve_init` also holds the output against the targets: a readout whose variance at the start
would be more than the band above the targets' mean square is scaled down to it
(runner.theory.forecast.readout_factor; docs/initialization.md).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Protocol, runtime_checkable

import numpy as np
import torch

from runner.checks import invalid, is_real, nonnegative, positive
from runner.theory.activations import Activation
from runner.theory.forecast import Forecast, choose_init, forecast, has_critical, input_K0, readout_factor
from runner.theory.init import Init, PyTorchInit, XavierInit


@runtime_checkable
class InitScheme(Protocol):
    """What the runner asks of an init scheme: its name, whether it solves from the theory, and
    its numbers for one run. `resolve` returns the Init and a note ('' or why auto fell short)."""

    scheme: str
    auto: bool

    def resolve(self, activation: Activation, K0: np.ndarray, layers: int, in_dim: int,
                width: int) -> tuple[Init, str]: ...


class Gaussian:
    """conf/init/critical.yaml: W ~ N(0, C_W/fan_in), b ~ N(0, C_b), the first layer N(0, C_W_first/n0).

    C_W: a number > 0, or `auto`: whatever is left null (C_W_first, C_b) is solved for from the
    theory, for this activation, the training inputs and the depth (runner.theory.forecast.choose_init).
    C_W_first: null follows C_W (auto's choice when C_W is auto). C_b: null is 0 (or auto's choice).
    """

    scheme = "critical"

    def __init__(self, C_W: float | str, C_W_first: float | None, C_b: float | None):
        if not (C_W == "auto" or (is_real(C_W) and C_W > 0)):
            raise invalid("C_W", C_W, "a number > 0, or auto (from the theory)")
        self.C_W = C_W if C_W == "auto" else float(C_W)
        self.C_W_first = None if C_W_first is None else positive("C_W_first", C_W_first)
        self.C_b = None if C_b is None else nonnegative("C_b", C_b)

    @property
    def auto(self) -> bool:
        return self.C_W == "auto"

    def resolve(self, activation: Activation, K0: np.ndarray, layers: int, in_dim: int,
                width: int) -> tuple[Init, str]:
        if self.auto:
            return choose_init(activation, K0, layers, C_W_first=self.C_W_first, C_b=self.C_b)
        first = self.C_W if self.C_W_first is None else self.C_W_first
        return Init(self.scheme, first, self.C_W, self.C_b or 0.0), ""


class PyTorchDefault:
    """conf/init/pytorch.yaml: nn.Linear's default; forecast with its Gaussian-equivalent variances
    from the hidden layers' fan-in (Var U(±a) = a²/3; the output layer takes the hidden layers')."""

    scheme, auto = "pytorch", False

    def resolve(self, activation: Activation, K0: np.ndarray, layers: int, in_dim: int,
                width: int) -> tuple[Init, str]:
        return PyTorchInit(self.scheme, 1 / 3, 1 / 3, 1 / (3 * width)), ""


class Xavier:
    """conf/init/xavier.yaml: Glorot uniform weights, zero biases; forecast with the Gaussian
    equivalents (Var = 2/(fan_in + fan_out), times fan_in)."""

    scheme, auto = "xavier", False

    def resolve(self, activation: Activation, K0: np.ndarray, layers: int, in_dim: int,
                width: int) -> tuple[Init, str]:
        return XavierInit(self.scheme, 2 * in_dim / (in_dim + width), 1.0, 0.0), ""


def resolve_init(scheme: InitScheme, activation: Activation, inputs: torch.Tensor | None, depth: int, width: int,
                 in_dim: int, target_moment: float | None = None) -> tuple[Init, Forecast]:
    """The init scheme resolved to numbers for this run (auto solved from the
    theory), and the forecast of `inputs`, the network's training inputs, through `depth` hidden
    layers and the output layer, the output held against `target_moment`, the targets' mean square
    in the network's units (None: no targets). An auto scheme for an activation without a critical
    point gets a readout of its own where the output would start far above the targets (module
    docstring). The scheme itself is left as it was configured."""
    K0 = input_K0(inputs)
    layers = depth + 1  # hidden layers and the output layer
    init, note = scheme.resolve(activation, K0, layers, in_dim, width)
    fc = forecast(activation, K0, init, layers, auto=scheme.auto, note=note, target_moment=target_moment)
    r = readout_factor(fc) if scheme.auto and not has_critical(activation) else None
    if r is not None:
        init = replace(init, C_W_last=r * init.C_W, C_b_last=r * init.C_b)
        fc = replace(fc, init=init.as_dict())
    return init, fc
