"""runner.screen: the theory card against closed forms and against the runner's own tasks, a formula
activation of a user's directory screened end to end at a tiny size, and bad input in one line."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import colored_fraction, run_cli
from runner.config import compose
from runner.run import run
from runner.screen.plan import Screen
from runner.theory import activations
from runner.theory.card import card, smoothness
from wandb_record import offline_runs

SWISH = "_target_: runner.theory.activations.Formula\nname: swish\nformula: z*sigmoid(beta*z)\nbeta: 1.0\nkinks: null\n"
TINY = """defaults:
  - smoke
  - _self_
members: 2
launcher: [hydra/launcher=basic, threads=1]
theory:
  susceptibility: [experiment=kimkang_fig4, task.activations=null, task.n_C_W=12]
  phase_diagram: [experiment=phase_diagram, model=mlp_3x64, ensemble.size=4, task.n_C_W=4, task.n_K0=4]
panel:
  regression:
    overrides: [kimkang=poly_low, init.C_W=auto, task.compile=false, trainer.max_epochs=20, checkpoint_every=20,
                log_every=5, progress_every=20]
  extrapolation:
    overrides: [task=x2, init=critical, trainer.max_epochs=20, checkpoint_every=20, log_every=5, progress_every=20,
                task.n_eval=201]
  pinn:
    overrides: [task=heat, trainer.max_epochs=10, task.n_collocation=32, task.n_boundary=8,
                "task.eval_grid={x: 11, t: 11}", checkpoint_every=10, log_every=5, progress_every=10]
"""


def user_dir(tmp_path):
    conf = tmp_path / "myconf"
    (conf / "activation").mkdir(parents=True)
    (conf / "screen").mkdir()
    (conf / "activation" / "swish.yaml").write_text(SWISH)
    (conf / "screen" / "tiny.yaml").write_text(TINY)
    return conf


@pytest.mark.numerics
@pytest.mark.parametrize("make,universality,critical_C_W,ratio", [
    (activations.tanh, "K*=0", 1.0, 1.0),
    (activations.relu, "scale-invariant", 2.0, 1.0),
    (lambda: activations.repu(p=2), "none", None, 1.5),   # χ∥/χ⊥ = (2p − 1)/p for every K
])
def test_the_card_of_the_closed_forms(make, universality, critical_C_W, ratio):
    c = card(make())
    assert c.universality == universality
    if critical_C_W is None:
        assert c.critical == "none" and c.C_W is None
    else:
        assert c.C_W == pytest.approx(critical_C_W, rel=1e-10) and c.critical == f"critical C_W {critical_C_W:g}"
    assert c.ratio_small_K == pytest.approx(ratio, rel=1e-6)
    if universality != "K*=0":  # tanh's ratio falls from 1 at large K
        assert c.ratio_large_K == pytest.approx(ratio, rel=1e-6)


@pytest.mark.numerics
@pytest.mark.parametrize("make,order,points", [
    (activations.tanh, None, []), (activations.relu, 0, [0.0]), (lambda: activations.repu(p=3), 2, [0.0]),
    (activations.mrepu, 1, [-1.0]), (activations.elu, 1, [0.0]),
])
def test_how_often_it_is_differentiable(make, order, points):
    """RePU_p is C^(p-1) at 0; MRePU_2 is C^1 at its kink -1; ELU's second derivative jumps at 0."""
    s = smoothness(make())
    assert s.order == order and [z for z, _ in s.jumps] == points and s.undeclared == []
    assert smoothness(activations.Formula("max(z, 0.5)")).undeclared == [0.5]  # a kink nobody declared


