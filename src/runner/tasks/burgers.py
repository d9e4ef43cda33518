"""Paper B (Figs. 15-17): a physics-informed net for viscous Burgers, scored against an exact solution.

u_t + u u_x = nu u_xx on x in x_range, t in t_range, u(t0, x) = -sin(pi x), u(t, x_lo) =
u(t, x_hi) = 0. The training loss per member is weight_pde * mean(residual^2) on collocation
points plus the squared errors on initial and boundary points. The reference is the
Cole-Hopf solution (`exact_solution`) on the grid of the published data set (256 x 100:
x = linspace(-1, 1, 256), t = 0, 0.01, ..., 0.99), or that data file itself
(`reference: data`); `rel_l2` = ||u_pred - u_ref|| / ||u_ref|| on that grid.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from runner.ensemble import EnsembleMLP
from runner.tasks.base import Task

REPO_ROOT = Path(__file__).resolve().parents[3]
PUBLISHED_NU = 0.01 / math.pi
SAMPLERS = ("lhs", "uniform")
REFERENCES = ("exact", "data")


def exact_solution(x, t, nu: float = PUBLISHED_NU, n_nodes: int = 100) -> np.ndarray:
    """u(x, t) of Burgers with u(0, x) = -sin(pi x) on the whole line (so u(t, +-1) = 0), float64.

    Cole-Hopf: u = -int sin(pi y) phi(y) G(x - y) dy / int phi(y) G(x - y) dy with
    phi(y) = exp(-cos(pi y) / (2 pi nu)) and G the heat kernel of variance 2 nu t. With
    y = x - sqrt(4 nu t) s both integrals are Gauss-Hermite sums over s; the exponents are
    shifted by their maximum (log-sum-exp) because phi spans e^(+-1/(2 pi nu)) ~ e^(+-50).
    x and t broadcast against each other; t = 0 gives the initial condition exactly.
    """
    x, t = np.broadcast_arrays(np.asarray(x, dtype=np.float64), np.asarray(t, dtype=np.float64))
    s, w = np.polynomial.hermite.hermgauss(n_nodes)
    y = x[..., None] - np.sqrt(4.0 * nu * t)[..., None] * s
    log_terms = -np.cos(np.pi * y) / (2.0 * np.pi * nu) + np.log(w)
    terms = np.exp(log_terms - log_terms.max(axis=-1, keepdims=True))
    return -(np.sin(np.pi * y) * terms).sum(-1) / terms.sum(-1)


def resolve_path(path: str | Path) -> Path:
    """A config path: absolute as given, relative ones from the repository root (not the cwd)."""
    path = Path(path).expanduser()
    return path if path.is_absolute() else REPO_ROOT / path


def load_reference(path: str | Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """x (nx,), t (nt,), usol (nx, nt) from burgers_shock.mat or Burgers.npz."""
    path = resolve_path(path)
    if not path.exists():
        raise FileNotFoundError(f"Burgers reference data not found at {path} (task.data_path)")
    if path.suffix == ".mat":
        from scipy.io import loadmat

        data = loadmat(path)
    else:
        data = dict(np.load(path))
    return (np.asarray(data["x"], np.float64).reshape(-1), np.asarray(data["t"], np.float64).reshape(-1),
            np.asarray(data["usol"], np.float64))


def published_grid(x_range, t_range, nx: int, nt: int) -> tuple[np.ndarray, np.ndarray]:
    """The data set's grid shape: nx points spanning x_range, nt steps of (t_hi - t_lo) / nt from t_lo."""
    (x_lo, x_hi), (t_lo, t_hi) = x_range, t_range
    return np.linspace(x_lo, x_hi, nx), t_lo + (t_hi - t_lo) * np.arange(nt) / nt


