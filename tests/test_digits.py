"""task=digits: the vision stand-in trains to high accuracy and keeps the run contract."""

import pytest

from conftest import colored_fraction, make_cfg
from runner.checks import ConfigError
from runner.run import build, run


def test_relu_mlp_learns_digits(tmp_path):
    cfg = make_cfg("task=digits", "activation=relu", "model=mlp_3x64", "trainer.max_epochs=150",
                   "ensemble.size=2", "logger=none")
    summary = run(cfg, tmp_path)
    assert summary["status"] == "completed"
    metrics = summary["metrics"]
    # 64-pixel digits are easy: a small MLP reaches > 93 % test accuracy (3x64, 300 epochs: 97.6 %)
    assert metrics["test_acc"]["min"] > 0.93
    assert metrics["train_acc"]["min"] >= metrics["test_acc"]["min"]
    assert colored_fraction(tmp_path / "plots" / "confusion.png") > 0.03  # the diagonal: 10 of 100 cells, measured 0.05


def test_split_is_checked():
    with pytest.raises(ConfigError, match="test_fraction"):
        build(make_cfg("task=digits", "task.test_fraction=1.5")).task
