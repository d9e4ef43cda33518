"""Paper B (Figs. 15-17): the exact solution of viscous Burgers and the published data set.

u_t + u u_x = nu u_xx with u(0, x) = -sin(pi x) on x in [-1, 1] (u(t, +-1) = 0), nu = 0.01/pi.
The PINN is `task=burgers`, the Burgers preset of the generic PDE task (conf/task/burgers.yaml);
its reference is `ColeHopf`, named there by `_target_`. The published
data (Raissi et al.'s burgers_shock.mat, shipped in runner/data with its source named there:
x = linspace(-1, 1, 256), t = 0, 0.01, ..., 0.99) agree with it to a relative L2 of 3e-12
(tests/test_burgers.py).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from runner import checks

PUBLISHED_NU = 0.01 / math.pi
PUBLISHED_DATA = Path(__file__).resolve().parents[2] / "data" / "burgers_shock.mat"  # package data


def cole_hopf(x: torch.Tensor, t: torch.Tensor, nu: float = PUBLISHED_NU, n_nodes: int = 100) -> torch.Tensor:
    """u(x, t) of Burgers with u(0, x) = -sin(pi x) on the whole line (so u(t, +-1) = 0), in torch.

    Cole-Hopf: u = -int sin(pi y) phi(y) G(x - y) dy / int phi(y) G(x - y) dy with
    phi(y) = exp(-cos(pi y) / (2 pi nu)) and G the heat kernel of variance 2 nu t. With
    y = x - sqrt(4 nu t) s both integrals are Gauss-Hermite sums over s; the exponents are
    shifted by their maximum (log-sum-exp) because phi spans e^(+-1/(2 pi nu)) ~ e^(+-50).
    The quadrature sum is itself an exact solution of the PDE (a positive sum of heat kernels
    under Cole-Hopf), so autograd's derivatives satisfy the residual to rounding. x and t
    broadcast against each other; t = 0 gives the initial condition exactly.
    """
    s, w = np.polynomial.hermite.hermgauss(n_nodes)
    s, log_w = torch.as_tensor(s, dtype=x.dtype), torch.as_tensor(np.log(w), dtype=x.dtype)
    y = x.unsqueeze(-1) - torch.sqrt(4.0 * nu * t).unsqueeze(-1) * s
    log_terms = -torch.cos(math.pi * y) / (2.0 * math.pi * nu) + log_w
    terms = torch.exp(log_terms - log_terms.amax(-1, keepdim=True).detach())
    return -(torch.sin(math.pi * y) * terms).sum(-1) / terms.sum(-1)


class ColeHopf:
    """The exact solution as a reference of the PDE task (task.exact: {_target_: ..., nu: ...}):
    called with the variables x and t as tensors."""

    def __init__(self, nu: float, n_nodes: int = 100):
        self.nu = checks.positive("nu", nu)
        self.n_nodes = checks.positive_int("n_nodes", n_nodes)

    def __call__(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return cole_hopf(x, t, self.nu, self.n_nodes)


def exact_solution(x, t, nu: float = PUBLISHED_NU, n_nodes: int = 100) -> np.ndarray:
    """`cole_hopf` on numbers or numpy arrays (broadcast against each other), float64 numpy."""
    x, t = torch.broadcast_tensors(torch.as_tensor(x, dtype=torch.float64), torch.as_tensor(t, dtype=torch.float64))
    return cole_hopf(x, t, nu, n_nodes).numpy()


def load_reference(path: str | Path = PUBLISHED_DATA) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """x (nx,), t (nt,), usol (nx, nt) from burgers_shock.mat (the shipped copy by default) or an
    .npz file with the same keys."""
    path = Path(path).expanduser()
    if not path.exists():
        raise FileNotFoundError(f"Burgers reference data not found at {path}")
    if path.suffix == ".mat":
        from scipy.io import loadmat  # startup: scipy.io loads only where a .mat reference is read

        data = loadmat(path)
    else:
        data = dict(np.load(path))
    return (np.asarray(data["x"], np.float64).reshape(-1), np.asarray(data["t"], np.float64).reshape(-1),
            np.asarray(data["usol"], np.float64))
