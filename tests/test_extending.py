"""docs/extending.md, run as written: a researcher's own activation (formula, Python function, YAML of
their own), init scheme, task, PDE, sampler and logger, from a directory outside the package, with
no edit to it. Each example's files are written to a temporary directory and each command runs
there, with small sizes added."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import ROOT, run_cli
from runner.results.summary import FINISHED
from runner.theory import activations
from runner.theory.kernels import chi_perp, kernel_flow

DOC = (ROOT / "docs" / "extending.md").read_text()
BLOCKS = re.findall(r"```(\w+)\n(.*?)```", DOC, flags=re.S)
FILES = {m.group(1): body for _, body in BLOCKS if (m := re.match(r"# file: (\S+)\n", body))}
COMMANDS = [line for lang, body in BLOCKS if lang == "bash" for line in body.strip().splitlines()]

# small sizes per command, by what it runs
SMALL = ["trainer=cpu", "trainer.max_epochs=20", "log_every=10", "ensemble.size=2", "threads=1"]
SIZES = {"task=x2": ["task.n_eval=101"], "task=x3": ["task.n_eval=101"], "task=susceptibility": ["task.n_C_W=5"],
         "task=phase_diagram": ["task.n_C_W=3", "task.n_K0=3", "model=mlp_3x64"],
         "task=kernel_init": ["task.n_random_inputs=2", "model=mlp_3x64", "ensemble.size=8"],
         "task=diffusion": ["task.n_collocation=64", "task.n_boundary=16", "task.eval_grid={x: 11, t: 11}"],
         "logger=printing": ["logger.printing.every=10"]}


def write_files(where: Path) -> None:
    for name, body in FILES.items():
        path = where / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(body)


def test_the_document_has_its_examples():
    assert {"mish.py", "orthogonal.py", "sine_task.py", "sobol.py", "print_logger.py",
            "myconf/activation/swish.yaml", "myconf/init/orthogonal.yaml", "myconf/task/sine.yaml",
            "myconf/task/diffusion.yaml", "myconf/task/sampler/sobol.yaml", "myconf/logger/printing.yaml"} <= set(FILES)
    assert len(COMMANDS) == 12 and all(c.startswith("python -m runner") for c in COMMANDS)
    for name, body in FILES.items():  # each example about 15 lines, as the docs promise
        code = [line for line in body.splitlines() if line.strip() and not line.lstrip().startswith("#")]
        assert len(code) <= 22, (name, len(code))


@pytest.mark.parametrize("command", [c for c in COMMANDS if c.startswith("python -m runner ")])
def test_each_documented_run_runs_outside_the_package(tmp_path, command):
    write_files(tmp_path)
    args = shlex.split(command)[3:]
    extra = [o for key, small in SIZES.items() if key in args for o in small]
    res = run_cli(*args, *SMALL, *extra, f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["status"] in FINISHED
    assert summary["criticality"]["universality"] in ("scale-invariant", "K*=0", "half-stable", "none")
    if "task=susceptibility" in args or "task=phase_diagram" in args or "task=kernel_init" in args:
        assert list((tmp_path / "run" / "plots").glob("*.png"))
        return
    forecast = next(line for line in res.stdout.splitlines() if "kernel forecast" in line)
    assert re.search(r": class (scale-invariant|K\*=0|half-stable|none), (critical C_W [\d.]+|no criticality)",
                     forecast), forecast
    init = summary["resolved_init"]
    assert all(isinstance(init[k], float) and init[k] >= 0 for k in ("C_W_first", "C_W", "C_b"))
    if "activation=formula" in args or "activation=python" in args or "activation=swish" in args:
        assert "auto" in forecast and init["C_W"] > 0  # init.C_W=auto solved for the user's function
    if "init=orthogonal" in args:
        assert init["scheme"] == "orthogonal" and init["C_W"] == 1.0
    if "task=sine" in args:
        assert summary["task"] == "sine" and "test_mse" in summary["metrics"]
    if "task=diffusion" in args:
        assert summary["config"]["task"]["sampler"]["_target_"] == "sobol.Sobol" and "rel_l2" in summary["metrics"]
    if "logger=printing" in args:
        assert "x2-relu-s0 epoch 0: loss" in res.stdout and (tmp_path / "run" / "metrics.csv").exists()


def test_the_measured_class_of_a_users_activation(tmp_path):
    write_files(tmp_path)
    command = next(c for c in COMMANDS if c.startswith("python -m runner.theory"))
    res = run_cli(*shlex.split(command)[3:], cwd=tmp_path, module="runner.theory")
    assert res.returncode == 0, res.stderr
    assert re.match(r"swish\(z\*sigmoid\(beta\*z\), beta=1\)\s+class half-stable, critical C_W 1\.988", res.stdout)


def test_the_orthogonal_example_draws_orthogonal_weights(tmp_path, monkeypatch):
    write_files(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    from orthogonal import Orthogonal

    init, _ = Orthogonal(gain=1.0).resolve(None, None, 3, 1, 64)
    w, b = init.draw(64, 32, torch.Generator().manual_seed(0))
    torch.testing.assert_close(w.T @ w * 64 / 1.0, torch.eye(32, dtype=torch.float64) * 64, rtol=0, atol=1e-10)
    w, _ = init.draw(2, 64, torch.Generator().manual_seed(0))  # the first layer: orthonormal rows
    assert (w.pow(2).mean() * 2).item() == pytest.approx(1.0, rel=1e-12) and torch.all(b == 0)


@pytest.mark.parametrize("yaml_text,overrides,needle", [
    ("_target_: runner.theory.activations.Formula\nname: swish\nformula: z*sigmoid(beta*z)\nbeta: 1.0\nbta: 2\n",
     ["activation=mine"], "runner: error: activation.bta is not a parameter of the formula 'z*sigmoid(beta*z)'"),
    ("_target_: runner.theory.activations.Function\nfn: mish.mish\nbogus: 1\n", ["activation=mine"],
     "runner: error: activation: mish(bogus=1) cannot be evaluated on a float64 tensor: TypeError"),
    ("_target_: runner.theory.activations.Formula\nformula: log(1 + z)\n", ["activation=mine"],
     "runner: error: activation: formula(log(1 + z)) is not defined on all of R: σ(-1) = -inf"),
])
def test_a_users_bad_activation_stops_in_one_line(tmp_path, yaml_text, overrides, needle):
    write_files(tmp_path)
    (tmp_path / "myconf" / "activation" / "mine.yaml").write_text(yaml_text)
    res = run_cli("--config-dir", "myconf", *overrides, "trainer=cpu", cwd=tmp_path)
    assert res.returncode == 2 and res.stderr.startswith(needle), res.stderr
    assert len(res.stderr.strip().splitlines()) == 1 and not list(tmp_path.glob("outputs/*/*/checkpoints"))


def test_an_unknown_key_in_a_users_task_stops_in_one_line(tmp_path):
    write_files(tmp_path)
    res = run_cli("--config-dir", "myconf", "task=sine", "+task.kk=3", "trainer=cpu", cwd=tmp_path)
    assert res.returncode == 2
    assert res.stderr.strip() == "runner: error: task.kk is not a known key; did you mean k?"


def test_the_theory_quantity_example(tmp_path, monkeypatch):
    """The doc's input-gradient module, written to a directory of the user's: ReLU's closed form
    G(l) = C_W_first (C_W/2)^(l-1), and for a formula activation the product of χ⊥ along the kernel."""
    write_files(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    from input_gradient import input_gradient_flow

    G = input_gradient_flow(activations.relu(), 0.0, 1.6, 0.8, 6, C_W_first=0.7)
    np.testing.assert_allclose(G, 0.7 * 0.8 ** np.arange(6), rtol=1e-12)  # quadrature: ~2e-14 a layer
    act = activations.Formula("z*tanh(softplus(z))", name="mish")
    G = input_gradient_flow(act, 0.1, 1.5, 0.6, 5)
    K = kernel_flow(act, 0.1, 1.5, 0.6, 5)
    np.testing.assert_allclose(G, 1.5 * np.concatenate([[1.0], np.cumprod(chi_perp(act, K[:-1], 1.5))]), rtol=1e-12)
