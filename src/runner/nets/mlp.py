"""The networks of a run: `MLP`, the architecture conf/model/*.yaml names by `_target_`, and the
`EnsembleMLP` it builds, K independently initialized MLPs evaluated with batched matrix products."""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import nn

from runner.checks import positive_int
from runner.theory.activations import Activation
from runner.theory.init import Init, member_generator


@dataclass(frozen=True)
class MLP:
    """`depth` hidden layers of `width` units (conf/model). The forecast reads depth and width before
    any network exists; `build` makes the ensemble once the runner knows the rest: the task's input
    and output sizes, the activation, the resolved init, the ensemble's size and random streams,
    dropout (from the regularizer) and the dtype (from the trainer's precision)."""

    depth: int
    width: int

    def __post_init__(self):
        positive_int("depth", self.depth)
        positive_int("width", self.width)

    def build(self, in_dim: int, out_dim: int, activation: Activation, init: Init, size: int, seed: int,
              member_offset: int = 0, dropout: float = 0.0, dtype: torch.dtype = torch.float32) -> EnsembleMLP:
        return EnsembleMLP(in_dim, out_dim, self.depth, self.width, activation, init, size, seed, member_offset,
                           dropout, dtype)


class EnsembleMLP(nn.Module):
    """K members of an MLP with `depth` hidden layers of `width` units (conf/model), drawn by
    `init` from member k's stream (seed, member_offset + k) (runner.theory.init).

    Weights have shape (K, fan_in, fan_out) and biases (K, 1, fan_out). Inputs are either
    shared, shape (N, d_in), or per member, shape (K, N, d_in) (PINNs give each member its
    own copy so input derivatives never mix members). Output: (K, N, d_out).
    """

    def __init__(self, in_dim: int, out_dim: int, depth: int, width: int, activation: Activation, init: Init,
                 size: int, seed: int, member_offset: int, dropout: float, dtype: torch.dtype):
        super().__init__()
        self.activation = activation
        self.size = size
        self.dropout = dropout
        self.init = init  # what theory needs to forecast this net (the kernel_training task)
        dims = [in_dim] + [width] * depth + [out_dim]
        # per layer, every member's (weight, bias): member k drawn whole from its own stream
        layers = list(zip(*(init.layers(dims, member_generator(seed, member_offset + k)) for k in range(size))))
        self.weights = nn.ParameterList(
            nn.Parameter(torch.stack([w for w, _ in ws]).to(dtype)) for ws in layers)
        self.biases = nn.ParameterList(
            nn.Parameter(torch.stack([b for _, b in ws]).unsqueeze(1).to(dtype)) for ws in layers)

    @property
    def depth(self) -> int:
        return len(self.weights) - 1

    def forward(self, x: torch.Tensor, return_preactivations: bool = False):
        """Outputs (K, N, d_out); with return_preactivations also each layer's z (K, N, n_l)."""
        h = x.to(self.weights[0].dtype)  # task data may be float32 under trainer.precision=64-true
        preacts = []
        last = len(self.weights) - 1
        for i, (w, b) in enumerate(zip(self.weights, self.biases)):
            z = torch.baddbmm(b, h, w) if h.dim() == 3 else torch.matmul(h, w) + b
            if i == last:
                return (z, preacts) if return_preactivations else z
            preacts.append(z)
            h = self.activation(z)
            if self.dropout > 0 and self.training:
                h = nn.functional.dropout(h, self.dropout, training=True)
        raise AssertionError("unreachable")

    @contextmanager
    def zero_output(self):
        """Inside, every member outputs 0: the output layer is zeroed in place and restored after,
        so a task's own loss (compiled graphs included) gives the loss of the zero function."""
        w, b = self.weights[-1], self.biases[-1]
        saved = w.detach().clone(), b.detach().clone()
        with torch.no_grad():
            w.zero_()
            b.zero_()
        try:
            yield self
        finally:
            with torch.no_grad():
                w.copy_(saved[0])
                b.copy_(saved[1])
