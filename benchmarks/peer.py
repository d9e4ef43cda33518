"""The ensemble's training step outside the runner, for benchmarks/bench_ensemble.py and its tests.

Two implementations of one full-batch step of an EnsembleMLP on a regression task (per-member
mean squared error, summed over members, then Adam):

- `functional_step`: torch.func (functional_call + grad_and_value) and Adam written as tensor ops,
  a pure function of (params, Adam state, step count) that torch.compile can take as one graph;
  `unrolled_steps` runs k of them in one function so that k steps compile together.
- `JaxEnsemble`: the peer a JAX user would write: vmap over members, jit, lax.scan over steps,
  optax.adam. JAX is an optional extra (`pip install .[bench]`); it is imported only here, and
  `import_jax` sets the XLA thread flags first, since XLA reads them once at import.

Both follow torch.optim.Adam (no weight decay): m <- b1 m + (1-b1) g, v <- b2 v + (1-b2) g^2,
p <- p - lr/(1-b1^t) * m / (sqrt(v)/sqrt(1-b2^t) + eps), the bias corrections in float64 as torch
computes them on the host.
"""

from __future__ import annotations

import os
import sys
from typing import Any, Callable

import numpy as np
import torch

from runner.theory.activations import Activation
from runner.nets.mlp import EnsembleMLP

Params = dict[str, torch.Tensor]
AdamState = tuple[Params, Params, torch.Tensor]  # first moments, second moments, step count (float64)


