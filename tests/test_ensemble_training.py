"""K members trained as one ensemble equal K separate runs (Adam, spectral penalty included).

Compared in float64: in float32 the batched and single-member matmul kernels round differently
and Adam amplifies those last-bit differences over many steps, so float32 agreement is only
approximate; in float64 the two paths agree to rounding.
"""

import numpy as np
import pytest

from conftest import make_cfg
from runner.run import run

COMMON = ["task=x3", "activation=tanh", "model=mlp_3x64", "trainer.max_epochs=60", "log_every=20",
          "task.n_train=64", "task.n_eval=201", "seed=5", "trainer.precision=64-true"]


@pytest.mark.parametrize("regularizer", ["none", "spectral_norm"])
def test_ensemble_equals_separate_runs(tmp_path, regularizer):
    together = run(make_cfg(*COMMON, f"regularizer={regularizer}", "ensemble.size=3"), tmp_path / "ens")
    pred_together = np.load(tmp_path / "ens" / "predictions.npz")["y_pred"]
    for k in range(3):
        single = run(make_cfg(*COMMON, f"regularizer={regularizer}", "ensemble.size=1",
                              f"ensemble.member_offset={k}"), tmp_path / f"m{k}")
        pred = np.load(tmp_path / f"m{k}" / "predictions.npz")["y_pred"][0]
        np.testing.assert_allclose(pred_together[k], pred, rtol=1e-6, atol=1e-6 * np.abs(pred).max())
        for name in ("train_mse", "final_train_loss"):
            a = together["metrics"][name]["members"][k]
            b = single["metrics"][name]["members"][0]
            assert a == pytest.approx(b, rel=1e-8), name
    # and the members really differ from each other
    assert not np.allclose(pred_together[0], pred_together[1])
