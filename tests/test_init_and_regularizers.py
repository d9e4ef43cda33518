import math
from dataclasses import replace

import pytest
import torch

from conftest import make_model
from runner.theory import activations
from runner.theory.init import Init, PyTorchInit, XavierInit, member_generator
from runner.training.regularizers import SpectralNorm, WeightDecay, exact_spectral_norms


@pytest.mark.parametrize("C_W,C_b,fan_in", [(1.0, 0.0, 256), (2.0, 0.5, 64), (0.45, 0.1, 512)])
def test_critical_init_variances(C_W, C_b, fan_in):
    w, b = Init("critical", C_W, C_W, C_b).draw(fan_in, 400, member_generator(0, 0))
    # Var of a sample variance of n Gaussians is 2 sigma^4 / n: allow 5 standard errors.
    n = w.numel()
    assert w.var().item() == pytest.approx(C_W / fan_in, rel=5 * math.sqrt(2 / n))
    assert abs(w.mean().item()) < 5 * math.sqrt(C_W / fan_in / n)
    if C_b == 0:
        assert torch.all(b == 0)
    else:
        assert b.var().item() == pytest.approx(C_b, rel=5 * math.sqrt(2 / b.numel()))


def test_pytorch_and_xavier_bounds():
    w, b = PyTorchInit("pytorch", 1 / 3, 1 / 3, 1 / 150).draw(100, 50, member_generator(1, 0))
    assert w.abs().max() <= 0.1 and b.abs().max() <= 0.1
    assert w.var().item() == pytest.approx(0.01 / 3, rel=0.05)  # U(-a, a) has variance a^2/3
    w, b = XavierInit("xavier", 1.0, 1.0, 0.0).draw(100, 50, member_generator(1, 0))
    assert w.abs().max() <= math.sqrt(6 / 150) and torch.all(b == 0)


@pytest.mark.parametrize("init", [Init("critical", 0.7, 1.3, 0.2), PyTorchInit("pytorch", 1 / 3, 1 / 3, 1 / 24)])
def test_a_readout_of_its_own_scales_only_the_drawn_readout(init):
    """`Init.layers` draws every layer by `draw` from one stream, as the layer-by-layer loop did; with
    C_W_last = r C_W and C_b_last = r C_b the readout is the same draw times sqrt(r) and every other
    layer (and the stream after it) is bit-identical, so a run without them draws what it drew before."""
    dims = [2, 8, 8, 1]
    gen = member_generator(3, 0)
    loop = [init.draw(a, b, gen, first=i == 0) for i, (a, b) in enumerate(zip(dims[:-1], dims[1:]))]
    plain = init.layers(dims, member_generator(3, 0))
    assert all(torch.equal(w, v) and torch.equal(b, c) for (w, b), (v, c) in zip(loop, plain))
    r = 0.04
    scaled = replace(init, C_W_last=r * init.C_W, C_b_last=r * init.C_b).layers(dims, member_generator(3, 0))
    assert all(torch.equal(w, v) and torch.equal(b, c) for (w, b), (v, c) in zip(plain[:-1], scaled[:-1]))
    torch.testing.assert_close(scaled[-1][0], plain[-1][0] * math.sqrt(r), rtol=1e-15, atol=0)
    torch.testing.assert_close(scaled[-1][1], plain[-1][1] * math.sqrt(r), rtol=1e-15, atol=0)
    assert set(init.as_dict()) == {"scheme", "C_W_first", "C_W", "C_b"}  # summary.json as before
    assert replace(init, C_W_last=0.1).as_dict()["C_W_last"] == 0.1 and "C_b_last" not in replace(
        init, C_W_last=0.1).as_dict()
    with pytest.raises(ValueError, match="C_b_last"):
        Init("critical", 1.0, 1.0, 0.0, C_b_last=0.1)  # a zero bias cannot be scaled to a variance


def test_member_streams_are_distinct_and_reproducible():
    a = make_model(1, 1, 2, 8, activations.tanh(), size=3, seed=7)
    b = make_model(1, 1, 2, 8, activations.tanh(), size=1, seed=7, member_offset=2)
    c = make_model(1, 1, 2, 8, activations.tanh(), size=1, seed=8, member_offset=2)
    assert torch.equal(a.weights[0][2], b.weights[0][0])
    assert not torch.equal(a.weights[0][0], a.weights[0][1])
    assert not torch.equal(b.weights[0][0], c.weights[0][0])


@pytest.mark.numerics
def test_ensemble_forward_equals_per_member_mlp():
    model = make_model(2, 3, 3, 16, activations.gelu(), size=4, seed=0)
    x = torch.randn(10, 2)
    out = model(x)
    for k in range(4):
        h = x
        for i, (w, b) in enumerate(zip(model.weights, model.biases)):
            h = h @ w[k] + b[k, 0]
            if i < model.depth:
                h = torch.nn.functional.gelu(h)
        torch.testing.assert_close(out[k], h)
    torch.testing.assert_close(model(x.expand(4, -1, -1).clone()), out)


@pytest.mark.numerics
def test_spectral_penalty_converges_to_exact_norm_and_has_paper_gradient():
    torch.manual_seed(0)
    model = make_model(3, 2, 2, 32, activations.relu(), size=5, seed=1, C_W=2.0)
    reg = SpectralNorm(coef=0.3, n_power_iterations=1)
    reg.setup(model)
    sigmas = reg.sigmas(model, steps=200)
    for est, exact in zip(sigmas, exact_spectral_norms(model)):
        torch.testing.assert_close(est, exact, rtol=1e-4, atol=1e-6)
    exact = torch.linalg.matrix_norm(model.weights[1].detach(), ord=2)
    penalty = reg.penalty(model)  # one more iteration: the estimate is converged
    expected = 0.15 * sum(torch.linalg.matrix_norm(w.detach(), ord=2) ** 2 for w in model.weights)
    torch.testing.assert_close(penalty, expected, rtol=1e-4, atol=1e-6)
    penalty.sum().backward()
    # d/dW (c/2) sigma^2 = c * sigma * u v^T, whose Frobenius norm is c * sigma.
    torch.testing.assert_close(model.weights[1].grad.norm(dim=(1, 2)), 0.3 * exact, rtol=1e-3, atol=1e-6)


def test_weight_decay_penalty():
    model = make_model(1, 1, 2, 4, activations.relu(), size=2, seed=0)
    expected = 0.5 * 0.1 * sum((w.detach() ** 2).sum(dim=(1, 2)) for w in model.weights)
    torch.testing.assert_close(WeightDecay(0.1).penalty(model), expected)
