"""benchmarks/bench_regression.py: the FLOP count behind `peak_fraction` against torch's own FLOP
counter on a real training step (exact: both count matmul multiply-adds as 2 FLOPs)."""

import pytest
from torch.utils.flop_counter import FlopCounterMode

from runner.config import compose
from runner.run import build
from benchmarks.bench_regression import layer_dims, step_flops


@pytest.mark.parametrize("tile", ["null", "100"])
@pytest.mark.parametrize("target,n_points", [("poly2d_a", 21), ("poly_low", 101)])
def test_step_flops_equal_torch_flop_counter(target, n_points, tile):
    cfg = compose("experiment=kimkang_table4", f"kimkang={target}", "ensemble.size=3", f"task.n_points={n_points}",
                  "task.compile=false", f"task.tile={tile}")
    exp = build(cfg)
    task, model = exp.task, exp.build_model()
    with FlopCounterMode(display=False) as counter:
        task.loss(model, task.train_batch()).sum().backward()
    assert counter.get_total_flops() == step_flops(layer_dims(cfg, task), len(task.x_train), 3)
