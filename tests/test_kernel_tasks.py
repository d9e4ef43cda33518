"""Theory against finite ensembles, and the kernel, susceptibility and phase-diagram tasks and presets end to end (small scale)."""

import json
import math

import numpy as np
import pytest
import torch

from conftest import make_cfg, make_model, run_cli
from runner.theory import activations
from runner.theory import finite_width, kernels
from runner.theory.measurements import empirical_chi_perp, mean_and_se, sample_init, vertex_from_G
from runner.run import run

X1 = torch.tensor([[1.0, 1.0]])


@pytest.mark.parametrize("name,params,C_W,scale", [
    ("relu", {}, 2.0, 1.0), ("tanh", {}, 1.0, 1.0), ("mrepu", {"p": 2}, 0.5, 0.1)])
def test_empirical_kernel_follows_the_recursion(name, params, C_W, scale):
    # 40 networks of 10x512: every layer within 4 standard errors of the 1/n-corrected recursion
    # and within 5% of the leading-order one (SE here is 0.5-2%).
    act = getattr(activations, name)(**params)
    stats = sample_init(act, X1 * scale, depth=10, width=512, C_W=C_W, C_b=0.0, members=40, seed=1)
    mean, se = mean_and_se(stats.kernel[:, :, 0], stats.finite)
    K0 = scale**2
    nlo = finite_width.kernel_flow_nlo(act, 0.0, C_W, K0, 10, 512)
    assert stats.finite.all()
    assert np.all(np.abs(mean - nlo) < 4 * se)
    np.testing.assert_allclose(mean, kernels.kernel_flow(act, 0.0, C_W, K0, 10), rtol=0.05)


@pytest.mark.parametrize("C_W", [0.5, 1.0, 2.0])
def test_repu_explodes_or_collapses_within_ten_layers(C_W):
    act = activations.repu(p=2)
    K = kernels.kernel_flow(act, 0.0, C_W, 1.0, 10)
    predicted = "collapse" if K[-1] < 1e-10 * K[0] else "explode"
    assert K[-1] < 1e-10 * K[0] or K[-1] > 1e10 * K[0]  # the theory runs away either way
    stats = sample_init(act, X1, depth=10, width=512, C_W=C_W, C_b=0.0, members=12, seed=0,
                        dtype=torch.float32)
    collapsed, exploded, overflowed = stats.collapsed()[-1], stats.exploded()[-1], stats.overflowed()[-1]
    if predicted == "collapse":
        assert collapsed == 12
    else:
        assert exploded + overflowed == 12
    assert stats.finite.shape == (12, 10)  # overflow is counted, never raised


def test_vertex_grows_with_depth_and_is_larger_at_smaller_width():
    act = activations.tanh()
    kurt = {}
    for n in (32, 128):
        stats = sample_init(act, X1, depth=8, width=n, C_W=1.0, C_b=0.0, members=300, seed=2)
        V, se = vertex_from_G(stats)
        K, _ = mean_and_se(stats.kernel[:, :, 0], stats.finite)
        kurt[n] = finite_width.excess_kurtosis(V, K, stats.n_prev)
        assert V[0] == 0 and np.all(np.diff(kurt[n][1:]) > -0.1 * kurt[n][2:])  # grows with depth
        assert kurt[n][-1] > 4 * kurt[n][1]  # theory: ~7x from layer 2 to 8
        V_th = finite_width.vertex_flow(act, 0.0, 1.0, 1.0, 8, n)
        np.testing.assert_allclose(V[1:], V_th[1:], rtol=0.35)  # estimator SE is ~9% per layer
    assert np.all(kurt[32][1:] > 2 * kurt[128][1:])  # theory: 4x


