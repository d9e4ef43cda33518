"""Paper B (Kim & Kang), Tables 4-5: fit a polynomial or a less smooth function on a grid.

The target is an expression over x (one input) or x1, x2 (two inputs), see
runner.expression; `task.target` is either a name from `task.targets` or an expression
itself. Training data are a uniform grid on `input_range` (n_points per axis; a meshgrid for
two inputs); the test grid is finer (n_test per axis, by default the training points plus
every midpoint). Because the exact gradient of the target comes from autograd, every run
also measures how well the network's own input gradient matches it:

- `train_mse`, `test_mse`: mean squared error of f on the training and test grids;
- `deriv_mse`: mean over test points and inputs of (d f_net/dx_i - d f/dx_i)^2;
- `grad_norm_error` (two inputs): mean over test points of (|grad f_net| - |grad f|)^2.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch.func import functional_call

from runner import checks
from runner.expression import Expression, ExpressionError
from runner.nets.mlp import EnsembleMLP
from runner.results.files import save_npz_atomic
from runner.results.summary import median_member
from runner.tasks import function_plots
from runner.tasks.base import RegressionTask

log = logging.getLogger(__name__)


def make_grid(low: float, high: float, n: int, dim: int) -> torch.Tensor:
    """n points per axis on [low, high]^dim, rows of shape (n**dim, dim), 'ij' order."""
    axis = torch.linspace(low, high, n, dtype=torch.float64)
    if dim == 1:
        return axis.unsqueeze(1)
    mesh = torch.meshgrid(*([axis] * dim), indexing="ij")
    return torch.stack([m.reshape(-1) for m in mesh], dim=1)


def compiled_or_eager(compiled: Callable, eager: Callable, what: str) -> Callable:
    """`compiled` (a torch.compile'd function), or `eager` from the first call on which inductor
    cannot build it on this machine (its C++ code does not compile, e.g. under
    ATEN_CPU_CAPABILITY=default): the run goes on eagerly, with one warning line."""
    current = [compiled]

    def call(*args):
        if current[0] is eager:
            return eager(*args)
        try:
            return current[0](*args)
        except torch._dynamo.exc.BackendCompilerFailed as exc:
            log.warning("task.compile: torch.compile of the %s failed on this machine (%s); running it eagerly",
                        what, str(exc).strip().splitlines()[0])
            current[0] = eager
            return eager(*args)
    return call


def member_mse(model: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean squared error of every member on shared inputs, shape (K,)."""
    return (model(x) - y).pow(2).mean(dim=(1, 2))


TileStep = Callable[..., tuple[list[torch.Tensor], torch.Tensor]]
"""One tile of TiledLoss: (params, grads, total, x, y, weight) ->
(grads + weight * grad loss, total + weight * loss), with loss = member_mse on the tile."""


def autograd_tile_step(model: EnsembleMLP) -> TileStep:
    """The eager tile step: autograd's backward of the tile."""
    def step(params, grads, total, x, y, weight):
        with torch.enable_grad():
            loss = member_mse(model, x, y) * weight
            tile_grads = torch.autograd.grad(loss.sum(), params)
        return [g + t for g, t in zip(grads, tile_grads)], total + loss.detach()

    return step


def functional_tile_step(model: EnsembleMLP) -> TileStep:
    """The tile step as a pure function of the parameters (torch.func), so that torch.compile
    captures forward, backward and accumulation in one graph: no autograd engine and no Python
    between a tile's kernels. Only for compiling: run eagerly it is slower than autograd's."""
    names = [name for name, _ in model.named_parameters()]

    def weighted_loss(params, x, y, weight):
        loss = member_mse(lambda h: functional_call(model, dict(zip(names, params)), (h,)), x, y) * weight
        return loss.sum(), loss.detach()

    gradient_and_loss = torch.func.grad_and_value(weighted_loss, has_aux=True)

    def step(params, grads, total, x, y, weight):
        tile_grads, (_, loss) = gradient_and_loss(params, x, y, weight)
        return [g + t for g, t in zip(grads, tile_grads)], total + loss

    return step


class TiledLoss(torch.autograd.Function):
    """Per-member loss over point tiles, each tile's backward run right after its forward.

    Equal to `member_mse(model, x, y)` and its gradient (up to summation order), but a tile's
    activations are still in cache when its backward reads them: on a 101x101 grid the
    full-batch step streams ~33 MB per layer from memory. The forward already computes the
    parameter gradients (`step`, a TileStep); `backward` only scales them by each member's
    incoming gradient (members own the leading dimension of every parameter, so this is exact).
    """

    @staticmethod
    def forward(ctx, step: TileStep, x, y, tile, *params):
        grads = [torch.zeros_like(p) for p in params]
        total = torch.zeros(len(params[0]), dtype=params[0].dtype, device=params[0].device)
        for xt, yt in zip(torch.split(x, tile), torch.split(y, tile)):
            grads, total = step(params, grads, total, xt, yt, len(xt) / len(x))
        ctx.save_for_backward(*grads)
        return total

    @staticmethod
    def backward(ctx, grad_total):
        scaled = [g * grad_total.view(-1, *[1] * (g.dim() - 1)) for g in ctx.saved_tensors]
        return (None, None, None, None, *scaled)


class FunctionFit(RegressionTask):
    """Regress an expression target on a grid; also score the network's input gradient."""

    def __init__(self, name: str, target: str, targets: dict[str, str] | None, input_range: tuple[float, float],
                 n_points: int, n_test: int | None, normalize: bool, eval_chunk: int, compile: bool,
                 tile: int | None):
        self.name = name
        self.compile = compile
        self.tile = tile
        self._compiled_loss = None
        self._tile_step: tuple[EnsembleMLP, TileStep] | None = None
        self.targets = dict(targets or {})
        self.target_name = str(target)
        text = self.targets.get(self.target_name, self.target_name)
        try:
            self.expression = Expression(text)
        except ExpressionError as exc:
            raise checks.ConfigError("target", f"={target!r} is invalid: {exc}") from None
        for key, value in (("n_points", n_points), ("n_test", n_test), ("eval_chunk", eval_chunk),
                           ("tile", tile)):
            if value is not None and not (checks.is_int(value) and value >= 2):
                raise checks.invalid(key, value, "an integer >= 2")
        checks.boolean("compile", compile)
        self.input_range = checks.interval("input_range", input_range)
        self.dim = self.expression.dim
        self.n_points = n_points
        self.n_test = n_test or 2 * n_points - 1
        self.grid_shape = (n_points,) * self.dim
        self.test_shape = (self.n_test,) * self.dim
        self.eval_chunk = eval_chunk
        x = make_grid(*self.input_range, n_points, self.dim)
        y = self.expression(x)
        self.x_test = make_grid(*self.input_range, self.n_test, self.dim)
        y_test = self.expression(self.x_test)
        dy_test = self.expression.gradient(self.x_test)
        if not (torch.isfinite(y).all() and torch.isfinite(y_test).all() and torch.isfinite(dy_test).all()):
            raise checks.ConfigError("target", f"={target!r} ({text}) is not finite on input_range "
                                     f"{list(self.input_range)}")
        dtype = torch.get_default_dtype()
        super().__init__(x.to(dtype), y.unsqueeze(1).to(dtype), checks.boolean("normalize", normalize))
        self.x_test = self.x_test.to(dtype)
        self.y_test, self.dy_test = y_test.unsqueeze(1).to(dtype), dy_test.to(dtype)

    def loss(self, model: EnsembleMLP, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Per-member MSE; with `compile`, through torch.compile (fuses the elementwise work
        that dominates large grids on a CPU; compiled once per machine, then cached); with `tile`,
        forward and backward run tile by tile of that many points (see TiledLoss)."""
        x, y = batch["x"], batch["y"]
        if self.tile is None or self.tile >= len(x) or not torch.is_grad_enabled():
            if not self.compile or torch.compiler.is_compiling():  # inside the whole compiled step: fused there
                return member_mse(model, x, y)
            if self._compiled_loss is None:
                self._compiled_loss = compiled_or_eager(torch.compile(member_mse), member_mse, "loss")
            return self._compiled_loss(model, x, y)
        if self._tile_step is None or self._tile_step[0] is not model:
            # cpp_wrapper: the graph's kernels are called from C++, not Python: less overhead per
            # kernel on a step of many small ones
            step = autograd_tile_step(model)
            if self.compile:
                step = compiled_or_eager(torch.compile(functional_tile_step(model), options={"cpp_wrapper": True}),
                                         step, "tile step")
            self._tile_step = (model, step)
        return TiledLoss.apply(self._tile_step[1], x, y, self.tile, *model.parameters())

    def compiled_step_refusal(self) -> str | None:
        if self.tile is not None and self.tile < len(self.x_train):
            return (f"task.tile={self.tile} over {len(self.x_train)} points: the task runs its own tiled "
                    f"forward and backward{' (compiled: task.compile)' if self.compile else ''}")
        return None

    def input_gradient(self, model: EnsembleMLP, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Predictions (K, N, 1) and their input gradients (K, N, dim), in original units.

        Every member gets its own copy of the inputs, so the gradient of the summed output
        is each member's own gradient; points are processed in chunks to bound memory.
        """
        device = model.weights[0].device
        scale = (self.y_std / self.x_std).to(device)
        preds, grads = [], []
        for xc in torch.split(x, self.eval_chunk):
            xn = ((xc - self.x_mean) / self.x_std).to(device)
            with torch.enable_grad():
                xk = xn.expand(model.size, -1, -1).clone().requires_grad_(True)
                out = model(xk)
                (g,) = torch.autograd.grad(out.sum(), xk)
            preds.append(out.detach() * self.y_std.to(device) + self.y_mean.to(device))
            grads.append(g * scale)
        return torch.cat(preds, 1).cpu(), torch.cat(grads, 1).cpu()

    def evaluate(self, model: EnsembleMLP) -> dict[str, torch.Tensor]:
        with torch.no_grad():
            train_pred = torch.cat([self.predict(model, xc).cpu()
                                    for xc in torch.split(self.x_train, self.eval_chunk)], 1)
        pred, grad = self.input_gradient(model, self.x_test)
        metrics = {"train_mse": self.mse(train_pred, self.y_train),
                   "test_mse": self.mse(pred, self.y_test),
                   "deriv_mse": (grad - self.dy_test).pow(2).mean(dim=(1, 2))}
        if self.dim == 2:
            metrics["grad_norm_error"] = (grad.norm(dim=2) - self.dy_test.norm(dim=1)).pow(2).mean(1)
        return metrics

    def save_outputs(self, model: EnsembleMLP, run_dir: Path, label: str) -> None:
        pred, grad = self.input_gradient(model, self.x_test)
        save_npz_atomic(run_dir / "predictions.npz", x=self.x_test.numpy(), y_true=self.y_test.numpy(),
                        y_pred=pred.numpy().astype(np.float32), dy_true=self.dy_test.numpy(),
                        dy_pred=grad.numpy().astype(np.float32), grid_shape=np.array(self.test_shape),
                        target=np.array(self.expression.text))
        title = f"{label}: {self.target_name}" + (
            f" = {self.expression.text}" if self.expression.text != self.target_name else "")
        if self.dim == 1:
            function_plots.plot_fit_1d(self.x_test[:, 0], self.y_test[:, 0], self.dy_test[:, 0],
                                       pred[..., 0], grad[..., 0], title, run_dir / "plots" / "fit.png")
        else:
            member = median_member(self.mse(pred, self.y_test).numpy())
            function_plots.plot_contours_2d(
                self.x_test, self.test_shape, self.y_test[:, 0], self.dy_test, pred[member, :, 0],
                grad[member], f"{title} (member {member}, median test MSE)",
                run_dir / "plots" / "contours.png")
