"""A physics-informed net for any PDE written in the config, scored against its exact solution.

The task is composed of the equation (runner.tasks.pde.equation: variables, params, residual,
conditions, exact), a sampler of collocation points (runner.tasks.pde.samplers, conf/task/sampler)
and, for `exact`, an expression or a reference object (e.g. runner.tasks.pde.burgers.ColeHopf).

The loss per member is weight_pde * mean(residual^2) on collocation points plus weight_initial
and weight_boundary times the conditions' squared errors (a mean per prescribed quantity, summed).
Derivatives come from autograd, only those the residual and conditions name, each ensemble member
on its own copy of the points. Metrics: rel_l2 = ||u - u_exact|| / ||u_exact|| (`relative_l2`)
and max_abs_error on the evaluation grid, and the loss terms. Presets: task=burgers, task=heat, ...
(conf/task/, each built on conf/task/pde.yaml).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch

from runner import checks
from runner.expression import derivative_name
from runner.nets.mlp import EnsembleMLP
from runner.results.files import save_npz_atomic
from runner.results.summary import median_member
from runner.tasks.base import Task
from runner.tasks.pde import plots as pde_plots
from runner.tasks.pde.equation import (TIME, Condition, partials, read_conditions, read_exact, read_params,
                                       read_residual, read_variables)

log = logging.getLogger("runner")
EVAL_POINTS = 101            # per variable, where task.eval_grid does not say
CHECK_POINTS = 256           # collocation points on which the exact solution is checked at start
SLICE_FRACTIONS = (0.25, 0.5, 0.75)


def relative_l2(u: torch.Tensor, u_ref: torch.Tensor) -> torch.Tensor:
    """||u - u_ref||_2 / ||u_ref||_2 per member: u (K, N), u_ref (N,) -> (K,)."""
    return (u - u_ref).norm(dim=1) / u_ref.norm()


class PDE(Task):
    """A PINN for the equation in the config: residual + initial + boundary losses per member."""

    out_dim = 1

    def __init__(self, variables: dict, residual: str, conditions: list, exact, name: str,
                 params: dict | None, n_collocation: int, n_boundary: int, initial_fraction: float,
                 sampler, resample_every: int, weight_pde: float, weight_initial: float,
                 weight_boundary: float, normalize: bool, eval_grid: dict | None, seed: int):
        if not callable(getattr(sampler, "unit", None)):
            raise checks.invalid("sampler", sampler, "a sampler with a _target_ (task/sampler=lhs or uniform, or "
                                 "your own class with unit(n, dims, generator))")
        self.name = name
        self.params = read_params(params, variables)
        self.variables, self.ranges = read_variables(variables)
        self.in_dim = len(self.variables)
        self.residual_expr = read_residual(residual, self.variables, self.params)
        self.residual_keys = self.residual_expr.derivatives
        self.conditions: list[Condition] = read_conditions(conditions, self.variables, self.ranges, self.params)
        self.condition_keys = sorted({k for c in self.conditions for k in c.values}, key=lambda k: (len(k), k))
        self.exact_text = exact if isinstance(exact, str) else type(exact).__name__
        self.exact = read_exact(exact, self.variables, self.params)
        self.n_collocation = checks.positive_int("n_collocation", n_collocation)
        n_boundary = checks.nonnegative_int("n_boundary", n_boundary)
        initial_fraction = checks.between("initial_fraction", initial_fraction, 0, 1)
        self.sampler, self.resample_every = sampler, checks.nonnegative_int("resample_every", resample_every)
        self.loss_weights = tuple(checks.nonnegative(key, value) for key, value in (
            ("weight_pde", weight_pde), ("weight_initial", weight_initial), ("weight_boundary", weight_boundary)))
        self.normalize = checks.boolean("normalize", normalize)
        self.lo = torch.tensor([r[0] for r in self.ranges], dtype=torch.float64)
        self.hi = torch.tensor([r[1] for r in self.ranges], dtype=torch.float64)
        self.gen = torch.Generator().manual_seed(checks.nonnegative_int("seed", seed))
        self.collocation = self.sample_collocation()
        self.condition_points64, self.targets = self.sample_conditions(n_boundary, initial_fraction)
        self.condition_points = self.condition_points64.float()  # the same points: sampled at float32 precision
        self.axes = self._eval_axes(eval_grid or {})
        mesh = np.meshgrid(*self.axes, indexing="ij")
        self.grid = torch.tensor(np.stack([m.ravel() for m in mesh], 1), dtype=torch.float64)  # float64; scaled
        # in the network's own dtype, as every input is
        self.u_ref_flat = self.exact_at(self.grid)[:, 0].detach()
        if not torch.isfinite(self.u_ref_flat).all():
            raise checks.ConfigError("exact", f"={self.exact_text!r} is not finite on the evaluation grid")
        self.u_ref = self.u_ref_flat.numpy().reshape([len(a) for a in self.axes])
        self.epoch, self.fresh = 0, None
        self.last_terms: dict[str, torch.Tensor] = {}
        self.history: list[dict] = []
        self._warn_if_inexact()

    def _eval_axes(self, spec: dict) -> list[np.ndarray]:
        """Per variable: n points over its range (an integer) or over [low, high, n]."""
        unknown = [k for k in spec if k not in self.variables]
        if unknown:
            raise checks.ConfigError(f"eval_grid.{unknown[0]}", f" is not a variable; the variables are "
                                     f"{', '.join(self.variables)}")
        axes = []
        for name, (lo, hi) in zip(self.variables, self.ranges):
            value = spec.get(name, EVAL_POINTS)
            if checks.is_int(value):
                value = [lo, hi, value]
            ok = (isinstance(value, (list, tuple)) and len(value) == 3 and checks.is_int(value[2])
                  and value[2] >= 2 and lo <= value[0] < value[1] <= hi)
            if not ok:
                raise checks.invalid(f"eval_grid.{name}", value, f"a number of points >= 2, or [low, high, n] "
                                     f"inside [{lo:g}, {hi:g}]")
            axes.append(np.linspace(float(value[0]), float(value[1]), value[2]))
        return axes

    # ---- points -------------------------------------------------------------------------------
    def sample_collocation(self) -> torch.Tensor:
        """(n_collocation, d) points in the domain, from the sampler."""
        u = self.sampler.unit(self.n_collocation, self.in_dim, self.gen)
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
                    raise checks.ConfigError("conditions", f": the values of {derivative_name(key, self.variables)} "
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

    def target_moment(self) -> float:
        """The exact solution's mean square on the evaluation grid (rel_l2's denominator, squared
        per point): what predicting u = 0 scores, the scale the network's output starts against."""
        return float(self.u_ref_flat.pow(2).mean())

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
        if not getattr(self, "_vanishing_checked", False):
            self._vanishing_checked = True
            self._warn_if_vanishing(values, getattr(model, "activation", None))
        return self.residual_from(values, points)

    def _warn_if_vanishing(self, values: dict[tuple, torch.Tensor], activation) -> None:
        """One warning line when a derivative the residual needs is exactly 0 at every collocation
        point of every member while u is not: the activation makes it vanish identically (u_xx of a
        piecewise-linear net such as ReLU's), so no training can fit that term."""
        if not bool(values[()].detach().ne(0).any()):  # a zero network: nothing to say of its derivatives
            return
        zero = [derivative_name(key, self.variables) for key, value in values.items()
                if len(key) >= 2 and not bool(value.detach().ne(0).any())]
        if zero:
            name = getattr(activation, "name", None) or "this activation"
            log.warning("task.residual needs %s, identically 0 under %s (a derivative of that order vanishes "
                        "wherever σ is smooth): the PINN cannot fit that term; take an activation smooth to that "
                        "order (tanh, gelu, mrepu, ...)", " and ".join(zero), name)

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

    def compiled_step_refusal(self) -> str | None:
        return ("the PINN loss takes derivatives with respect to its inputs (autograd inside the loss), "
                "which a compiled step would differentiate again: not traced here")

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

    def monitor(self, model: EnsembleMLP) -> dict[str, torch.Tensor]:
        if self.history and self.history[-1]["epoch"] == self.epoch:
            # L-BFGS evaluates one step many times: measure once per epoch, at its start
            return {k: v for k, v in self.history[-1].items() if k != "epoch"}
        out = {"rel_l2": relative_l2(self.predict_grid(model), self.u_ref_flat)}
        out.update({f"train/loss_{k}": v for k, v in self.last_terms.items()})
        self.history.append({"epoch": self.epoch, **{k: v.cpu().double() for k, v in out.items()}})
        return out

    def evaluate(self, model: EnsembleMLP) -> dict[str, torch.Tensor]:
        device = model.weights[0].device
        batch = {k: v.to(device) for k, v in self.train_batch().items()}
        with torch.enable_grad():
            terms = self.terms(model, batch, create_graph=False)
        u = self.predict_grid(model)
        return {"rel_l2": relative_l2(u, self.u_ref_flat), "max_abs_error": (u - self.u_ref_flat).abs().amax(1),
                **{f"loss_{k}": v.detach().cpu() for k, v in terms.items()}}

    def save_outputs(self, model: EnsembleMLP, run_dir: Path, label: str) -> None:
        u = self.predict_grid(model)
        rel = relative_l2(u, self.u_ref_flat).numpy()
        pred = u.reshape(-1, *self.u_ref.shape).numpy()
        save_npz_atomic(run_dir / "predictions.npz", **dict(zip(self.variables, self.axes)), u_exact=self.u_ref,
                        u_pred=pred.astype(np.float32), rel_l2=rel)
        shown = median_member(rel)  # the median member represents the ensemble
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