def test_empirical_chi_perp_matches_theory_at_init():
    act = activations.tanh()
    model = make_model(2, 1, 3, 512, act, size=8, seed=0, C_W=1.5).double()
    x = torch.randn(16, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    _, zs = model(x, return_preactivations=True)
    K = kernels.kernel_flow(act, 0.0, 1.5, (x**2).sum(1).numpy() / 2, 3)  # (16, 3)
    for l, (z, w) in enumerate(zip(zs, list(model.weights)[1:3])):
        got = empirical_chi_perp(act, z, w).mean().item()
        assert got == pytest.approx(kernels.chi_perp(act, K[:, l], 1.5).mean(), rel=0.05)


def metrics(summary: dict) -> dict:
    return {k: v["mean"] for k, v in summary["metrics"].items()}


def test_susceptibility_preset(tmp_path):
    s = run(make_cfg("experiment=kimkang_fig4_quick"), tmp_path)
    m = metrics(s)
    assert s["status"] == "completed"
    for p in (2, 3):
        assert abs(m[f"mrepu_p{p}_shift1/ratio_at_smallest_K"] - 1) < 1e-4
        assert m[f"mrepu_p{p}_shift1/max_C_W_with_fixed_point"] < 1.0
    assert m["repu_p2/ratio_at_smallest_K"] == pytest.approx(1.5, rel=1e-9)
    assert m["repu_p2/critical_C_W"] is None  # NaN: no criticality
    rows = (tmp_path / "metrics.csv").read_text().splitlines()
    assert len(rows) == 1 + 3 * 12 and rows[0].startswith("activation,C_W,K_star")
    assert (tmp_path / "plots/susceptibility.png").exists() and (tmp_path / "plots/ratio_vs_K.png").exists()


@pytest.mark.parametrize("preset", ["kimkang_fig1_quick", "kimkang_fig6_quick"])
def test_kernel_init_presets(tmp_path, preset):
    s = run(make_cfg(f"experiment={preset}"), tmp_path)
    assert s["status"] == "completed" and s["task"] == "kernel_init"
    m = metrics(s)
    header = (tmp_path / "metrics.csv").read_text().splitlines()[0].split(",")
    assert {"K_theory", "K_weights", "V_G", "V_theory", "overflowed", "collapsed"} <= set(header)
    for name in ("plots/kernel.png", "plots/vertex.png", "kernels.npz"):
        assert (tmp_path / name).exists()
    if preset == "kimkang_fig1_quick":  # RePU: C_W = 0.5 collapses, 2.0 explodes (width 64, 16 nets)
        assert m["cw0.5_n64/collapsed"] >= 12, m  # the rest scatter: 1/n effects at width 64
        assert m["cw2_n64/overflowed"] + m["cw2_n64/exploded"] == 16
    else:  # smaller width, larger normalized vertex
        assert m["cw0.5_n16/vertex_last_layer"] > 0


def test_exploding_mrepu_kernel_still_plots(tmp_path):
    """MRePU at C_W = 1, width 128: members explode to ~1e300 without overflowing; the kernel
    plot once crashed matplotlib's log axis on them (found by the smoke reproduction)."""
    s = run(make_cfg("experiment=kimkang_fig5", "model.width=128", "ensemble.size=64",
                     "task.n_random_inputs=4"), tmp_path)
    assert s["status"] == "completed", s.get("error")
    assert metrics(s)["cw1_n128/exploded"] >= 32
    assert (tmp_path / "plots/kernel.png").exists() and (tmp_path / "plots/vertex.png").exists()


@pytest.mark.parametrize("preset,status", [
    ("kimkang_table2_quick", "not_learned"),  # deep RePU: every member ends no better than the zero function
    ("kimkang_table3_quick", "completed"),   # MRePU at the same depth trains
])
def test_kernel_training_presets(tmp_path, preset, status):
    s = run(make_cfg(f"experiment={preset}", "logger=none"), tmp_path)
    assert s["status"] == status, s["member_status"]
    rec = json.loads((tmp_path / "kernel_records.json").read_text())
    assert [r["epoch"] for r in rec["records"]] == [0, 10, 20]
    depth = s["config"]["model"]["depth"]
    assert all(len(r["kernel_mean"]) == depth and "overflowed" in r for r in rec["records"])
    table = (tmp_path / "kernel_table.md").read_text()
    assert "| 20 |" in table and "theory (init)" in table
    for name in ("kernel_table.csv", "predictions.npz", "plots/kernel_training.png", "plots/output.png"):
        assert (tmp_path / name).exists(), name
    assert f"kernel/layer{depth}" in s["metrics"] and "test_mse" in s["metrics"]


def test_kernel_init_cli_contract(tmp_path):
    run_dir = tmp_path / "run"
    res = run_cli("experiment=kimkang_fig5_quick", "task.C_W_values=[0.5]", f"hydra.run.dir={run_dir}",
                  cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-2000:]
    for name in (".hydra/config.yaml", "metrics.csv", "summary.json", "plots/kernel.png"):
        assert (run_dir / name).exists(), name
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["activation"] == "mrepu"
    bad = run_cli("task=kernel_init", "task.widths=[0]", cwd=tmp_path)
    assert bad.returncode == 2 and "task.widths" in bad.stderr


@pytest.mark.parametrize("activation", ["mrepu", "tanh"])
def test_phase_diagram_theory_agrees_with_measured_fractions_away_from_the_boundary(tmp_path, activation):
    from runner.run import run

    cfg = make_cfg("experiment=phase_diagram", f"activation={activation}", "model=mlp_5x32", "model.width=48",
                   "ensemble.size=24", "task.n_C_W=8", "task.n_K0=6")
    s = run(cfg, tmp_path)
    m = s["metrics"]
    assert s["status"] == "completed" and m["clear_cells"]["mean"] >= 20
    assert m["agreement"]["mean"] >= 0.9
    assert (tmp_path / "plots" / "phase_diagram.png").exists() and (tmp_path / "phase_diagram.csv").exists()
    if activation == "mrepu":  # the paper's Burgers setting explodes; Table 3's stays in band
        assert m["mark/Burgers (C_W 0.45)/log_ratio"]["mean"] > math.log(10)
        assert abs(m["mark/Table 3 (C_W 0.9)/log_ratio"]["mean"]) < math.log(10)
