"""runner.theory's kernels, vertex and criticality against closed forms and independent references."""

import math

import numpy as np
import pytest
import torch

from conftest import BUILTIN_ACTIVATIONS
from runner.theory import activations
from runner.theory import finite_width, gaussian, kernels
from runner.theory.criticality import critical_init, criticality

K_GRID = np.logspace(-4, 3, 15)


def arccos_J(n: int, theta: float = 0.0) -> float:
    """Cho & Saul (2009) J_n(θ) of the arc-cosine kernels, n = 0, 1, 2."""
    s, c, pi = math.sin(theta), math.cos(theta), math.pi
    return [pi - theta, s + (pi - theta) * c, 3 * s * c + (pi - theta) * (1 + 2 * c**2)][n]


@pytest.mark.parametrize("p", [1, 2])
def test_repu_moments_match_arc_cosine_kernels(p):
    # k_n(x, x) = (1/π)|x|^{2n} J_n(0) = 2 E[Θ(w·x)(w·x)^{2n}], so <RePU_p²>_K = K^p J_p(0)/(2π)
    # and <RePU_p'²>_K = p² K^{p-1} J_{p-1}(0)/(2π); tolerance: 1e-12 relative.
    act = activations.repu(p=p)
    s2 = gaussian.gaussian_expectation(lambda z: act(z) ** 2, K_GRID)
    np.testing.assert_allclose(s2, K_GRID**p * arccos_J(p) / (2 * math.pi), rtol=1e-12)
    np.testing.assert_allclose(kernels.chi_perp(act, K_GRID, 1.0),
                               p**2 * K_GRID ** (p - 1) * arccos_J(p - 1) / (2 * math.pi), rtol=1e-12)


def test_erf_kernel_matches_williams_closed_form():
    # Williams (1998): <erf(z)²>_K = (2/π) arcsin(2K/(1+2K)); smooth sigma, 1e-10 relative.
    got = gaussian.gaussian_expectation(lambda z: torch.special.erf(z) ** 2, K_GRID, kinks=())
    np.testing.assert_allclose(got, 2 / np.pi * np.arcsin(2 * K_GRID / (1 + 2 * K_GRID)), rtol=1e-10)
    assert gaussian.gaussian_expectation(lambda z: z**4, 2.5, kinks=()) == pytest.approx(3 * 2.5**2, rel=1e-13)


@pytest.mark.parametrize("p", [1, 2, 3, 5])
def test_repu_closed_forms_match_quadrature(p):
    act = activations.repu(p=p)
    C_b, C_W = 0.1, 0.7
    np.testing.assert_allclose(kernels.kernel_map(act, K_GRID, C_b, C_W),
                               kernels.repu_kernel_map(p, K_GRID, C_b, C_W), rtol=1e-12)
    par, perp = kernels.chi_par(act, K_GRID, C_W), kernels.chi_perp(act, K_GRID, C_W)
    np.testing.assert_allclose(par, kernels.repu_chi_par(p, K_GRID, C_W), rtol=1e-10)
    np.testing.assert_allclose(perp, kernels.repu_chi_perp(p, K_GRID, C_W), rtol=1e-12)
    np.testing.assert_allclose(par / perp, kernels.repu_chi_ratio(p), rtol=1e-10)


def test_chi_par_is_the_derivative_of_the_kernel_map():
    act = activations.tanh()
    K, h = 0.7, 1e-5
    numeric = (kernels.kernel_map(act, K + h, 0, 1.3) - kernels.kernel_map(act, K - h, 0, 1.3)) / (2 * h)
    assert kernels.chi_par(act, K, 1.3) == pytest.approx(numeric, rel=1e-8)


