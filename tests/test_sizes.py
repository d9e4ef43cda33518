"""Claims of two report sizes side by side (runner.papers.sizes): verdicts, fragility, whether a
verdict held under the second kernel set, and the deciding test's numbers where the sizes differ."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from runner.papers.sizes import deciding_test, side_by_side

ROOT = Path(__file__).resolve().parents[1]


def sign_test(label: str, wins: int, n: int, p: float, p_opposite: float, decision: str, dropped: int = 0) -> dict:
    return {"label": label, "kind": "sign", "n": n, "wins": wins, "losses": n - wins, "dropped": dropped,
            "p": p, "p_opposite": p_opposite, "p_against_holm": p_opposite, "decision": decision,
            "effect_name": "median ln(a/b)", "effect": -0.5, "interval": [-0.9, -0.1]}


def write_report(root: Path, name: str, claims: list[dict], replication: dict | None = None) -> Path:
    report = root / name
    report.mkdir(parents=True)
    (report / "claims.json").write_text(json.dumps({"alpha": 0.05, "claims": claims}))
    if replication:
        (report / "replication.json").write_text(json.dumps(replication))
    return report


def test_the_sizes_side_by_side_with_the_deciding_numbers_where_they_differ(tmp_path):
    weak = sign_test("a < b", 6, 8, 0.145, 0.965, "undecided", dropped=2)
    strong = sign_test("a < b", 22, 25, 2e-5, 1.0, "supports")
    other = sign_test("c < d", 25, 25, 3e-8, 1.0, "supports")
    small = write_report(tmp_path, "medium", [
        {"id": "X1", "says": "a beats b", "verdict": "inconclusive", "fragility": 2, "tests": [weak, other]},
        {"id": "X2", "says": "c beats d", "verdict": "reproduced", "fragility": 3, "tests": [other]},
        {"id": "X3", "says": "a PINN", "verdict": "inconclusive", "fragility": None, "tests": []}])
    large = write_report(tmp_path, "paper", [
        {"id": "X1", "says": "a beats b", "verdict": "reproduced", "fragility": 7, "tests": [strong, other]},
        {"id": "X2", "says": "c beats d", "verdict": "reproduced", "fragility": 9, "tests": [other]},
        {"id": "X3", "says": "a PINN", "verdict": "not run", "fragility": None, "tests": []}],
        {"kernels": "AVX2 kernels", "sweeps": ["t"], "claims": {
            "X1": {"committed": "reproduced", "rerun": "reproduced", "whole": True},
            "X2": {"committed": "reproduced", "rerun": "inconclusive", "whole": False}}})
    lines = side_by_side([small, large])
    rows = {cells[0]: cells for line in lines if line.startswith("| X")
            for cells in [[c.strip() for c in line.strip("|").split("|")]]}
    assert rows["X1"][2:] == ["inconclusive", "2", "not rerun", "reproduced", "7", "yes"]
    assert rows["X2"][-1] == "**no**: inconclusive (partly)"
    assert rows["X3"][2:] == ["inconclusive", "–", "not rerun", "not run", "", ""]  # not run: nothing to hold
    assert "(paper: AVX2 kernels)" in "\n".join(lines)
    moved = [line for line in lines if line.startswith("- **")]
    assert moved == ["- **X1**: medium inconclusive on a < b: 6/8 pairs the paper's way, 2 dropped (unconverged), "
                     "p 0.145 (0.965 the other way), median ln(a/b) -0.5 [-0.9, -0.1]; paper reproduced on a < b: "
                     "22/25 pairs the paper's way, p 2e-05 (1 the other way), median ln(a/b) -0.5 [-0.9, -0.1]."]


def test_the_deciding_test_of_each_verdict():
    weakest, strongest = sign_test("w", 6, 8, 0.04, 1.0, "supports"), sign_test("s", 8, 8, 0.004, 1.0, "supports")
    assert deciding_test({"verdict": "reproduced", "tests": [strongest, weakest]}) is weakest
    against = sign_test("x", 0, 8, 1.0, 0.004, "against")
    assert deciding_test({"verdict": "contradicted", "tests": [weakest, against]}) is against
    near, far = sign_test("n", 6, 8, 0.1, 0.9, "undecided"), sign_test("f", 4, 8, 0.6, 0.6, "undecided")
    assert deciding_test({"verdict": "inconclusive", "tests": [strongest, far, near]}) is near


def test_the_committed_reports_side_by_side_from_the_command_line():
    res = subprocess.run([sys.executable, "scripts/reproduce.py", "--side-by-side", "reports/smoke,reports/medium"],
                         cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    claims = json.loads((ROOT / "reports" / "medium" / "claims.json").read_text())["claims"]
    assert sum(line.startswith("| ") for line in res.stdout.splitlines()) == len(claims) + 1
    assert "| B12a |" in res.stdout and "**no**: contradicted" in res.stdout  # moved under AVX2 (REPLICATION.md)
    res = subprocess.run([sys.executable, "scripts/reproduce.py", "--side-by-side", "reports/smoke,reports/nowhere"],
                         cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert res.returncode == 2 and res.stderr.count("\n") == 1 and "reports/nowhere/claims.json" in res.stderr


def test_the_docs_copy_is_the_commands_output_for_the_committed_reports():
    """docs/reproducing.md shows the sizes side by side; it must be what the command prints for the
    reports committed beside it (refresh it with the command when a report changes)."""
    doc = (ROOT / "docs" / "reproducing.md").read_text()
    reports, copy = doc.split("<!-- side-by-side: ")[1].split(" -->\n", 1)
    copy = copy.split("<!-- /side-by-side -->")[0]
    assert copy.strip() == "\n".join(side_by_side([ROOT / r for r in reports.split(",")])).strip()