def test_the_card_of_mrepu_is_what_the_tasks_say(tmp_path):
    """The screen's card reads the susceptibility and phase-diagram tasks' own outputs: the same
    numbers as those tasks run directly."""
    screen = Screen(["activation=mrepu"], "tiny", tmp_path / "screen", user_dir(tmp_path), None)
    theory = screen.theory_runs()
    for name, preset in screen.plan["theory"].items():
        direct = run(compose(*preset, "activation=mrepu", "logger=none"), tmp_path / "direct" / name)
        assert theory[name].metrics == direct["metrics"]
    sus = theory["susceptibility"].metrics
    assert sus["mrepu_p2_shift1/critical_C_W"]["mean"] == card(activations.mrepu()).C_W == 1.0
    assert sus["mrepu_p2_shift1/ratio_at_smallest_K"]["mean"] == pytest.approx(1.0, abs=1e-3)


def test_a_formula_activation_of_a_users_directory_is_screened_end_to_end(tmp_path):
    conf = user_dir(tmp_path)
    out = tmp_path / "out"
    res = run_cli("--config-dir", str(conf), "--scale", "tiny", "activation=swish", "--out", str(out), "--wandb",
                  cwd=tmp_path, module="runner.screen", timeout=900)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-3000:]
    text = (out / "SCREEN.md").read_text()
    assert re.search(r"^\| neural tangent kernel .* \| Θ\(1\) \S+ -> Θ\(10\) ", text, re.M)  # the card's NTK
    record = json.loads((out / "screen.json").read_text())
    assert text.startswith("# Screen of `swish(z*sigmoid(beta*z), beta=1)`: scale `tiny`") and "ran for " in text
    c = record["card"]
    assert c["universality"] == "half-stable" and c["critical"] == "critical C_W 1.988, C_b 0.5551"
    assert c["sigma_0"] == 0.0 and c["derivative_0"] == 0.5 and c["smoothness_order"] is None
    assert record["susceptibility"]["swish_beta1/critical_C_W"] == pytest.approx(c["C_W"])
    assert [n["group"] for n in record["networks"]] == ["regression", "extrapolation", "pinn"]
    assert all(n["forecast"]["auto"] and n["auto"]["C_W"] > 0 for n in record["networks"])
    panel = {(p["group"], p["metric"], p["baseline"]): p["verdict"] for p in record["panel"]}
    assert set(panel) == {(g, m, b) for g, m in (("regression", "train_mse"), ("regression", "deriv_mse"),
                                                 ("pinn", "rel_l2")) for b in ("relu", "gelu", "tanh")}
    assert set(panel.values()) <= {"better", "worse", "cannot tell"}
    assert "cannot tell" in panel.values()  # two pairs per column cannot reach p < 0.05
    assert {(r["activation"], r["target"]) for r in record["shapes"]} == {(a, "x2") for a in
                                                                          ("swish", "relu", "gelu", "tanh")}
    for figure in ("phase_diagram", "ratio_vs_K", "kernel_through_depth", "forest", "improvement"):
        assert f"(figures/{figure}.png)" in text and (out / "figures" / f"{figure}.png").stat().st_size > 1000
    for figure in ("phase_diagram", "ratio_vs_K", "kernel_through_depth"):  # curves and maps, whatever the runs did
        assert colored_fraction(out / "figures" / f"{figure}.png") > 0.002, figure
    (wandb_run,) = offline_runs(out)
    assert wandb_run.job_type == "screen" and wandb_run.summary["card/universality"] == "half-stable"
    assert wandb_run.summary["panel/pinn/rel_l2/vs_relu"] == panel[("pinn", "rel_l2", "relu")]

    # every command SCREEN.md prints runs as printed, from the directory it names
    rerun = text.split("## Rerun")[1].split("```bash\n")[1].split("```")[0].strip().splitlines()
    assert rerun[0] == "python -m runner.screen --scale tiny --config-dir myconf --out out activation=swish"
    assert rerun[1].startswith(rerun[0] + " --report-only")
    before = (out / "screen.json").stat().st_mtime_ns
    for command in reversed(rerun):  # the report first (it only reads), then the whole screen again
        res = subprocess.run(["bash", "-c", command], cwd=tmp_path, capture_output=True, text=True, timeout=900,
                             env={**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
                                  "WANDB_MODE": "offline"})
        assert res.returncode == 0, command + "\n" + res.stderr[-3000:]
        assert f"wrote {out / 'SCREEN.md'}" in res.stdout
    assert (out / "screen.json").stat().st_mtime_ns > before


