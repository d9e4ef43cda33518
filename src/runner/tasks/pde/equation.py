"""A PDE written as data, read and checked: its variables and their ranges, named parameters, the
residual, the conditions on planes of the domain and the exact solution; and u's partial
derivatives by autograd.

- `variables`: {x: [-1, 1], t: [0, 1]}, one letter each, in the order the network sees them.
- `params`: {nu: 0.01}, named numbers every expression may use.
- `residual`: an expression over u, its partial derivatives (u_t, u_xx, u_xy, u_xxx, ...), the
  variables and the parameters, zero where u solves the equation.
- `conditions`: values of u or of a derivative on a plane, [{where: "t=0", u: "-sin(pi*x)"}, ...];
  on t = its lower end they are `initial`, the others `boundary`.
- `exact`: an expression, or a reference object (a `_target_` node, e.g.
  runner.tasks.pde.burgers.ColeHopf) called with the variables it names as keyword tensors.

Every error is a ConfigError naming the key under `task` (runner.config.instantiate adds `task.`).
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable
from dataclasses import dataclass

import torch

from runner.checks import ConfigError, invalid, is_real, unknown_key
from runner.expression import RESERVED, Expression, ExpressionError, derivative_key

TIME = "t"  # the variable whose lower end holds the initial conditions

Field = Callable[[torch.Tensor], torch.Tensor]


def read_variables(variables) -> tuple[tuple[str, ...], list[tuple[float, float]]]:
    """(names, ranges) of {name: [low, high]}."""
    if not isinstance(variables, dict) or not variables:
        raise invalid("variables", variables, "a mapping of names to ranges like {x: [0, 1], t: [0, 1]}")
    names, ranges = [], []
    for name, span in variables.items():
        if not re.fullmatch(r"[a-z]", str(name)) or name in RESERVED:
            raise ConfigError(f"variables.{name}", " is invalid: a variable is one lowercase letter, not u or e "
                              "(derivatives are named u_ and one letter per variable)")
        ok = isinstance(span, (list, tuple)) and len(span) == 2 and all(is_real(v) for v in span) and span[0] < span[1]
        if not ok:
            raise invalid(f"variables.{name}", span, "[low, high] with low < high")
        names.append(str(name))
        ranges.append((float(span[0]), float(span[1])))
    return tuple(names), ranges


def read_params(params, variables) -> dict[str, float]:
    """{name: number}; names are letters and digits, neither reserved nor a variable."""
    if params is None:
        return {}
    if not isinstance(params, dict):
        raise invalid("params", params, "a mapping like {nu: 0.01}")
    out = {}
    for name, value in params.items():
        if not re.fullmatch(r"[A-Za-z][A-Za-z0-9]*", str(name)) or name in RESERVED or name.startswith("u_"):
            raise ConfigError(f"params.{name}", " is invalid: a parameter name is letters and digits, not u, u_..., "
                              f"{', '.join(sorted(RESERVED - {'u'}))}")
        if isinstance(variables, dict) and name in variables:
            raise ConfigError(f"params.{name}", f" is invalid: {name} is also a variable")
        if not is_real(value):
            raise invalid(f"params.{name}", value, "a number")
        out[name] = float(value)
    return out


def expression(key: str, text, variables: tuple[str, ...], params: dict[str, float],
               unknown: bool = False) -> Expression:
    """An expression over the variables and parameters (and u's derivatives when `unknown`)."""
    try:
        return Expression(text, variables, params, unknown=unknown)
    except ExpressionError as exc:
        raise ConfigError(key, f"={text!r} is invalid: {exc}") from None


def read_residual(residual, variables: tuple[str, ...], params: dict[str, float]) -> Expression:
    expr = expression("residual", residual, variables, params, unknown=True)
    if not expr.derivatives:
        raise ConfigError("residual", f"={residual!r} is invalid: it does not mention u or a derivative of u, "
                          "so it constrains nothing")
    return expr


@dataclass(frozen=True)
class Condition:
    """Prescribed values on the plane `variables[axis] = value`: {derivative key: expression}."""

    axis: int
    value: float
    values: dict[tuple[int, ...], Expression]
    initial: bool


def read_conditions(conditions, variables: tuple[str, ...], ranges: list[tuple[float, float]],
                    params: dict[str, float]) -> list[Condition]:
    if not isinstance(conditions, list) or not conditions:
        raise invalid("conditions", conditions, "a non-empty list like "
                      "[{where: \"t=0\", u: \"sin(pi*x)\"}, {where: \"x=0\", u: 0}]")
    return [read_condition(f"conditions[{i}]", spec, variables, ranges, params) for i, spec in enumerate(conditions)]


def read_condition(key: str, spec, variables: tuple[str, ...], ranges: list[tuple[float, float]],
                   params: dict[str, float]) -> Condition:
    if not isinstance(spec, dict) or "where" not in spec:
        raise invalid(key, spec, "a mapping like {where: \"x=0\", u: 0}")
    where = str(spec["where"])
    match = re.fullmatch(r"\s*([a-z])\s*=(.+)", where)
    if not match or match.group(1) not in variables:
        raise invalid(f"{key}.where", where, f"<variable>=<value> with a variable from {', '.join(variables)}")
    name, axis = match.group(1), variables.index(match.group(1))
    try:
        value = float(Expression(match.group(2), (), params).evaluate({}))
    except ExpressionError as exc:
        raise ConfigError(f"{key}.where", f"={where!r} is invalid: the value must be a number: {exc}") from None
    lo, hi = ranges[axis]
    tol = 1e-12 * max(1.0, hi - lo)
    if not lo - tol <= value <= hi + tol:
        raise ConfigError(f"{key}.where", f"={where!r} is invalid: outside the domain, {name} in [{lo:g}, {hi:g}]")
    values = {}
    for field, text in spec.items():
        if field == "where":
            continue
        try:
            dkey = derivative_key(str(field), variables)
        except ExpressionError as exc:
            raise ConfigError(f"{key}.{field}", f" is invalid: {exc}") from None
        if dkey is None:
            raise unknown_key(f"{key}.{field}", ["where", "u", "u_<variables>"])
        values[dkey] = expression(f"{key}.{field}", text, variables, params)
    if not values:
        raise ConfigError(key, " is invalid: give a value of u (or a derivative) besides where")
    initial = name == TIME and abs(value - lo) <= tol
    return Condition(axis, min(max(value, lo), hi), values, initial)


def read_exact(exact, variables: tuple[str, ...], params: dict[str, float]) -> Callable[[dict], torch.Tensor]:
    """The exact solution as a function of {variable: tensor}: an expression, or a reference object
    called with the variables its signature names."""
    if callable(exact):
        wanted = list(inspect.signature(exact).parameters)
        missing = [v for v in wanted if v not in variables]
        if missing:
            raise ConfigError("exact", f" is invalid: {type(exact).__name__} is a function of {', '.join(wanted)}; "
                              f"the equation's variables are {', '.join(variables)}")
        return lambda env: exact(**{v: env[v] for v in wanted})
    try:
        return Expression(exact, variables, params).evaluate
    except ExpressionError as exc:
        raise ConfigError("exact", f"={exact!r} is invalid: {exc} (or a reference with a _target_, e.g. "
                          "runner.tasks.pde.burgers.ColeHopf)") from None


def _grad(y: torch.Tensor, points: torch.Tensor, create_graph: bool) -> torch.Tensor:
    """d(sum y)/d points; zeros where y does not depend on them (a constant derivative)."""
    if not y.requires_grad:
        return torch.zeros_like(points)
    (g,) = torch.autograd.grad(y.sum(), points, create_graph=create_graph, retain_graph=True, allow_unused=True)
    return torch.zeros_like(points) if g is None else g


def partials(field: Field, points: torch.Tensor, keys, create_graph: bool = True) -> dict[tuple, torch.Tensor]:
    """u = field(points) and its partial derivatives `keys` (see expression.derivative_key; () is u).

    `points` (..., N, d) must be a leaf that requires grad; values are (..., N, 1). Each derivative
    is one slice of the gradient of its parent (the key without its last index), so u_x and u_t
    cost one backward pass together, u_xx one more. With create_graph False only the gradients
    that later ones differentiate keep their graph.
    """
    needed = {k[:i] for k in keys for i in range(len(k) + 1)}  # every key and its ancestors
    parents = {k[:-1] for k in needed if k}
    values, grads = {(): field(points)}, {}
    for key in sorted(needed - {()}, key=len):
        parent = key[:-1]
        if parent not in grads:
            deeper = any(p[:-1] == parent for p in parents if len(p) == len(parent) + 1)
            grads[parent] = _grad(values[parent], points, create_graph or deeper)
        values[key] = grads[parent][..., key[-1]:key[-1] + 1]
    return {k: values[k] for k in set(keys) | {()}}
