"""Blown-up members are a status (runner.results.summary.member_status), and the card's own command
(`python -m runner activation=mrepu task=burgers`) trains at the defaults and says so."""

import json
import math

import pytest

from conftest import run_cli
from factories import record, write_run
from runner.results.jobs import collect
from runner.results.summary import FINISHED, member_status, run_status

NAN, INF = math.nan, math.inf


@pytest.mark.parametrize("final,initial,zero,want", [
    (0.1, 1.0, 0.5, "ok"),                 # trained
    (0.49, 1.0, 0.5, "ok"),                # barely better than predicting zero
    (0.5, 1.0, 0.5, "no_better_than_zero"),    # exactly the zero function's loss
    (400.0, 1.0, 0.5, "no_better_than_zero"),  # within 1000 x min(initial, zero), but above zero's loss
    (15.7, 3.0, 0.49, "no_better_than_zero"),  # a Burgers member of the card command: 15.7 against 0.49
    (600.0, 1.0, 0.5, "blown_up"),         # 1200 x the zero-function loss: blown up comes first
    (3.6e33, 3.6e33, 0.25, "blown_up"),    # exploded at init and never moved: still blown up
    (999.0, 1.0, NAN, "ok"),               # no zero-output reference: the initial loss alone
    (1001.0, 1.0, NAN, "blown_up"),
    (NAN, 1.0, 0.5, "diverged"),
    (INF, 1.0, 0.5, "diverged"),
    (5.0, NAN, NAN, "ok"),                 # no reference at all: only non-finite counts
])
def test_member_status_classifies_hand_made_histories(final, initial, zero, want):
    assert member_status([final], [initial], [zero], blowup_factor=1e3) == [want]


def test_run_status_from_members():
    assert run_status(["ok", "ok"]) == "completed"
    assert run_status(["ok", "blown_up"]) == "partly_diverged"
    assert run_status(["diverged", "blown_up"]) == "diverged"
    # members that finished finite but no better than zero did not diverge: a word of their own
    assert run_status(["ok", "no_better_than_zero"]) == "partly_learned"
    assert run_status(["no_better_than_zero"] * 2) == "not_learned"
    assert run_status(["no_better_than_zero", "diverged"]) == "partly_diverged"
    assert run_status(["blown_up", "diverged"]) == "diverged"


@pytest.mark.parametrize("written,fates,read", [
    ("diverged", ["no_better_than_zero"] * 6, "not_learned"),               # a summary of the old rule
    ("partly_diverged", ["ok", "ok", "no_better_than_zero", "no_better_than_zero"], "partly_learned"),
    ("partly_diverged", ["ok", "blown_up"], "partly_diverged"),
    ("completed", ["ok", "ok"], "completed"),
    ("failed", None, "failed"),
    ("interrupted", None, "interrupted"),
])
def test_summaries_on_disk_read_by_todays_rule(tmp_path, written, fates, read):
    rec = record({"final_train_loss": [1.0] * len(fates or [])}, status=written, fates=fates)
    assert rec.current_status() == read
    write_run(tmp_path / "0", rec)
    (job,) = collect([tmp_path])
    assert job.status == read and job.status in (*FINISHED, "failed", "interrupted")
    # which members count does not move with the word
    assert job.members("final_train_loss") == [1.0 if f == "ok" else None for f in fates or []]


def test_a_member_that_learns_nothing_is_no_better_than_zero(tmp_path):
    """A real run whose learning rate is too small to move: every member ends where it started,
    and a member whose initial loss was above the zero function's has that fate; the console says
    how many converged (the flat loss has stopped improving, so it counts as converged)."""
    res = run_cli("task=x2", "ensemble.size=4", "optimizer.lr=1e-12", "trainer.max_epochs=6", "log_every=1",
                  "task.n_eval=51", "threads=1", f"hydra.run.dir={tmp_path}", cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-2000:]
    s = json.loads((tmp_path / "summary.json").read_text())
    final, zero = s["metrics"]["final_train_loss"]["members"], s["metrics"]["zero_output_loss"]["members"]
    assert s["member_status"] == ["no_better_than_zero" if f >= z else "ok" for f, z in zip(final, zero)]
    assert "no_better_than_zero" in s["member_status"], (final, zero)
    assert s["status"] != "completed"
    assert s["member_converged"] == [True] * 4 and len(s["loss_history"]["epochs"]) == 6
    out = res.stdout + res.stderr
    assert "no_better_than_zero" in out and "4/4 converged" in out


CARD = ["activation=mrepu", "task=burgers", "task.n_collocation=400", "task.eval_grid={x: 64, t: [0.0, 0.99, 20]}",
        "trainer.max_epochs=60", "ensemble.size=2", "log_every=10", "logger=csv"]


def test_the_cards_command_trains_at_the_defaults(tmp_path):
    res = run_cli(*CARD, f"hydra.run.dir={tmp_path}", cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-2000:]
    out = res.stdout + res.stderr
    assert "kernel forecast (mrepu" in out and ": stable (band x10)" in out and ", auto)" in out
    s = json.loads((tmp_path / "summary.json").read_text())
    assert s["status"] == "completed" and s["member_status"] == ["ok", "ok"]
    assert s["init_forecast"]["verdict"] == "stable" and s["init_forecast"]["auto"] is True
    assert s["init"]["C_W"] == "auto"  # the config as written; the numbers are the resolved init
    assert all(isinstance(s["resolved_init"][k], float) for k in ("C_W_first", "C_W", "C_b"))
    m = s["metrics"]
    assert all(f < i for f, i in zip(m["final_train_loss"]["members"], m["initial_train_loss"]["members"]))


def test_a_hand_set_exploding_C_W_is_flagged_before_and_after(tmp_path):
    res = run_cli(*CARD, "init.C_W=1.0", "trainer.max_epochs=5", f"hydra.run.dir={tmp_path}", cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-2000:]
    out = res.stdout + res.stderr
    assert "explodes at layer" in out and "set init.C_W=auto" in out
    s = json.loads((tmp_path / "summary.json").read_text())
    assert s["init_forecast"]["verdict"] == "explodes"
    assert s["status"] != "completed" and "ok" not in s["member_status"], s["member_status"]
    assert "members:" in out  # the console summary names the members' fates
