"""EnsembleMLP: K independently initialized MLPs evaluated with batched matrix products."""

from __future__ import annotations

from contextlib import contextmanager

import torch
from torch import nn

from runner.theory.activations import Activation
from runner.theory.init import Init, draw_layer, member_generator


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
        layers = [[] for _ in dims[1:]]
        for k in range(size):
            gen = member_generator(seed, member_offset + k)
            for i, (fan_in, fan_out) in enumerate(zip(dims[:-1], dims[1:])):
                layers[i].append(draw_layer(init.scheme, fan_in, fan_out, gen,
                                            init.C_W_first if i == 0 else init.C_W, init.C_b))
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