def test_the_rerun_line_reads_as_typed():
    from runner.screen.plan import shell_word

    typed = ["activation=formula", "activation.formula=z*tanh(softplus(z))", "activation.name=mish"]
    assert " ".join(map(shell_word, typed)) == (
        "activation=formula activation.formula='z*tanh(softplus(z))' activation.name=mish")
    # Hydra's own quotes around an expression go: the runner puts them back
    assert shell_word("activation.formula='z*tanh(softplus(z))'") == "activation.formula='z*tanh(softplus(z))'"
    assert shell_word("task.exact=exp(-t) * sin(pi*x)") == "task.exact='exp(-t) * sin(pi*x)'"
    assert shell_word("activation.name='1e3'") == "\"activation.name='1e3'\""  # a string kept a string
    assert "'\"'\"'" not in " ".join(map(shell_word, typed))


@pytest.mark.parametrize("overrides,needle", [
    (["activation=formula", "activation.formula=log(z)"],
     "runner.screen: error: activation: formula(log(z)) is not finite at 0: σ(0) = -inf"),
    (["activation=formula", "activation.formula=sqrt(z)"],
     "runner.screen: error: activation: formula(sqrt(z)) is not defined on all of R: σ(-0.01) = nan"),
    (["activation=relu"], "runner.screen: error: activation.name='relu' is one of the baselines"),
    (["activation=mrepu", "--scale", "huge"], "runner.screen: error: --scale='huge' is invalid"),
    (["activation=mrepu", "--report-only"], "runner.screen: error: "),  # no runs there to rewrite it from
])
def test_bad_input_stops_in_one_line_before_any_work(tmp_path, overrides, needle):
    res = run_cli(*overrides, "--out", str(tmp_path / "out"), cwd=tmp_path, module="runner.screen")
    assert res.returncode == 2 and res.stderr.startswith(needle), res.stderr
    assert len(res.stderr.strip().splitlines()) == 1 and not (tmp_path / "out").exists()


def test_the_committed_screen_rewrites_from_its_committed_files_alone(tmp_path):
    """reports/screen-swish as a fresh clone has it (the files git tracks, nothing ignored beside
    them): --report-only rewrites SCREEN.md with every table unchanged (the header's date, host and
    directory aside)."""
    root = Path(__file__).resolve().parents[1]
    tracked = subprocess.run(["git", "ls-files", "reports/screen-swish"], cwd=root, capture_output=True, text=True,
                             check=True).stdout.split()
    if not tracked:
        pytest.skip("not a git checkout")
    for name in tracked:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes((root / name).read_bytes())
    command = json.loads((root / "reports/screen-swish/screen.json").read_text())["command"]
    args = shlex.split(command)[3:]  # after `python -m runner.screen`, as a shell reads it
    res = run_cli(*args, "--report-only", cwd=tmp_path, module="runner.screen")
    assert res.returncode == 0, res.stderr[-2000:]

    def tables(path: Path) -> list[str]:
        """The card's and the panel's tables, read from the runs. The test networks' forecasts between
        them are computed anew from the theory, and a kernel at the band's edge can leave it a layer
        earlier or later under another thread count or kernel set, so they are not compared here."""
        text = path.read_text()
        card, _, rest = text.partition("### The test networks")
        panel = rest.partition("## Training panel")[2]
        return [line for line in (card + panel).splitlines() if line.startswith("|")]
    assert tables(tmp_path / "reports/screen-swish/SCREEN.md") == tables(root / "reports/screen-swish/SCREEN.md")