@pytest.mark.parametrize("p", [2, 3, 4])
def test_no_C_W_makes_both_repu_susceptibilities_one(p):
    act = activations.repu(p=p)
    C_W = np.logspace(-3, 3, 61)[:, None]
    par, perp = kernels.chi_par(act, K_GRID, C_W), kernels.chi_perp(act, K_GRID, C_W)
    # wherever χ⊥ = 1 (C_W = 1/<σ'²>), χ∥ = (2p-1)/p ≥ 1.5: both 1 never happens
    assert np.all(par / perp >= 1.5 - 1e-9)
    crit = critical_init(act)
    assert not crit.exists and crit.universality == "none" and "explodes or collapses" in crit.reason
    assert crit.chi_ratio == pytest.approx((2 * p - 1) / p, rel=1e-9)
    with pytest.raises(ValueError, match="no critical initialization"):
        crit.values()


def test_mrepu_ratio_tends_to_one_as_K_vanishes():
    for p in (2, 3):
        act = activations.mrepu(p=p)
        K = np.logspace(-7, -1, 13)
        gap = kernels.chi_par(act, K, 1.0) / kernels.chi_perp(act, K, 1.0) - 1
        assert np.all(gap > 0) and np.all(np.diff(gap) > 0)  # monotone, from above
        assert gap[0] < 1e-4
        # ratio - 1 is linear in K at small K: halving K halves the gap (10% tolerance)
        assert gap[0] / K[0] == pytest.approx(gap[1] / K[1], rel=0.1)


def test_mrepu_kernel_grows_and_fixed_point_needs_C_W_below_one():
    act = activations.mrepu(p=2)
    assert np.all(kernels.kernel_map(act, K_GRID, 0.0, 1.0) > K_GRID)  # <σ²>_K > K for every K
    K_star = kernels.lowest_fixed_point(act, 0.0, np.array([0.5, 0.9, 0.99, 1.0, 1.5]))
    assert np.all(np.isfinite(K_star[:3])) and np.all(np.isnan(K_star[3:]))
    for cw, k in zip((0.5, 0.9, 0.99), K_star[:3]):
        assert kernels.kernel_map(act, k, 0.0, cw) == pytest.approx(k, rel=1e-9)
        (fp,) = kernels.fixed_points(act, 0.0, cw)
        assert fp["K"] == pytest.approx(k, rel=1e-8) and not fp["stable"]  # χ∥(K*) > 1
    crit = critical_init(act)
    assert crit.universality == "K*=0" and crit.C_W == 1.0 and crit.stable is False
    assert crit.a1 == pytest.approx(18.0, rel=1e-2)  # a1 = σ3/σ1 + (3/4)(σ2/σ1)² = 6 + 12


# PDLT ch. 5's classes as the docs state them (docs/papers.md); the runner measures them.
DOCUMENTED_CLASS = {"relu": "scale-invariant", "leaky_relu": "scale-invariant", "tanh": "K*=0", "sin": "K*=0",
                    "elu": "K*=0", "mrepu": "K*=0", "gelu": "half-stable", "silu": "half-stable",
                    "softplus": "none", "sigmoid": "none", "repu": "none"}


def test_every_builtin_has_a_documented_class():
    assert set(DOCUMENTED_CLASS) == set(BUILTIN_ACTIVATIONS)


@pytest.mark.parametrize("name", BUILTIN_ACTIVATIONS)
def test_measured_universality_class_is_the_documented_one(name):
    act = getattr(activations, name)()
    crit = criticality(act)
    assert crit.universality == DOCUMENTED_CLASS[name]
    if crit.exists and crit.K_star:  # half-stable: a genuine critical fixed point
        K = crit.K_star
        assert kernels.kernel_map(act, K, crit.C_b, crit.C_W) == pytest.approx(K, rel=1e-8)
        assert kernels.chi_par(act, K, crit.C_W) == pytest.approx(1.0, rel=1e-8)
        assert kernels.chi_perp(act, K, crit.C_W) == pytest.approx(1.0, rel=1e-8)


