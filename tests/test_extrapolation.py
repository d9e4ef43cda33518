"""Paper A: every activation fits its training range; the tails take the activation's shape."""

import pytest

from conftest import make_cfg
from runner.run import build, run


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    """One small ensemble per (target, activation) with the preset's settings."""
    out = {}
    for task in ("x2", "x3"):
        for act in ("relu", "leaky_relu", "tanh", "sin"):
            cfg = make_cfg(f"experiment=tsvetkova_{task}", f"activation={act}", "ensemble.size=3",
                           "logger=none")
            out[task, act] = run(cfg, tmp_path_factory.mktemp(f"{task}_{act}"))["metrics"]
    return out


@pytest.mark.parametrize("task", ["x2", "x3"])
@pytest.mark.parametrize("act", ["relu", "leaky_relu", "tanh", "sin"])
def test_fits_training_range(fitted, task, act):
    # relative RMSE on the training interval, for every member, below 5 %
    assert fitted[task, act]["in_range_rel_rmse"]["max"] < 0.05


@pytest.mark.parametrize("task", ["x2", "x3"])
def test_tail_shapes_follow_the_activation(fitted, task):
    relu, tanh, sin = (fitted[task, a] for a in ("relu", "tanh", "sin"))
    # ReLU: a straight line that keeps growing
    assert relu["tail_line_residual"]["max"] < 0.01
    assert relu["tail_rel_range"]["min"] > 0.5
    # tanh: saturates, the far tail is nearly flat compared with ReLU's
    assert tanh["tail_rel_range"]["mean"] < 0.2 * relu["tail_rel_range"]["mean"]
    # sin: not a line: it turns beyond the data, where ReLU never does
    assert relu["extrap_turning_points"]["max"] == 0
    assert sin["extrap_turning_points"]["mean"] >= 1
    assert sin["tail_line_residual"]["mean"] > 10 * relu["tail_line_residual"]["mean"]


def test_tail_metrics_on_curves_with_known_shape():
    """The shape metrics against closed forms, on the x2 preset's grid (data on [-20, 20],
    evaluation on [-100, 100], far tails |x| >= 60, in-range span of x^2 = 400)."""
    import math

    import torch

    task = build(make_cfg("task=x2")).task
    x = task.x_eval[:, 0].double()
    line, wave = 2 * x + 1, torch.sin(x / 5)
    shape = task._tail_shape(torch.stack([line, wave, torch.full_like(x, math.nan)]).float(),
                             torch.tensor(400.0))
    # a line: no residual, range 2 * 40 / 400 on each far tail, no turning points
    assert shape["tail_line_residual"][0] < 1e-6
    assert shape["tail_rel_range"][0] == pytest.approx(80 / 400, rel=1e-5)
    assert shape["extrap_turning_points"][0] == 0
    # sin(x/5) turns at x = 5(pi/2 + k pi): 5 times in (20, 100], 5 times in [-100, -20)
    assert shape["extrap_turning_points"][1] == 10
    assert shape["tail_rel_range"][1] == pytest.approx(2 / 400, rel=1e-3)
    # a diverged member gets NaN, not an exception
    assert all(math.isnan(float(v[2])) for v in shape.values())


def test_each_member_takes_one_shape():
    """The rules overlap (a flat tail is a line too); member_shapes gives each member the first of
    oscillating, saturating, linear it meets, so a group's counts never add up past its members."""
    import numpy as np

    from runner.tasks.extrapolation import SHAPES, member_shapes

    metrics = {"tail_line_residual": np.array([0.001, 0.001, 0.5, 0.001, 0.5, np.nan]),  # < 0.01: linear rule
               "tail_rel_range": np.array([3.0, 0.1, 0.1, 0.1, 2.0, 0.1]),              # < 0.25: saturating rule
               "extrap_turning_points": np.array([0, 0, 0, 4, 1, 0])}                   # >= 2: oscillating rule
    shapes = member_shapes(metrics)
    assert list(shapes[:5]) == ["linear", "saturating", "saturating", "oscillating", "none"]
    assert shapes[5] != shapes[5]  # NaN: a member without a value takes no shape
    rules = [sum(bool(s.holds(metrics[s.metric][k])) for s in SHAPES) for k in range(5)]
    assert rules[1] == 2 and rules[3] == 3  # where the rules overlap, one shape is still chosen
