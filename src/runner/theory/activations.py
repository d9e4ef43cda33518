"""Activation functions: one object shared by the networks and by the theory.

An `Activation` is a torch function applied elementwise, its kinks (where σ or a derivative
jumps, so quadrature splits its integrals there) and optionally a closed-form derivative. What the
infinite-width theory says of it (runner.theory.criticality: PDLT's universality class and the
critical initialization) is measured from the function, never declared by hand, so a researcher's
own function gets the same treatment as a built-in. This module is the theory's leaf: it imports
nothing of runner.theory.

conf/activation/*.yaml names each by `_target_`:
- the built-ins below (`relu`, `tanh`, `mrepu`, ...), each a factory of an Activation;
- `Formula`: a formula in z written in the config (`activation=formula
  activation.formula='z*tanh(softplus(z))'`), other keys its named parameters;
- `Function`: a torch function of one tensor in the user's own module
  (`activation=python activation.fn=mymodule.mish`), other keys its keyword arguments;
- or a YAML of the user's own (`--config-dir`) whose `_target_` is any callable returning an
  Activation (docs/extending.md).
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Callable, Sequence
from functools import lru_cache

import torch
import torch.nn.functional as F

from runner.checks import ConfigError, invalid, is_real, number, positive, positive_int
from runner.expression import Expression, ExpressionError

# Where an activation must be finite: every real z is asked for, this grid stands for them (the
# theory integrates σ² over Gaussians of any variance, the networks evaluate it anywhere).
# Built on first use, not at import: a tensor operation at import would fix torch's float kernels
# before a run can choose them (runner.numerics).
@lru_cache(maxsize=1)
def probe_points() -> torch.Tensor:
    return torch.cat([torch.zeros(1, dtype=torch.float64), torch.arange(-1000, 1001, dtype=torch.float64) / 100,
                      torch.tensor([-1e3, -100.0, -30.0, 30.0, 100.0, 1e3], dtype=torch.float64)])


class Activation:
    """A scalar nonlinearity σ(z) applied elementwise, with what the theory needs of it.

    `kinks`: points where σ or one of its derivatives jumps (0 is always split, so ReLU needs
    none); without them the theory still works, only less exactly. `derivative`: σ' in closed
    form, else autograd (exact for every function torch differentiates). The constructor checks
    that σ is an elementwise function, finite at 0 and defined on all of R (every z of probe_points()).
    """

    def __init__(self, name: str, fn: Callable[[torch.Tensor], torch.Tensor], params: dict | None = None,
                 kinks: Sequence[float] | None = (), derivative: Callable[[torch.Tensor], torch.Tensor] | None = None):
        if not isinstance(name, str) or not name:
            raise invalid("name", name, "a non-empty name")
        if not callable(fn):
            raise invalid("fn", fn, "a function of one tensor")
        self.name, self.fn, self.params = name, fn, dict(params or {})
        self.kinks = self._read_kinks(kinks)
        self._derivative = derivative
        self._check_defined()

    @staticmethod
    def _read_kinks(kinks) -> tuple[float, ...]:
        items = [] if kinks is None else list(kinks) if isinstance(kinks, Sequence) and not isinstance(kinks, str) else None
        if items is None or not all(is_real(k) and math.isfinite(k) for k in items):
            raise invalid("kinks", kinks, "a list of numbers (where σ or a derivative jumps)")
        return tuple(sorted({float(k) for k in items}))

    def _check_defined(self) -> None:
        """σ maps a tensor to one of its shape, finite at 0 and at every z of probe_points()."""
        probe = probe_points()
        try:
            with torch.no_grad():
                y = self.fn(probe)
        except Exception as exc:  # noqa: BLE001 - whatever the user's function raises
            raise ConfigError("", f": {self!r} cannot be evaluated on a float64 tensor: "
                              f"{type(exc).__name__}: {exc}") from None
        if not isinstance(y, torch.Tensor) or y.shape != probe.shape:
            shape = tuple(y.shape) if isinstance(y, torch.Tensor) else type(y).__name__
            raise ConfigError("", f": {self!r} is not elementwise: a tensor of shape {tuple(probe.shape)} "
                              f"gave {shape}")
        zero = float(y[0])  # probe[0] = 0
        if not math.isfinite(zero):
            raise ConfigError("", f": {self!r} is not finite at 0: σ(0) = {zero}")
        bad = ~torch.isfinite(y)
        if bad.any():
            z = float(probe[bad][torch.argmin(probe[bad].abs())])
            raise ConfigError("", f": {self!r} is not defined on all of R: σ({z:g}) = {float(y[bad][torch.argmin(probe[bad].abs())])}")

    def __call__(self, z: torch.Tensor) -> torch.Tensor:
        return self.fn(z)

    def derivative(self, z: torch.Tensor) -> torch.Tensor:
        """σ'(z) elementwise: the closed form when given, else autograd."""
        if self._derivative is not None:
            return self._derivative(z)
        with torch.enable_grad():
            z = z.detach().requires_grad_(True)
            (grad,) = torch.autograd.grad(self.fn(z).sum(), z)
        return grad

    @property
    def label(self) -> str:
        """The name and parameters as one identifier, e.g. mrepu_p2_shift1 (metric names, files)."""
        return self.name + "".join(f"_{k}{v:g}" if is_real(v) else f"_{k}{v}" for k, v in self.params.items())

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v}" for k, v in self.params.items())
        return f"{self.name}({args})"


# ---- the built-ins: conf/activation/<name>.yaml names each factory ------------------------------

def relu(name: str = "relu") -> Activation:
    return Activation(name, F.relu, derivative=lambda z: (z > 0).to(z.dtype))


