"""benchmarks.peer, the bench's peers of the ensemble step: the functional torch step (plain and
compiled) against torch.optim.Adam, and the JAX ensemble against torch from the same weights."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from benchmarks.peer import functional_step, initial_state, unrolled_steps
from runner.config import compose
from runner.run import build
from runner.theory import activations

STEPS = 20


def setup(activation: str, members: int = 25):
    """The bench's ensemble (5x32 MLP, 101 points of x^2, normalized) with this activation."""
    cfg = compose("trainer=cpu", "model=mlp_5x32", "task=x2", "task.n_train=101",
                  f"ensemble.size={members}", f"activation={activation}")
    exp = build(cfg)
    return cfg, exp.task, exp.build_model(), exp.task.train_batch()


def torch_adam_run(cfg, task, model, batch, steps: int) -> np.ndarray:
    """`steps` steps as the runner takes them (task loss, backward, fused Adam); member losses
    before each step, (steps, K). Changes `model`."""
    opt = torch.optim.Adam(model.parameters(), lr=cfg.optimizer.lr, betas=tuple(cfg.optimizer.betas), fused=True)
    history = []
    for _ in range(steps):
        opt.zero_grad()
        losses = task.loss(model, batch)
        losses.sum().backward()
        opt.step()
        history.append(losses.detach().clone())
    return torch.stack(history).numpy()


@pytest.mark.numerics
@pytest.mark.parametrize("activation", ["relu", "gelu", "mrepu"])
def test_functional_step_equals_torch_adam(activation):
    cfg, task, model, batch = setup(activation)
    params, state = initial_state(model)
    step = functional_step(model, cfg.optimizer.lr, tuple(cfg.optimizer.betas))
    history = []
    for _ in range(STEPS):
        params, state, losses = step(params, state, batch["x"], batch["y"])
        history.append(losses)
    expected = torch_adam_run(cfg, task, model, batch, STEPS)
    # same forward and backward ops; Adam's arithmetic differs only in rounding order. A weight
    # whose gradient is near Adam's eps takes a step that round-off moves by a fair share of lr:
    # atol 1e-6 is 5e-5 of the 20 * lr such a weight can move (measured 2.4e-7 on one of 25,600
    # weights under ATEN_CPU_CAPABILITY=default)
    np.testing.assert_allclose(torch.stack(history).numpy(), expected, rtol=1e-5)
    for name, p in model.named_parameters():
        torch.testing.assert_close(params[name], p.detach(), rtol=1e-5, atol=1e-6)
    assert int(state[2]) == STEPS


@pytest.mark.slow
@pytest.mark.skipif(os.environ.get("ATEN_CPU_CAPABILITY") == "default",
                    reason="inductor's C++ code for this graph does not build under ATEN_CPU_CAPABILITY=default")
def test_compiled_unrolled_steps_follow_torch_adam():
    """torch.compile of two steps in one graph (the bench compiles one and ten; two keeps the
    compile short), called ten times: torch.optim.Adam's losses and weights. Fused kernels round
    differently from eager ones, and Adam's normalized steps carry that on."""
    cfg, task, model, batch = setup("gelu", members=5)
    params, state = initial_state(model)
    steps = torch.compile(unrolled_steps(functional_step(model, cfg.optimizer.lr, tuple(cfg.optimizer.betas)), 2))
    for _ in range(STEPS // 2):
        params, state, losses = steps(params, state, batch["x"], batch["y"])
    expected = torch_adam_run(cfg, task, model, batch, STEPS)
    np.testing.assert_allclose(losses.numpy(), expected[-1], rtol=2e-5)
    for name, p in model.named_parameters():
        torch.testing.assert_close(params[name], p.detach(), rtol=1e-4, atol=1e-6)


@pytest.mark.numerics
@pytest.mark.parametrize("name,params", [("relu", {}), ("gelu", {}), ("mrepu", {"p": 2, "shift": 1.0}),
                                         ("mrepu", {"p": 3, "shift": 0.5})])
def test_jax_activation_equals_torch(name, params):
    pytest.importorskip("jax")
    from benchmarks.peer import jax_activation

    activation = getattr(activations, name)(**params)
    z = torch.tensor([-3.0, -1.0, -0.5, -1e-3, 0.0, 1e-3, 0.3, 1.0, 2.5], dtype=torch.float32)
    got = np.asarray(jax_activation(activation)(z.numpy()))
    # torch's GELU is x (1 + erf(x/sqrt 2)) / 2, which cancels for x < 0: the two libraries' float32 erf
    # near -1 differ by a few of its ulps (6e-8 there), times |x| / 2 (1.5 at x = -3): up to ~8 ulps is 7e-7
    np.testing.assert_allclose(got, activation(z).numpy(), rtol=1e-6, atol=1e-6)


@pytest.mark.numerics
@pytest.mark.parametrize("activation", ["relu", "gelu", "mrepu"])
def test_jax_ensemble_follows_torch_adam(activation):
    """From the same initial weights, JAX's 20 steps give torch's member losses; the two libraries'
    matmuls (and GELU's erf) round differently, and Adam's normalized steps carry that on: seen
    up to 5e-5 relative (GELU), 2e-4 allowed."""
    pytest.importorskip("jax")
    pytest.importorskip("optax")
    from benchmarks.peer import JaxEnsemble

    cfg, task, model, batch = setup(activation)
    peer = JaxEnsemble(model, batch["x"], batch["y"], cfg.optimizer.lr, tuple(cfg.optimizer.betas))
    history = peer.train(STEPS)
    expected = torch_adam_run(cfg, task, model, batch, STEPS)
    np.testing.assert_allclose(history, expected, rtol=2e-4)
    with torch.no_grad():
        np.testing.assert_allclose(peer.losses(), task.loss(model, batch).numpy(), rtol=2e-4)
    assert expected[-1].sum() < 0.9 * expected[0].sum()  # the comparison is of training, not of a standstill
