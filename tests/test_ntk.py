"""The neural tangent kernel (runner.theory.ntk) against independent computations: closed forms where
they exist (ReLU's arc-cosine kernel, erf's arcsin kernel), quadrature written here for the others,
and the empirical NTK of real networks (runner.theory.measurements.sample_ntk, task=kernel_init)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import integrate, special

from conftest import make_cfg
from runner.run import run
from runner.theory import activations
from runner.theory.init import Init, member_generator
from runner.theory.measurements import sample_ntk
from runner.theory.ntk import ntk_flow

DEPTH, K0 = 6, 0.7
LAMBDA_B, LAMBDA_W = 0.5, 1.5  # unequal factors, so a swapped pair would show


def recursion(s2, d2, C_b: float, C_W: float, K0: float, depth: int) -> tuple[list[float], list[float]]:
    """K(l), Θ(l) from the Gaussian averages s2(K) = <σ²>_K and d2(K) = <σ'²>_K (plain floats)."""
    K, theta = C_b + C_W * K0, LAMBDA_B + LAMBDA_W * K0
    Ks, thetas = [K], [theta]
    for _ in range(depth - 1):
        K, theta = C_b + C_W * s2(K), LAMBDA_B + LAMBDA_W * s2(K) + C_W * d2(K) * theta
        Ks.append(K)
        thetas.append(theta)
    return Ks, thetas


def gauss(f, K: float, splits=()) -> float:
    """<f(z)>_K by adaptive quadrature (scipy.integrate.quad) on [-14 sqrt K, 14 sqrt K], split at 0
    and `splits`: an integrator and a σ written independently of the runner's."""
    s = math.sqrt(K)
    edges = sorted({-14 * s, 0.0, 14 * s, *[c for c in splits if abs(c) < 14 * s]})
    dens = lambda z: f(z) * math.exp(-z * z / (2 * K)) / math.sqrt(2 * math.pi * K)  # noqa: E731
    return sum(integrate.quad(dens, a, b, epsabs=0, epsrel=1e-13, limit=400)[0] for a, b in zip(edges, edges[1:]))


def sig(z: float) -> float:
    return 1 / (1 + math.exp(-z))


PHI = lambda z: 0.5 * (1 + math.erf(z / math.sqrt(2)))  # noqa: E731
phi = lambda z: math.exp(-z * z / 2) / math.sqrt(2 * math.pi)  # noqa: E731

# name: (the runner's Activation, σ and σ' written here, the kinks, (C_b, C_W))
CASES = {
    "tanh": (activations.tanh(), math.tanh, lambda z: 1 - math.tanh(z) ** 2, (), (0.0, 1.0)),
    "gelu": (activations.gelu(), lambda z: z * PHI(z), lambda z: PHI(z) + z * phi(z), (), (0.17, 1.98)),
    "mrepu": (activations.mrepu(), lambda z: z * max(0.0, z + 1) ** 2,
              lambda z: (z + 1) ** 2 + 2 * z * (z + 1) if z > -1 else 0.0, (-1.0,), (0.0, 0.5)),
    "swish formula": (activations.Formula("z*sigmoid(beta*z)", name="swish", beta=1.5),
                      lambda z: z * sig(1.5 * z), lambda z: sig(1.5 * z) + 1.5 * z * sig(1.5 * z) * (1 - sig(1.5 * z)),
                      (), (0.3, 1.7)),
}


def test_relu_ntk_is_the_arc_cosine_kernel_through_depth():
    """ReLU: <σ²>_K = K/2 and <σ'²>_K = 1/2 (the arc-cosine kernels of degree 1 and 0 at angle 0)."""
    for C_b, C_W in ((0.0, 2.0), (0.1, 1.3)):
        K_ref, theta_ref = recursion(lambda K: K / 2, lambda K: 0.5, C_b, C_W, K0, DEPTH)
        K, theta = ntk_flow(activations.relu(), C_b, C_W, K0, DEPTH, lambda_b=LAMBDA_B, lambda_W=LAMBDA_W)
        np.testing.assert_allclose(K, K_ref, rtol=1e-12)
        np.testing.assert_allclose(theta, theta_ref, rtol=1e-12)
    # at criticality (C_W = 2, C_b = 0) the kernel is constant and the NTK grows linearly with depth
    _, theta = ntk_flow(activations.relu(), 0.0, 2.0, K0, DEPTH)
    np.testing.assert_allclose(np.diff(theta), 1 + K0, rtol=1e-12)


