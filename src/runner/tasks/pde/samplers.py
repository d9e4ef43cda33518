"""Where a PINN's collocation points fall: conf/task/sampler/*.yaml names a sampler by `_target_`
(task/sampler=lhs, the default, or task/sampler=uniform). A sampler of your own is a class with
the same `unit` method, named in your own conf/task/sampler/<name>.yaml (docs/extending.md)."""

from __future__ import annotations

import torch


class Uniform:
    """Independent uniform points."""

    def unit(self, n: int, dims: int, gen: torch.Generator) -> torch.Tensor:
        """n points in [0, 1)^dims, float64."""
        return torch.rand(n, dims, generator=gen, dtype=torch.float64)


class LatinHypercube:
    """Latin hypercube: along every axis, one point in each of n equal strata."""

    def unit(self, n: int, dims: int, gen: torch.Generator) -> torch.Tensor:
        u = torch.rand(n, dims, generator=gen, dtype=torch.float64)
        strata = torch.stack([torch.randperm(n, generator=gen) for _ in range(dims)], 1)
        return (strata + u) / n