def functional_step(model: EnsembleMLP, lr: float, betas: tuple[float, float] = (0.9, 0.999),
                    eps: float = 1e-8) -> Callable[[Params, AdamState, torch.Tensor, torch.Tensor],
                                                   tuple[Params, AdamState, torch.Tensor]]:
    """step(params, state, x, y) -> (params, state, member losses before the step), pure: nothing
    of `model` but its forward is used, and no tensor is changed in place."""
    beta1, beta2 = betas

    def total(params: Params, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        losses = (torch.func.functional_call(model, params, (x,)) - y).pow(2).mean(dim=(1, 2))
        return losses.sum(), losses.detach()

    grad_and_loss = torch.func.grad_and_value(total, has_aux=True)

    def step(params: Params, state: AdamState, x: torch.Tensor, y: torch.Tensor):
        m, v, t = state
        grads, (_, losses) = grad_and_loss(params, x, y)
        t = t + 1
        step_size = lr / (1 - beta1**t)
        bc2_sqrt = (1 - beta2**t).sqrt()
        new_params, new_m, new_v = {}, {}, {}
        for name, p in params.items():
            g = grads[name]
            new_m[name] = m[name].lerp(g, 1 - beta1)
            new_v[name] = v[name] * beta2 + (1 - beta2) * g * g
            new_params[name] = p - step_size * new_m[name] / (new_v[name].sqrt() / bc2_sqrt + eps)
        return new_params, (new_m, new_v, t), losses

    return step


def unrolled_steps(step: Callable, k: int) -> Callable:
    """k calls of `step` in one function (torch.compile unrolls the loop into one graph);
    returns the member losses of the last step."""

    def steps(params: Params, state: AdamState, x: torch.Tensor, y: torch.Tensor):
        for _ in range(k):
            params, state, losses = step(params, state, x, y)
        return params, state, losses

    return steps


def initial_state(model: EnsembleMLP) -> tuple[Params, AdamState]:
    """Copies of the model's parameters and a fresh Adam state (zero moments, step 0)."""
    params = {n: p.detach().clone() for n, p in model.named_parameters()}
    zeros = {n: torch.zeros_like(p) for n, p in params.items()}
    return params, (zeros, {n: z.clone() for n, z in zeros.items()}, torch.zeros((), dtype=torch.float64))


def xla_flags(threads: int | None) -> str:
    """XLA_FLAGS for `threads` CPU threads (one: no multi-threaded Eigen); XLA reads them at import.
    Pinning with taskset also bounds XLA's pool, which follows the process's CPU affinity."""
    flags = os.environ.get("XLA_FLAGS", "")
    if threads is None:
        return flags
    eigen = "false" if threads == 1 else "true"
    return f"{flags} --xla_cpu_multi_thread_eigen={eigen} intra_op_parallelism_threads={threads}".strip()


def import_jax(threads: int | None = None) -> Any:
    """The jax module, imported with `xla_flags(threads)`; ImportError when jax or optax is absent.
    Once jax is imported its flags are fixed: a second call with other threads cannot change them."""
    if "jax" not in sys.modules:
        os.environ["XLA_FLAGS"] = xla_flags(threads)
    import jax
    import optax  # noqa: F401  (the step needs it; fail here, not at the first step)

    return jax


def jax_mrepu(z, p: int, shift: float):
    """MRePU_p(z) = z * max(0, z + shift)^p, as runner.theory.activations.mrepu."""
    import jax.numpy as jnp

    return z * jnp.maximum(z + shift, 0.0) ** p


def jax_activation(activation: Activation) -> Callable:
    """The JAX function of a runner activation (those the bench compares)."""
    import jax

    if activation.name == "relu":
        return jax.nn.relu
    if activation.name == "gelu":
        return lambda z: jax.nn.gelu(z, approximate=False)  # torch's F.gelu default is the erf form
    if activation.name == "mrepu":
        p, shift = activation.params["p"], activation.params["shift"]
        return lambda z: jax_mrepu(z, p, shift)
    raise ValueError(f"activation {activation.name!r} has no JAX peer here; choose relu, gelu or mrepu")


class JaxEnsemble:
    """The same ensemble, loss and Adam in JAX: vmap over members, lax.scan over steps, one jit.

    Built from a torch EnsembleMLP so both start from the same weights. `train(n)` runs n steps
    from the current state and returns the member losses before each step, shape (n, K)."""

    def __init__(self, model: EnsembleMLP, x: torch.Tensor, y: torch.Tensor, lr: float,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8):
        jax = import_jax()
        import jax.numpy as jnp
        import optax

        act = jax_activation(model.activation)
        self.params = [(jnp.asarray(w.detach().cpu().numpy()), jnp.asarray(b.detach().cpu().numpy()))
                       for w, b in zip(model.weights, model.biases)]
        xj, yj = jnp.asarray(x.detach().cpu().numpy()), jnp.asarray(y.detach().cpu().numpy())
        opt = optax.adam(lr, b1=betas[0], b2=betas[1], eps=eps)
        self.opt_state = opt.init(self.params)
        self._initial = (self.params, self.opt_state)

        def member_loss(params, x, y):
            h = x
            for w, b in params[:-1]:
                h = act(h @ w + b)
            w, b = params[-1]
            return jnp.mean((h @ w + b - y) ** 2)

        def total(params):
            losses = jax.vmap(member_loss, in_axes=(0, None, None))(params, xj, yj)
            return losses.sum(), losses

        def one_step(carry, _):
            params, opt_state = carry
            (_, losses), grads = jax.value_and_grad(total, has_aux=True)(params)
            updates, opt_state = opt.update(grads, opt_state, params)
            return (optax.apply_updates(params, updates), opt_state), losses

        def train(params, opt_state, n):
            (params, opt_state), losses = jax.lax.scan(one_step, (params, opt_state), None, length=n)
            return params, opt_state, losses

        self._train = jax.jit(train, static_argnums=2)
        self._total = jax.jit(total)

    def train(self, n: int) -> np.ndarray:
        """n Adam steps in one call (compiled once per n); member losses before each step."""
        self.params, self.opt_state, losses = self._train(self.params, self.opt_state, n)
        return np.asarray(losses)  # waits for the result

    def restart(self) -> None:
        """Back to the initial weights and a fresh Adam state."""
        self.params, self.opt_state = self._initial

    def losses(self) -> np.ndarray:
        """Member losses at the current parameters."""
        return np.asarray(self._total(self.params)[1])