def test_erf_ntk_is_williams_arcsin_kernel_through_depth():
    """erf (a formula): <erf²>_K = (2/π) arcsin(2K/(1+2K)) (Williams 1997) and
    <erf'²>_K = (4/π) / sqrt(1 + 4K)."""
    act = activations.Formula("erf(z)", name="erf")
    s2 = lambda K: 2 / math.pi * math.asin(2 * K / (1 + 2 * K))  # noqa: E731
    d2 = lambda K: 4 / math.pi / math.sqrt(1 + 4 * K)  # noqa: E731
    for C_b, C_W in ((0.0, 1.0), (0.2, 2.5)):
        K_ref, theta_ref = recursion(s2, d2, C_b, C_W, K0, DEPTH)
        K, theta = ntk_flow(act, C_b, C_W, K0, DEPTH, lambda_b=LAMBDA_B, lambda_W=LAMBDA_W)
        np.testing.assert_allclose(K, K_ref, rtol=1e-11)
        np.testing.assert_allclose(theta, theta_ref, rtol=1e-11)


@pytest.mark.parametrize("name", CASES)
def test_ntk_agrees_with_independent_quadrature_through_depth(name):
    """Against scipy's adaptive quadrature of σ and σ' written here; both are good to ~1e-12, so
    1e-6 relative leaves room only for a wrong recursion or a wrong integrand."""
    act, f, df, kinks, (C_b, C_W) = CASES[name]
    K_ref, theta_ref = recursion(lambda K: gauss(lambda z: f(z) ** 2, K, kinks),
                                 lambda K: gauss(lambda z: df(z) ** 2, K, kinks), C_b, C_W, K0, DEPTH)
    K, theta = ntk_flow(act, C_b, C_W, K0, DEPTH, lambda_b=LAMBDA_B, lambda_W=LAMBDA_W)
    np.testing.assert_allclose(K, K_ref, rtol=1e-6)
    np.testing.assert_allclose(theta, theta_ref, rtol=1e-6)


def test_sample_ntk_is_the_jacobian_inner_product():
    """sample_ntk's one-backward identity against the full parameter Jacobian (torch.func) of small
    networks drawn the same way, with the learning-rate factors λ_b and λ_W/fan_in."""
    act, init, depth, width = activations.tanh(), Init("critical", 1.3, 1.1, 0.2), 3, 5
    x = torch.randn(4, 2, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    got = sample_ntk(act, x, depth, width, init, members=3, seed=7, chunk=2, lambda_b=LAMBDA_B, lambda_W=LAMBDA_W)
    dims = [2] + [width] * depth + [1]
    for k in range(3):
        gen = member_generator(7, k)
        params = [init.draw(a, b, gen, first=i == 0) for i, (a, b) in enumerate(zip(dims[:-1], dims[1:]))]
        flat = [t for wb in params for t in wb]

        def f(*ps, xi):
            h = xi
            for i in range(len(ps) // 2):
                z = h @ ps[2 * i] + ps[2 * i + 1]
                h = act(z) if i < len(ps) // 2 - 1 else z
            return h.sum()

        for n in range(4):
            grads = torch.func.grad(lambda *ps: f(*ps, xi=x[n]), argnums=tuple(range(len(flat))))(*flat)
            theta = sum((LAMBDA_W / a if g.dim() == 2 else LAMBDA_B) * float(g.pow(2).sum())
                        for g, a in zip(grads, [d for d in dims[:-1] for _ in (0, 1)]))
            assert got[k, n] == pytest.approx(theta, rel=1e-12)


@pytest.mark.parametrize("act,C_b,C_W", [(activations.relu(), 0.0, 2.0), (activations.tanh(), 0.0, 1.0),
                                         (activations.gelu(), 0.1730, 1.9834)])
def test_measured_ntk_agrees_with_the_theory_at_width_512(act, C_b, C_W):
    """64 networks of 3 hidden layers of 512 (float64): the member mean of the output's NTK within
    4 standard errors of the infinite-width value (the 1/n bias, ~depth/n, is below one SE here)."""
    x = torch.tensor([[1.0, -0.5], [0.3, 0.2]], dtype=torch.float64)
    theta = sample_ntk(act, x, 3, 512, Init("critical", C_W, C_W, C_b), 64, seed=3)
    _, theory = ntk_flow(act, C_b, C_W, (x**2).mean(1).numpy(), 4)
    mean, se = theta.mean(0), theta.std(0, ddof=1) / 8
    assert np.all(se / mean < 0.05), se / mean
    assert np.all(np.abs(mean - theory[:, -1]) < 4 * se), (mean, theory[:, -1], se)


def test_kernel_init_reports_the_ntk_against_the_theory(tmp_path):
    """task=kernel_init at width 512: the measured NTK of the fixed input and of the random inputs
    within 4 standard errors of the theory."""
    s = run(make_cfg("task=kernel_init", "activation=tanh", "model=mlp_3x512", "ensemble.size=64",
                     "task.n_random_inputs=2", "init.C_W=1.0", "init.C_b=0.0", "trainer=cpu"), tmp_path)
    assert s["status"] == "completed", s.get("error")
    m = {k: v["mean"] for k, v in s["metrics"].items()}
    for view in ("ntk", "ntk_inputs"):
        assert m[f"cw1_n512/{view}_se"] / m[f"cw1_n512/{view}"] < 0.05
        assert m[f"cw1_n512/{view}_abs_z"] < 4, m