class Burgers(Task):
    """Viscous Burgers PINN: collocation residual + initial + boundary losses per ensemble member."""

    in_dim, out_dim = 2, 1

    def __init__(self, name: str = "burgers", nu: float = PUBLISHED_NU, x_range=(-1.0, 1.0),
                 t_range=(0.0, 1.0), n_collocation: int = 10_000, n_boundary: int = 100,
                 initial_fraction: float = 0.5, sampler: str = "lhs", resample_every: int = 0,
                 weight_pde: float = 1.0, weight_initial: float = 1.0, weight_boundary: float = 1.0,
                 normalize: bool = True, reference: str = "exact",
                 data_path: str = "../shared/data/burgers_shock.mat", eval_nx: int = 256,
                 eval_nt: int = 100, quadrature_nodes: int = 100, seed: int = 0):
        if sampler not in SAMPLERS:
            raise ValueError(f"task.sampler={sampler!r}: choose one of {', '.join(SAMPLERS)}")
        if reference not in REFERENCES:
            raise ValueError(f"task.reference={reference!r}: choose one of {', '.join(REFERENCES)}")
        self.name, self.nu = name, float(nu)
        self.x_range, self.t_range = tuple(map(float, x_range)), tuple(map(float, t_range))
        self.n_collocation, self.sampler, self.resample_every = n_collocation, sampler, resample_every
        self.loss_weights = (weight_pde, weight_initial, weight_boundary)
        self.normalize = normalize
        self.gen = torch.Generator().manual_seed(seed)
        self.collocation = self.sample_collocation()
        self.xt_u, self.u_target, self.n_initial = self.sample_initial_boundary(n_boundary, initial_fraction)
        if reference == "data":
            if not math.isclose(self.nu, PUBLISHED_NU, rel_tol=1e-6) or self.x_range != (-1.0, 1.0):
                raise ValueError("task.reference=data holds only nu = 0.01/pi on x in [-1, 1]; use reference=exact")
            x, t, u = load_reference(data_path)
        else:
            x, t = published_grid(self.x_range, self.t_range, eval_nx, eval_nt)
            u = exact_solution(x[:, None], t[None, :], self.nu, quadrature_nodes)
        self.grid_x, self.grid_t, self.u_ref = x, t, u
        xx, tt = np.meshgrid(x, t, indexing="ij")
        self.grid_xt = torch.tensor(np.stack([xx.ravel(), tt.ravel()], 1), dtype=torch.float32)
        self.u_ref_flat = torch.tensor(u.ravel(), dtype=torch.float64)
        self.epoch, self.fresh = 0, None
        self.last_terms: dict[str, torch.Tensor] = {}
        self.history: list[dict] = []

    # ---- points -------------------------------------------------------------------------------
    def _unit(self, n: int, dims: int) -> torch.Tensor:
        """n points in [0, 1)^dims: uniform, or Latin hypercube (one point per stratum per axis)."""
        u = torch.rand(n, dims, generator=self.gen, dtype=torch.float64)
        if self.sampler == "lhs":
            strata = torch.stack([torch.randperm(n, generator=self.gen) for _ in range(dims)], 1)
            u = (strata + u) / n
        return u

    def sample_collocation(self) -> torch.Tensor:
        """(n_collocation, 2) points (x, t) in the domain."""
        u = self._unit(self.n_collocation, 2)
        lo = torch.tensor([self.x_range[0], self.t_range[0]], dtype=torch.float64)
        hi = torch.tensor([self.x_range[1], self.t_range[1]], dtype=torch.float64)
        return (lo + u * (hi - lo)).float()

    def sample_initial_boundary(self, n: int, initial_fraction: float):
        """round(n * initial_fraction) points on t = t_lo with u = -sin(pi x); the rest split
        between x = x_lo and x = x_hi with u = 0. Returns points (n, 2), targets (n, 1), count."""
        n_init = min(n, round(n * initial_fraction))
        (x_lo, x_hi), (t_lo, t_hi) = self.x_range, self.t_range
        x0 = x_lo + (x_hi - x_lo) * torch.rand(n_init, generator=self.gen, dtype=torch.float64)
        tb = t_lo + (t_hi - t_lo) * torch.rand(n - n_init, generator=self.gen, dtype=torch.float64)
        xb = torch.where(torch.arange(n - n_init) % 2 == 0, x_lo, x_hi).double()
        xt = torch.cat([torch.stack([x0, torch.full_like(x0, t_lo)], 1), torch.stack([xb, tb], 1)])
        u = torch.cat([-torch.sin(math.pi * x0), torch.zeros_like(tb)]).unsqueeze(1)
        return xt.float(), u.float(), n_init

    def scale(self, xt: torch.Tensor) -> torch.Tensor:
        """Network input: (x, t) mapped linearly onto [-1, 1]^2 when `normalize`, else as is."""
        if not self.normalize:
            return xt
        lo = xt.new_tensor([self.x_range[0], self.t_range[0]])
        hi = xt.new_tensor([self.x_range[1], self.t_range[1]])
        return 2.0 * (xt - lo) / (hi - lo) - 1.0

    # ---- training -----------------------------------------------------------------------------
    def train_batch(self) -> dict[str, torch.Tensor]:
        return {"xt_f": self.collocation, "xt_u": self.xt_u, "u": self.u_target}

    def network_inputs(self) -> torch.Tensor:
        return self.scale(torch.cat([self.collocation, self.xt_u]))

    def on_epoch_start(self, epoch: int) -> None:
        self.epoch = epoch
        if self.resample_every and epoch and epoch % self.resample_every == 0:
            self.fresh = self.sample_collocation()

    def residual(self, model: EnsembleMLP, xt: torch.Tensor, create_graph: bool = True) -> torch.Tensor:
        """u_t + u u_x - nu u_xx at points (N, 2), per member: (K, N, 1).

        Every member gets its own leaf copy of the points, so the input gradient of the summed
        output is each member's own derivative (members never share a derivative graph).
        """
        xt = xt.to(model.weights[0].dtype).expand(model.size, -1, -1).clone().requires_grad_(True)
        u = model(self.scale(xt))
        (du,) = torch.autograd.grad(u.sum(), xt, create_graph=True)
        u_x, u_t = du[..., :1], du[..., 1:]
        (d2u,) = torch.autograd.grad(u_x.sum(), xt, create_graph=create_graph)
        return u_t + u * u_x - self.nu * d2u[..., :1]

    def terms(self, model: EnsembleMLP, batch: dict[str, torch.Tensor],
              create_graph: bool = True) -> dict[str, torch.Tensor]:
        """Mean squared PDE residual, initial and boundary errors per member, each (K,)."""
        xt_f = batch["xt_f"] if self.fresh is None else self.fresh.to(batch["xt_f"].device)
        pde = self.residual(model, xt_f, create_graph).pow(2).mean(dim=(1, 2))
        err = (model(self.scale(batch["xt_u"])) - batch["u"]).pow(2)
        initial, boundary = err[:, :self.n_initial], err[:, self.n_initial:]
        return {"pde": pde,  # an empty set of points contributes 0, not NaN
                "initial": initial.mean(dim=(1, 2)) if initial.shape[1] else torch.zeros_like(pde),
                "boundary": boundary.mean(dim=(1, 2)) if boundary.shape[1] else torch.zeros_like(pde)}

    def loss(self, model: EnsembleMLP, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        terms = self.terms(model, batch)
        self.last_terms = {k: v.detach() for k, v in terms.items()}
        w_pde, w_init, w_bnd = self.loss_weights
        return w_pde * terms["pde"] + w_init * terms["initial"] + w_bnd * terms["boundary"]

    # ---- metrics ------------------------------------------------------------------------------
    def predict_grid(self, model: EnsembleMLP) -> torch.Tensor:
        """Predictions on the reference grid, (K, nx * nt), float64 on the CPU."""
        with torch.no_grad():
            u = model(self.scale(self.grid_xt.to(model.weights[0].device)))
        return u[..., 0].double().cpu()

    def rel_l2(self, model: EnsembleMLP) -> torch.Tensor:
        """||u_pred - u_ref||_2 / ||u_ref||_2 on the reference grid, per member."""
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
        from runner.results import save_npz_atomic
        from runner.tasks import burgers_plots

        nx, nt = len(self.grid_x), len(self.grid_t)
        pred = self.predict_grid(model).reshape(-1, nx, nt).numpy()
        rel = np.linalg.norm((pred - self.u_ref).reshape(len(pred), -1), axis=1) / np.linalg.norm(self.u_ref)
        save_npz_atomic(run_dir / "predictions.npz", x=self.grid_x, t=self.grid_t, u_exact=self.u_ref,
                        u_pred=pred.astype(np.float32), rel_l2=rel)
        shown = int(np.argsort(rel)[len(rel) // 2])  # the median member represents the ensemble
        title = f"{label}: member {shown} of {len(rel)}, rel L2 {rel[shown]:.2e}"
        plots = run_dir / "plots"
        burgers_plots.plot_solution(self.grid_x, self.grid_t, pred[shown], self.u_ref, title,
                                    plots / "solution.png")
        burgers_plots.plot_slices(self.grid_x, self.grid_t, pred[shown], self.u_ref, title,
                                  plots / "slices.png")
        if self.history:
            burgers_plots.plot_history(self.history, label, plots / "training.png")
