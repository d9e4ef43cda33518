"""Penalties added to each member's loss, and dropout.

Every regularizer returns one penalty per ensemble member, shape (K,), so members stay
independent. Regularizers are nn.Modules so persistent state (power-iteration vectors)
lands in checkpoints and a resumed run continues exactly.
"""

from __future__ import annotations

import torch
from torch import nn

from runner import checks
from runner.nets.mlp import EnsembleMLP


class NoRegularizer(nn.Module):
    """No penalty."""

    dropout = 0.0
    has_penalty = False

    def setup(self, model: EnsembleMLP) -> None:
        """Create any state that depends on the model's shapes (before checkpoint loading)."""

    def penalty(self, model: EnsembleMLP) -> torch.Tensor:
        return model.weights[0].new_zeros(model.size)


class SpectralNorm(NoRegularizer):
    """Yoshida & Miyato (2017) penalty (coef/2) * sum_l sigma_max(W_l)^2, per member.

    sigma_max is estimated by power iteration with a persistent pair of vectors per layer
    and member, advanced `n_power_iterations` times per training step; the gradient of the
    estimate u^T W v with u, v held fixed is u v^T, as in the paper (not torch's
    spectral_norm reparametrization, which rescales W instead of penalizing it).
    """

    has_penalty = True

    def __init__(self, coef: float, n_power_iterations: int):
        super().__init__()
        self.coef = checks.nonnegative("coef", coef)
        self.n_power_iterations = checks.positive_int("n_power_iterations", n_power_iterations)

    def setup(self, model: EnsembleMLP) -> None:
        # The same deterministic start for every member (not a shared random draw), so a member's
        # trajectory does not depend on the ensemble it is trained in.
        for i, w in enumerate(model.weights):
            k, _, n = w.shape
            self.register_buffer(f"v{i}", torch.full((k, n), n**-0.5).to(w))

    @torch.no_grad()
    def _power_iteration(self, w: torch.Tensor, v: torch.Tensor, steps: int):
        u = None
        for _ in range(max(steps, 1)):
            u = torch.nn.functional.normalize(torch.bmm(w, v.unsqueeze(2)).squeeze(2), dim=1)
            v = torch.nn.functional.normalize(torch.bmm(w.transpose(1, 2), u.unsqueeze(2)).squeeze(2), dim=1)
        return u, v

    def sigmas(self, model: EnsembleMLP, steps: int | None = None) -> list[torch.Tensor]:
        """Per-layer estimates of sigma_max, each (K,), advancing the persistent vectors."""
        out = []
        for i, w in enumerate(model.weights):
            v_old = getattr(self, f"v{i}")
            u, v = self._power_iteration(w, v_old, self.n_power_iterations if steps is None else steps)
            setattr(self, f"v{i}", v)
            out.append(torch.einsum("km,kmn,kn->k", u, w, v))
        return out

    def penalty(self, model: EnsembleMLP) -> torch.Tensor:
        if self.coef == 0:
            return super().penalty(model)
        return 0.5 * self.coef * sum(s**2 for s in self.sigmas(model))


class WeightDecay(NoRegularizer):
    """L2 penalty (coef/2) * sum_l ||W_l||_F^2 per member (biases excluded)."""

    has_penalty = True

    def __init__(self, coef: float):
        super().__init__()
        self.coef = checks.nonnegative("coef", coef)

    def penalty(self, model: EnsembleMLP) -> torch.Tensor:
        return 0.5 * self.coef * sum(w.pow(2).sum(dim=(1, 2)) for w in model.weights)


class Dropout(NoRegularizer):
    """Dropout with probability p on every hidden layer's output during training."""

    def __init__(self, p: float):
        super().__init__()
        self.dropout = checks.between("p", p, 0, 1, "[)")


def exact_spectral_norms(model: EnsembleMLP) -> list[torch.Tensor]:
    """sigma_max of every layer of every member by SVD, each (K,); NaN for a diverged member."""
    norms = []
    with torch.no_grad():
        for w in model.weights:
            finite = torch.isfinite(w).flatten(1).all(1)
            sigma = torch.linalg.matrix_norm(torch.where(finite[:, None, None], w, 0).double(), ord=2)
            norms.append(sigma.masked_fill(~finite, float("nan")).to(w.dtype))
    return norms
