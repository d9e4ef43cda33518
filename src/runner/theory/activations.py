"""Activation functions, one object shared by the networks and by the theory.

`build(name, **params)` returns an `Activation`: a torch callable plus the facts the
infinite-width theory needs (where the function has a kink, its universality class).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class Activation:
    """A scalar nonlinearity sigma(z) applied elementwise.

    `kinks` lists the points where sigma or one of its derivatives jumps, so quadrature
    can split its integrals there; `universality` is PDLT's class (ch. 5).
    """

    name: str
    fn: Callable[[torch.Tensor], torch.Tensor]
    params: dict = field(default_factory=dict)
    kinks: tuple[float, ...] = ()
    universality: str = "none"

    def __call__(self, z: torch.Tensor) -> torch.Tensor:
        return self.fn(z)

    def derivative(self, z: torch.Tensor) -> torch.Tensor:
        """sigma'(z) elementwise, by autograd (exact for every activation here)."""
        with torch.enable_grad():
            z = z.detach().requires_grad_(True)
            (grad,) = torch.autograd.grad(self.fn(z).sum(), z)
        return grad

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v}" for k, v in self.params.items())
        return f"{self.name}({args})"


def repu(z: torch.Tensor, p: int) -> torch.Tensor:
    """RePU_p(z) = max(0, z)^p; p = 1 is ReLU."""
    return torch.clamp(z, min=0) ** p


def mrepu(z: torch.Tensor, p: int, shift: float = 1.0) -> torch.Tensor:
    """Modified RePU, MRePU_p(z) = z * max(0, z + shift)^p.

    Paper B's defining formula was lost in extraction; this is the working definition
    (docs/papers.md) because it fits every statement that survived: it is p-1 times
    differentiable like RePU_p (the kink is at z = -shift), linear near 0 with sigma(0) = 0
    and sigma'(0) = shift^p = 1, which puts it in the K* = 0 universality class (critical
    C_W = 1), and its active branch is a degree p+1 polynomial.
    """
    return z * torch.clamp(z + shift, min=0) ** p


def _positive_int(name: str, key: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"activation.{key}={value!r}: {name} needs a positive integer {key}")
    return value


PARAMS = {"leaky_relu": ("slope",), "elu": ("alpha",), "repu": ("p",), "mrepu": ("p", "shift")}


def build(name: str, **params) -> Activation:
    """The activation `name` with its parameters (e.g. build("mrepu", p=2, shift=1.0))."""
    unknown = set(params) - set(PARAMS.get(name, ()))
    if name in NAMES and unknown:
        allowed = ", ".join(PARAMS.get(name, ())) or "none"
        raise ValueError(f"activation.{sorted(unknown)[0]} is not a parameter of {name}; allowed: {allowed}")
    if name == "relu":
        return Activation("relu", F.relu, {}, (0.0,), "scale-invariant")
    if name == "leaky_relu":
        slope = float(params.get("slope", 0.01))
        return Activation("leaky_relu", lambda z: F.leaky_relu(z, slope), {"slope": slope},
                          (0.0,), "scale-invariant")
    if name == "tanh":
        return Activation("tanh", torch.tanh, {}, (), "K*=0")
    if name == "sin":
        return Activation("sin", torch.sin, {}, (), "K*=0")
    if name == "gelu":
        return Activation("gelu", F.gelu, {}, (), "half-stable")
    if name == "silu":
        return Activation("silu", F.silu, {}, (), "half-stable")
    if name == "softplus":
        return Activation("softplus", F.softplus, {}, (), "none")
    if name == "sigmoid":
        return Activation("sigmoid", torch.sigmoid, {}, (), "none")
    if name == "elu":
        alpha = float(params.get("alpha", 1.0))
        # ELU is smooth except a jump of sigma'' at 0; sigma(0)=0, sigma'(0)=1 only when alpha=1.
        return Activation("elu", lambda z: F.elu(z, alpha), {"alpha": alpha}, (0.0,),
                          "K*=0" if math.isclose(alpha, 1.0) else "none")
    if name == "repu":
        p = _positive_int("repu", "p", params.get("p", 2))
        return Activation("repu", lambda z: repu(z, p), {"p": p}, (0.0,),
                          "scale-invariant" if p == 1 else "none")
    if name == "mrepu":
        p = _positive_int("mrepu", "p", params.get("p", 2))
        shift = float(params.get("shift", 1.0))
        if shift <= 0:
            raise ValueError(f"activation.shift={shift}: mrepu needs shift > 0")
        return Activation("mrepu", lambda z: mrepu(z, p, shift), {"p": p, "shift": shift},
                          (-shift,), "K*=0")
    raise ValueError(f"activation.name={name!r}: unknown; choose one of {', '.join(NAMES)}")


NAMES = ("relu", "leaky_relu", "tanh", "sin", "gelu", "silu", "softplus", "sigmoid", "elu",
         "repu", "mrepu")