def test_critical_values_match_pdlt():
    assert critical_init(activations.relu()).values() == pytest.approx((0.0, 2.0), abs=1e-10)
    slope = 0.01
    lrelu = critical_init(activations.leaky_relu(slope=slope))
    assert lrelu.C_W == pytest.approx(2 / (1 + slope**2), rel=1e-10)
    assert critical_init(activations.tanh()).values() == (0.0, 1.0)
    # PDLT §5.3: GELU is critical at (C_b, C_W) ≈ (0.17292, 1.98305)
    gelu = critical_init(activations.gelu())
    assert gelu.C_b == pytest.approx(0.17292, abs=2e-5) and gelu.C_W == pytest.approx(1.98305, abs=2e-5)
    assert critical_init(activations.sigmoid()).exists is False


def test_kernel_flow_closed_forms():
    relu = activations.relu()
    K = kernels.kernel_flow(relu, 0.2, 1.5, 0.8, 6)
    expected = [0.2 + 1.5 * 0.8]
    for _ in range(5):
        expected.append(0.2 + 1.5 * expected[-1] / 2)
    np.testing.assert_allclose(K, expected, rtol=1e-12)
    repu = activations.repu(p=2)
    K = kernels.kernel_flow(repu, 0.0, np.array([0.5, 1.0]), 1.0, 10)
    assert K.shape == (2, 10)
    ref = np.array([0.5, 1.0])
    for l in range(1, 10):
        ref = 1.5 * np.array([0.5, 1.0]) * ref**2
        np.testing.assert_allclose(K[:, l], ref, rtol=1e-10)
    assert K[0, -1] < 1e-200 and K[1, -1] > 1e80  # double-exponential collapse / explosion
    np.testing.assert_allclose(finite_width.kernel_flow_nlo(relu, 0.2, 1.5, 0.8, 6, 64),
                               kernels.kernel_flow(relu, 0.2, 1.5, 0.8, 6), rtol=1e-12)


def test_vertex_flow_relu_closed_form_and_widths():
    # ReLU at criticality: K constant, C_W²(<σ⁴> − <σ²>²) = 4(3/2 − 1/4)K² = 5K², χ∥ = 1,
    # so V(l) = 5 (l − 1) K²; with n_l/n_{l-1} = 2 the previous V doubles each layer.
    relu = activations.relu()
    V = finite_width.vertex_flow(relu, 0.0, 2.0, 1.0, 6, 128)
    np.testing.assert_allclose(V, 5 * 4.0 * np.arange(6), rtol=1e-11)
    V2 = finite_width.vertex_flow(relu, 0.0, 2.0, 1.0, 3, [64, 128, 256])
    np.testing.assert_allclose(V2, [0.0, 20.0, 20.0 + 2 * 20.0], rtol=1e-11)
    kurt = finite_width.excess_kurtosis(V, kernels.kernel_flow(relu, 0.0, 2.0, 1.0, 6), [2] + [128] * 5)
    np.testing.assert_allclose(kurt[1:], 15 * np.arange(1, 6) / 128, rtol=1e-11)


def test_kernel_sweep_is_vectorized_and_fast():
    import time

    act = activations.mrepu(p=2)
    C_W = np.logspace(-1, 1, 100)
    start = time.perf_counter()
    K = kernels.kernel_flow(act, 0.0, C_W, 0.01, 50)
    kernels.chi_par(act, K, C_W[:, None]), kernels.chi_perp(act, K, C_W[:, None])
    assert K.shape == (100, 50)
    assert time.perf_counter() - start < 10  # generous: shared CI cores; the benchmark reports it


def test_init_C_W_auto_takes_the_critical_pair_where_one_is_stable():
    """Hidden layers at PDLT's criticality for ReLU and GELU (auto then only sizes the first layer)."""
    from runner.theory.forecast import choose_init

    relu, _ = choose_init(activations.relu(), np.array([0.0, 0.5, 2.0]), 4)
    assert (relu.C_W, relu.C_b, relu.C_W_first) == pytest.approx((2.0, 0.0, 2.0))
    gelu, _ = choose_init(activations.gelu(), np.array([0.0, 0.5, 2.0]), 4)
    assert (gelu.C_W, gelu.C_b) == pytest.approx((1.98306, 0.17292), abs=1e-4)