def leaky_relu(slope: float = 0.01, name: str = "leaky_relu") -> Activation:
    slope = number("slope", slope)
    return Activation(name, lambda z: F.leaky_relu(z, slope), {"slope": slope},
                      derivative=lambda z: torch.where(z > 0, torch.ones_like(z), torch.full_like(z, slope)))


def tanh(name: str = "tanh") -> Activation:
    return Activation(name, torch.tanh, derivative=lambda z: 1 - torch.tanh(z) ** 2)


def sin(name: str = "sin") -> Activation:
    return Activation(name, torch.sin, derivative=torch.cos)


def gelu(name: str = "gelu") -> Activation:
    return Activation(name, F.gelu)


def silu(name: str = "silu") -> Activation:
    return Activation(name, F.silu)


def softplus(name: str = "softplus") -> Activation:
    return Activation(name, F.softplus, derivative=torch.sigmoid)


def sigmoid(name: str = "sigmoid") -> Activation:
    return Activation(name, torch.sigmoid)


def elu(alpha: float = 1.0, name: str = "elu") -> Activation:
    """ELU: smooth except a jump of σ'' at 0 (σ'(0) = 1 only when alpha = 1)."""
    alpha = positive("alpha", alpha)
    return Activation(name, lambda z: F.elu(z, alpha), {"alpha": alpha}, kinks=(0.0,))


def repu(p: int = 2, name: str = "repu") -> Activation:
    """RePU_p(z) = max(0, z)^p; p = 1 is ReLU."""
    p = positive_int("p", p)
    return Activation(name, lambda z: torch.clamp(z, min=0) ** p, {"p": p}, kinks=(0.0,),
                      derivative=lambda z: torch.where(z > 0, p * torch.clamp(z, min=0) ** (p - 1), 0.0))


def mrepu(p: int = 2, shift: float = 1.0, name: str = "mrepu") -> Activation:
    """Modified RePU, MRePU_p(z) = z * max(0, z + shift)^p.

    Paper B's defining formula was lost in extraction; this is the working definition
    (docs/papers.md) because it fits every statement that survived: it is p-1 times
    differentiable like RePU_p (the kink is at z = -shift), linear near 0 with σ(0) = 0 and
    σ'(0) = shift^p = 1, which puts it in the K* = 0 universality class (critical C_W = 1), and
    its active branch is a degree p+1 polynomial.
    """
    p, shift = positive_int("p", p), positive("shift", shift)

    def fn(z: torch.Tensor) -> torch.Tensor:
        return z * torch.clamp(z + shift, min=0) ** p

    def derivative(z: torch.Tensor) -> torch.Tensor:
        active = torch.clamp(z + shift, min=0)
        return torch.where(z + shift > 0, active**p + p * z * active ** (p - 1), 0.0)

    return Activation(name, fn, {"p": p, "shift": shift}, kinks=(-shift,), derivative=derivative)


# ---- a researcher's own -------------------------------------------------------------------------

class Formula(Activation):
    """σ written as a formula in z (runner.expression: + - * / **, numbers, pi, e, and functions
    such as tanh, erf, sigmoid, softplus, relu, max, min); any other keyword is a named
    parameter of the formula: Formula("z*sigmoid(beta*z)", beta=1.0)."""

    def __init__(self, formula: str, name: str = "formula", kinks: Sequence[float] | None = None, **params):
        for key, value in params.items():
            if not is_real(value):
                raise invalid(key, value, "a number (a parameter of the formula)")
        try:
            expression = Expression(formula, variables=("z",), params=params)
        except ExpressionError as exc:
            raise ConfigError("formula", f"={formula!r} is invalid: {exc}") from None
        if "z" not in expression.names:
            raise ConfigError("formula", f"={formula!r} is invalid: it does not mention z")
        unused = [key for key in params if key not in expression.names]
        if unused:
            raise ConfigError(unused[0], f" is not a parameter of the formula {formula!r} (it does not use it)")
        self.formula = expression.text

        def fn(z: torch.Tensor) -> torch.Tensor:
            return expression.evaluate({"z": z})

        super().__init__(name, fn, {k: float(v) for k, v in params.items()}, kinks)

    def __repr__(self) -> str:
        return f"{self.name}({self.formula}" + "".join(f", {k}={v:g}" for k, v in self.params.items()) + ")"


class Function(Activation):
    """σ from a function of one tensor in the user's own module, by dotted path (importable from the
    working directory or PYTHONPATH): Function("mymodule.mish"); any other keyword is passed to it."""

    def __init__(self, fn: str | Callable, name: str | None = None, kinks: Sequence[float] | None = None, **params):
        function = load_function(fn) if isinstance(fn, str) else fn
        if not callable(function):
            raise invalid("fn", fn, "a dotted path to a function of one tensor, e.g. mymodule.mish")
        self.path = fn if isinstance(fn, str) else f"{function.__module__}.{function.__qualname__}"
        call = (lambda z: function(z, **params)) if params else function
        super().__init__(name or getattr(function, "__name__", "function"), call, params, kinks)


def load_function(path: str) -> Callable:
    """The object at a dotted path `module.attribute`; a one-line error when it cannot be imported."""
    module, _, attribute = str(path).rpartition(".")
    if not module:
        raise invalid("fn", path, "a dotted path module.function, e.g. mymodule.mish")
    try:
        return getattr(importlib.import_module(module), attribute)
    except (ImportError, AttributeError) as exc:
        raise ConfigError("fn", f"={path!r} cannot be imported: {type(exc).__name__}: {exc}") from None
