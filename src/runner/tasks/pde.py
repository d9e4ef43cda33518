"""PDEs written as data: a physics-informed net for any equation in the config, scored against
its exact solution.

- `variables`: the inputs and their ranges, {x: [-1, 1], t: [0, 1]}, one letter each; the
  network sees them in this order (mapped onto [-1, 1] when `normalize`).
- `residual`: an expression over u, its partial derivatives (u_t, u_xx, u_xy, u_xxx, ...), the
  variables and `params`, zero where u solves the equation: 'u_t + u*u_x - nu*u_xx'.
- `conditions`: values of u, or of a derivative (u_t for second order in time), on a plane of
  the domain: [{where: "t=0", u: "-sin(pi*x)"}, {where: "x=-1", u: 0}]. Conditions on t = its
  lower end are `initial`, the others `boundary`.
- `exact`: the exact solution, an expression or the name of a registered reference (REFERENCES).

The loss per member is weight_pde * mean(residual^2) on collocation points plus weight_initial
and weight_boundary times the conditions' squared errors (a mean per prescribed quantity, summed).
Derivatives come from autograd, only those the residual and conditions name, each ensemble member
on its own copy of the points. Metrics: rel_l2 = ||u - u_exact|| / ||u_exact|| and max_abs_error
on the evaluation grid, and the loss terms. Presets: task=burgers, task=heat, ... (conf/task/, each built on conf/task/pde.yaml).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from runner.training.ensemble import EnsembleMLP
from runner.expression import RESERVED, Expression, ExpressionError, derivative_key, derivative_name
from runner.tasks import burgers
from runner.tasks.base import Task

log = logging.getLogger("runner")
SAMPLERS = ("lhs", "uniform")
TIME = "t"                   # the variable whose lower end holds the initial conditions
EVAL_POINTS = 101            # per variable, where task.eval_grid does not say
CHECK_POINTS = 256           # collocation points on which the exact solution is checked at start
SLICE_FRACTIONS = (0.25, 0.5, 0.75)


@dataclass(frozen=True)
class Reference:
    """An exact solution too long for one expression: a differentiable torch function of the
    variables and parameters it names (in that order), and where it comes from."""

    solution: Callable[..., torch.Tensor]
    variables: tuple[str, ...]
    params: tuple[str, ...]
    source: str


REFERENCES = {
    "burgers_cole_hopf": Reference(burgers.cole_hopf, ("x", "t"), ("nu",),
                                   "Cole-Hopf for u(0, x) = -sin(pi x), Gauss-Hermite quadrature "
                                   "(Basdevant et al., Computers & Fluids 14, 1986)"),
}

Field = Callable[[torch.Tensor], torch.Tensor]


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


@dataclass(frozen=True)
class Condition:
    """Prescribed values on the plane `variables[axis] = value`: {derivative key: expression}."""

    axis: int
    value: float
    values: dict[tuple[int, ...], Expression]
    initial: bool


class PDE(Task):
    """A PINN for the equation in the config: residual + initial + boundary losses per member."""

    out_dim = 1

    def __init__(self, variables: dict, residual: str, conditions: list, exact: str, name: str,
                 params: dict | None, n_collocation: int, n_boundary: int, initial_fraction: float,
                 sampler: str, resample_every: int, weight_pde: float, weight_initial: float,
                 weight_boundary: float, normalize: bool, eval_grid: dict | None, seed: int):
        if sampler not in SAMPLERS:
            raise ValueError(f"task.sampler={sampler!r}: choose one of {', '.join(SAMPLERS)}")
        self.name = name
        self.params = self._read_params(params or {}, variables)
        self.variables, self.ranges = self._read_variables(variables)
        self.in_dim = len(self.variables)
        self.residual_expr = self._expression("task.residual", residual, unknown=True)
        if not self.residual_expr.derivatives:
            raise ValueError(f"task.residual={residual!r} is invalid: it does not mention u or a derivative "
                             "of u, so it constrains nothing")
        self.residual_keys = self.residual_expr.derivatives
        if not isinstance(conditions, list) or not conditions:
            raise ValueError(f"task.conditions={conditions!r} is invalid: must be a non-empty list like "
                             "[{where: \"t=0\", u: \"sin(pi*x)\"}, {where: \"x=0\", u: 0}]")
        self.conditions = [self._read_condition(i, c) for i, c in enumerate(conditions)]
        self.condition_keys = sorted({k for c in self.conditions for k in c.values}, key=lambda k: (len(k), k))
        self.exact_text, self.exact = str(exact), self._read_exact(exact)
        self.n_collocation, self.sampler, self.resample_every = n_collocation, sampler, resample_every
        self.loss_weights = (weight_pde, weight_initial, weight_boundary)
        self.normalize = normalize
        self.lo = torch.tensor([r[0] for r in self.ranges], dtype=torch.float64)
        self.hi = torch.tensor([r[1] for r in self.ranges], dtype=torch.float64)
        self.gen = torch.Generator().manual_seed(seed)
        self.collocation = self.sample_collocation()
        self.condition_points64, self.targets = self.sample_conditions(n_boundary, initial_fraction)
        self.condition_points = self.condition_points64.float()  # the same points: sampled at float32 precision
        self.axes = self._eval_axes(eval_grid or {})
        mesh = np.meshgrid(*self.axes, indexing="ij")
        grid = torch.tensor(np.stack([m.ravel() for m in mesh], 1), dtype=torch.float64)
        self.grid = grid  # float64; scaled in the network's own dtype, as every input is
        self.u_ref_flat = self.exact_at(grid)[:, 0].detach()
        if not torch.isfinite(self.u_ref_flat).all():
            raise ValueError(f"task.exact={self.exact_text!r} is not finite on the evaluation grid")
        self.u_ref = self.u_ref_flat.numpy().reshape([len(a) for a in self.axes])
        self.epoch, self.fresh = 0, None
        self.last_terms: dict[str, torch.Tensor] = {}
        self.history: list[dict] = []
        self._warn_if_inexact()

    # ---- reading the config -------------------------------------------------------------------
    @staticmethod
    def _read_params(params: dict, variables: dict) -> dict[str, float]:
        if not isinstance(params, dict):
            raise ValueError(f"task.params={params!r} is invalid: must be a mapping like {{nu: 0.01}}")
        out = {}
        for name, value in params.items():
            if not re.fullmatch(r"[A-Za-z][A-Za-z0-9]*", str(name)) or name in RESERVED or name.startswith("u_"):
                raise ValueError(f"task.params.{name} is invalid: a parameter name is letters and digits, "
                                 f"not u, u_..., {', '.join(sorted(RESERVED - {'u'}))}")
            if isinstance(variables, dict) and name in variables:
                raise ValueError(f"task.params.{name} is invalid: {name} is also a variable")
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ValueError(f"task.params.{name}={value!r} is invalid: must be a number")
            out[name] = float(value)
        return out

    @staticmethod
    def _read_variables(variables) -> tuple[tuple[str, ...], list[tuple[float, float]]]:
        if not isinstance(variables, dict) or not variables:
            raise ValueError(f"task.variables={variables!r} is invalid: must be a mapping of names to "
                             "ranges like {x: [0, 1], t: [0, 1]}")
        names, ranges = [], []
        for name, span in variables.items():
            if not re.fullmatch(r"[a-z]", str(name)) or name in RESERVED:
                raise ValueError(f"task.variables.{name} is invalid: a variable is one lowercase letter, "
                                 "not u or e (derivatives are named u_ and one letter per variable)")
            ok = isinstance(span, (list, tuple)) and len(span) == 2 and all(
                isinstance(v, (int, float)) and not isinstance(v, bool) for v in span) and span[0] < span[1]
            if not ok:
                raise ValueError(f"task.variables.{name}={span!r} is invalid: must be [low, high] with low < high")
            names.append(str(name))
            ranges.append((float(span[0]), float(span[1])))
        return tuple(names), ranges

    def _expression(self, key: str, text, unknown: bool = False) -> Expression:
        """An expression over the variables and parameters; errors name the config key."""
        try:
            return Expression(text, self.variables, self.params, unknown=unknown)
        except ExpressionError as exc:
            raise ValueError(f"{key}={text!r} is invalid: {exc}") from None

    def _read_condition(self, i: int, spec) -> Condition:
        key = f"task.conditions[{i}]"
        if not isinstance(spec, dict) or "where" not in spec:
            raise ValueError(f"{key}={spec!r} is invalid: must be a mapping like {{where: \"x=0\", u: 0}}")
        where = str(spec["where"])
        match = re.fullmatch(r"\s*([a-z])\s*=(.+)", where)
        if not match or match.group(1) not in self.variables:
            raise ValueError(f"{key}.where={where!r} is invalid: must be <variable>=<value> with a variable "
                             f"from {', '.join(self.variables)}")
        name, axis = match.group(1), self.variables.index(match.group(1))
        try:
            value = float(Expression(match.group(2), (), self.params).evaluate({}))
        except ExpressionError as exc:
            raise ValueError(f"{key}.where={where!r} is invalid: the value must be a number: {exc}") from None
        lo, hi = self.ranges[axis]
        tol = 1e-12 * max(1.0, hi - lo)
        if not lo - tol <= value <= hi + tol:
            raise ValueError(f"{key}.where={where!r} is invalid: outside the domain, {name} in [{lo:g}, {hi:g}]")
        values = {}
        for field, text in spec.items():
            if field == "where":
                continue
            try:
                dkey = derivative_key(str(field), self.variables)
            except ExpressionError as exc:
                raise ValueError(f"{key}.{field} is invalid: {exc}") from None
            if dkey is None:
                raise ValueError(f"{key}.{field} is not a known key; allowed: where, u, u_<variables> "
                                 f"(e.g. u_{self.variables[-1]})")
            values[dkey] = self._expression(f"{key}.{field}", text)
        if not values:
            raise ValueError(f"{key} is invalid: give a value of u (or a derivative) besides where")
        initial = name == TIME and abs(value - lo) <= tol
        return Condition(axis, min(max(value, lo), hi), values, initial)

    def _read_exact(self, exact) -> Callable[[dict[str, torch.Tensor]], torch.Tensor]:
        """The exact solution as a function of {variable: tensor}."""
        if isinstance(exact, str) and exact in REFERENCES:
            ref = REFERENCES[exact]
            missing = [v for v in ref.variables if v not in self.variables] + [
                p for p in ref.params if p not in self.params]
            if missing:
                raise ValueError(f"task.exact={exact!r} is invalid: the reference needs variables "
                                 f"{', '.join(ref.variables)} and params {', '.join(ref.params)}; "
                                 f"missing {', '.join(missing)}")
            args = [self.params[p] for p in ref.params]
            return lambda env: ref.solution(*(env[v] for v in ref.variables), *args)
        try:
            expr = self._expression("task.exact", exact)
        except ValueError as exc:
            raise ValueError(f"{exc} (or a registered reference: {', '.join(REFERENCES)})") from None
        return expr.evaluate

    def _eval_axes(self, spec: dict) -> list[np.ndarray]:
        """Per variable: n points over its range (an integer) or over [low, high, n]."""
        unknown = [k for k in spec if k not in self.variables]
        if unknown:
            raise ValueError(f"task.eval_grid.{unknown[0]} is not a variable; the variables are "
                             f"{', '.join(self.variables)}")
        axes = []
        for name, (lo, hi) in zip(self.variables, self.ranges):
            value = spec.get(name, EVAL_POINTS)
            if isinstance(value, int) and not isinstance(value, bool):
                value = [lo, hi, value]
            ok = (isinstance(value, (list, tuple)) and len(value) == 3 and isinstance(value[2], int)
                  and value[2] >= 2 and lo <= value[0] < value[1] <= hi)
            if not ok:
                raise ValueError(f"task.eval_grid.{name}={value!r} is invalid: must be a number of points "
                                 f">= 2, or [low, high, n] inside [{lo:g}, {hi:g}]")
            axes.append(np.linspace(float(value[0]), float(value[1]), value[2]))
        return axes

    # ---- points -------------------------------------------------------------------------------
    def _unit(self, n: int, dims: int) -> torch.Tensor:
        """n points in [0, 1)^dims: uniform, or Latin hypercube (one point per stratum per axis)."""
        u = torch.rand(n, dims, generator=self.gen, dtype=torch.float64)
        if self.sampler == "lhs":
            strata = torch.stack([torch.randperm(n, generator=self.gen) for _ in range(dims)], 1)
            u = (strata + u) / n
        return u

    def sample_collocation(self) -> torch.Tensor:
        """(n_collocation, d) points in the domain."""
        u = self._unit(self.n_collocation, self.in_dim)
        return (self.lo + u * (self.hi - self.lo)).float()

    def _points_on(self, conditions: list[Condition], n: int) -> tuple[torch.Tensor, list[Condition]]:
        """n points, point i on conditions[i % len], uniform over the other variables (float64),
        and the condition of each point."""
        r = torch.rand(n, self.in_dim - 1, generator=self.gen, dtype=torch.float64)
        points = torch.empty(n, self.in_dim, dtype=torch.float64)
        for j, cond in enumerate(conditions):
            rows = torch.arange(j, n, len(conditions))
            points[rows, cond.axis] = cond.value
            free = [a for a in range(self.in_dim) if a != cond.axis]
            for col, a in enumerate(free):
                points[rows, a] = self.lo[a] + (self.hi[a] - self.lo[a]) * r[rows, col]
        return points, [conditions[i % len(conditions)] for i in range(n)] if conditions else []

    def sample_conditions(self, n: int, initial_fraction: float):
        """Points on the condition planes: round(n * initial_fraction) on the initial conditions (all
        n when there is no other kind), the rest on the boundary ones, taking turns. Returns the
        points (n, d) and, per term and prescribed quantity, (term, derivative key, rows, targets (rows, 1)),
        in float64, the points on the float32 grid (a network trains on them in its own dtype)."""
        initial = [c for c in self.conditions if c.initial]
        boundary = [c for c in self.conditions if not c.initial]
        n_init = n if not boundary else 0 if not initial else min(n, round(n * initial_fraction))
        p_init, own_init = self._points_on(initial, n_init)
        p_bnd, own_bnd = self._points_on(boundary, n - n_init)
        # rounded to float32 first, so the targets are exact at the points a float32 network sees
        points, owners = torch.cat([p_init, p_bnd]).float().double(), own_init + own_bnd
        targets = []
        for term, group in (("initial", initial), ("boundary", boundary)):
            for key in self.condition_keys:
                rows = torch.tensor([i for i, c in enumerate(owners) if c in group and key in c.values],
                                    dtype=torch.long)
                if not len(rows):
                    continue
                target = torch.empty(len(rows), dtype=torch.float64)
                for cond in group:
                    mine = torch.tensor([owners[i] is cond for i in rows.tolist()], dtype=torch.bool)
                    if key in cond.values and mine.any():
                        at = points[rows[mine]]
                        value = cond.values[key].evaluate({v: at[:, i] for i, v in enumerate(self.variables)})
                        target[mine] = torch.as_tensor(value, dtype=torch.float64)
                if not torch.isfinite(target).all():
                    raise ValueError(f"task.conditions: the values of {derivative_name(key, self.variables)} "
                                     f"on the {term} conditions are not finite")
                targets.append((term, key, rows, target.unsqueeze(1)))
        return points, targets

    def scale(self, points: torch.Tensor) -> torch.Tensor:
        """Network input: every variable mapped linearly onto [-1, 1] when `normalize`, else as is."""
        if not self.normalize:
            return points
        lo, hi = self.lo.to(points), self.hi.to(points)
        return 2.0 * (points - lo) / (hi - lo) - 1.0

    def network_inputs(self) -> torch.Tensor:
        """The (N, d) inputs the network sees in training: collocation and condition points, scaled."""
        return self.scale(torch.cat([self.collocation, self.condition_points]))

    # ---- the equation -------------------------------------------------------------------------
    def exact_at(self, points: torch.Tensor) -> torch.Tensor:
        """The exact solution at points (..., N, d) as (..., N, 1), in their dtype (float64 here)."""
        env = {v: points[..., i:i + 1] for i, v in enumerate(self.variables)}
        return torch.as_tensor(self.exact(env), dtype=points.dtype).expand_as(points[..., :1])

    def residual_from(self, values: dict[tuple, torch.Tensor], points: torch.Tensor) -> torch.Tensor:
        """The residual expression from u's derivatives (..., N, 1) at points (..., N, d)."""
        env = {derivative_name(k, self.variables): v for k, v in values.items()}
        fixed = points.detach()
        env.update({v: fixed[..., i:i + 1] for i, v in enumerate(self.variables)})
        return self.residual_expr.evaluate(env)

    def model_partials(self, model: EnsembleMLP, points: torch.Tensor, keys,
                       create_graph: bool = True) -> tuple[torch.Tensor, dict[tuple, torch.Tensor]]:
        """Each member's own leaf copy of the points (K, N, d) and u and its derivatives `keys` there,
        so the input gradient of the summed output is each member's own (members never mix)."""
        points = points.to(model.weights[0].dtype).expand(model.size, -1, -1).clone().requires_grad_(True)
        return points, partials(lambda p: model(self.scale(p)), points, keys, create_graph)

    def residual(self, model: EnsembleMLP, points: torch.Tensor, create_graph: bool = True) -> torch.Tensor:
        """The residual of every member at points (N, d): (K, N, 1)."""
        points, values = self.model_partials(model, points, self.residual_keys, create_graph)
        return self.residual_from(values, points)

    def check_exact(self, points: torch.Tensor | None = None) -> dict[str, float]:
        """Mean squared residual of the exact solution (float64, derivatives by autograd) at points
        (default: some collocation points), and the mean squared error of every condition on its points."""
        with torch.enable_grad():
            pts = (self.collocation[:CHECK_POINTS] if points is None else points).double().requires_grad_(True)
            values = partials(self.exact_at, pts, self.residual_keys, create_graph=False)
            out = {"residual": float(self.residual_from(values, pts).detach().pow(2).mean())}
            points = self.condition_points64.clone().requires_grad_(True)
            values = partials(self.exact_at, points, self.condition_keys, create_graph=False)
        for term, key, rows, target in self.targets:
            name = f"{term} {derivative_name(key, self.variables)}"
            out[name] = float((values[key][rows].detach() - target).pow(2).mean())
        return out

    def _warn_if_inexact(self) -> None:
        """Log when task.exact does not solve task.residual or meet the conditions (a typo, usually)."""
        for name, value in self.check_exact().items():
            if not value <= 1e-6:
                log.warning("task.exact=%r does not satisfy the %s: mean squared error %.3g (expected ~0)",
                            self.exact_text, name if name == "residual" else f"{name} condition", value)

    # ---- training -----------------------------------------------------------------------------
    def train_batch(self) -> dict[str, torch.Tensor]:
        return {"collocation": self.collocation, "conditions": self.condition_points}

    def on_epoch_start(self, epoch: int) -> None:
        self.epoch = epoch
        if self.resample_every and epoch and epoch % self.resample_every == 0:
            self.fresh = self.sample_collocation()

    def terms(self, model: EnsembleMLP, batch: dict[str, torch.Tensor],
              create_graph: bool = True) -> dict[str, torch.Tensor]:
        """Mean squared residual, initial and boundary errors per member, each (K,)."""
        points = batch["collocation"] if self.fresh is None else self.fresh.to(batch["collocation"].device)
        pde = self.residual(model, points, create_graph).pow(2).mean(dim=(1, 2))
        at = batch["conditions"]
        if self.condition_keys == [()]:
            values = {(): model(self.scale(at.to(model.weights[0].dtype)))}  # values of u only: no input gradient
        else:
            values = self.model_partials(model, at, self.condition_keys, create_graph)[1]
        out = {"pde": pde, "initial": torch.zeros_like(pde), "boundary": torch.zeros_like(pde)}
        for term, key, rows, target in self.targets:
            prediction = values[key][:, rows.to(at.device)]
            err = prediction - target.to(prediction)  # float64 targets, cast to the network's dtype
            out[term] = out[term] + err.pow(2).mean(dim=(1, 2))
        return out

    def loss(self, model: EnsembleMLP, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        terms = self.terms(model, batch)
        self.last_terms = {k: v.detach() for k, v in terms.items()}
        w_pde, w_init, w_bnd = self.loss_weights
        return w_pde * terms["pde"] + w_init * terms["initial"] + w_bnd * terms["boundary"]

    # ---- metrics ------------------------------------------------------------------------------
    def predict_grid(self, model: EnsembleMLP) -> torch.Tensor:
        """Predictions on the evaluation grid, (K, grid points), float64 on the CPU."""
        with torch.no_grad():
            u = model(self.scale(self.grid.to(model.weights[0])))
        return u[..., 0].double().cpu()

    def rel_l2(self, model: EnsembleMLP) -> torch.Tensor:
        """||u_pred - u_exact||_2 / ||u_exact||_2 on the evaluation grid, per member."""
        return (self.predict_grid(model) - self.u_ref_flat).norm(dim=1) / self.u_ref_flat.norm()

    def monitor(self, model: EnsembleMLP) -> dict[str, torch.Tensor]:
        if self.history and self.history[-1]["epoch"] == self.epoch:
            # L-BFGS evaluates one step many times: measure once per epoch, at its start
            return {k: v for k, v in self.history[-1].items() if k != "epoch"}
        out = {"rel_l2": self.rel_l2(model)}
        out.update({f"train/loss_{k}": v for k, v in self.last_terms.items()})
        self.history.append({"epoch": self.epoch, **{k: v.cpu().double() for k, v in out.items()}})
        return out

    def evaluate(self, model: EnsembleMLP) -> dict[str, torch.Tensor]:
        device = model.weights[0].device
        batch = {k: v.to(device) for k, v in self.train_batch().items()}
        with torch.enable_grad():
            terms = self.terms(model, batch, create_graph=False)
        err = self.predict_grid(model) - self.u_ref_flat
        return {"rel_l2": err.norm(dim=1) / self.u_ref_flat.norm(), "max_abs_error": err.abs().amax(1),
                **{f"loss_{k}": v.detach().cpu() for k, v in terms.items()}}

    def save_outputs(self, model: EnsembleMLP, run_dir: Path, label: str) -> None:
        from runner.results.files import save_npz_atomic
        from runner.tasks import pde_plots

        pred = self.predict_grid(model).reshape(-1, *self.u_ref.shape).numpy()
        rel = np.linalg.norm((pred - self.u_ref).reshape(len(pred), -1), axis=1) / np.linalg.norm(self.u_ref)
        save_npz_atomic(run_dir / "predictions.npz", **dict(zip(self.variables, self.axes)), u_exact=self.u_ref,
                        u_pred=pred.astype(np.float32), rel_l2=rel)
        order = np.argsort(np.where(np.isfinite(rel), rel, np.inf))
        shown = int(order[len(rel) // 2])  # the median member represents the ensemble
        title = f"{label} on {self.name}: member {shown} of {len(rel)}, rel L2 {rel[shown]:.2e}"
        plots = run_dir / "plots"
        h = self.variables.index(TIME) if TIME in self.variables[:2] else 0  # time along x, as usual
        pde_plots.plot_solution(self.variables, self.axes, pred[shown], self.u_ref, title, plots / "solution.png", h)
        if self.in_dim >= 2:
            lo, hi = self.ranges[h]
            pde_plots.plot_slices(self.variables, self.axes, pred[shown], self.u_ref, title, plots / "slices.png",
                                  h, [lo + f * (hi - lo) for f in SLICE_FRACTIONS])
        if self.history:
            pde_plots.plot_history(self.history, label, plots / "training.png")
