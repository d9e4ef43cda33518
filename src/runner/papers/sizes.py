"""The claims of reports of several sizes side by side (docs/reproducing.md prints it): each size's
verdict and fragility, whether it held when the size's Table 4/5 sweeps were rerun under a second
kernel set (REPLICATION.md's replication.json), and, for every claim whose verdict differs between
two sizes, the numbers of the test that decided it at each: pairs, dropped pairs, p and effect.

    python scripts/reproduce.py --side-by-side reports/medium,reports/paper
"""

from __future__ import annotations

import json
from pathlib import Path

from runner.results import wording
from runner.results.tables import cell
from runner.results.verdicts import CONTRADICTED, REPRODUCED, SUPPORTS, VERDICTS


def read_claims(report: Path) -> dict[str, dict]:
    """claim id -> its record in the report's claims.json (verdict, fragility, tests)."""
    return {c["id"]: c for c in json.loads((report / "claims.json").read_text())["claims"]}


def read_replication(report: Path) -> dict | None:
    """The report's replication.json (kernels, rerun sweeps, claim -> committed and rerun verdict), if any."""
    path = report / "replication.json"
    return json.loads(path.read_text()) if path.exists() else None


def deciding_test(claim: dict) -> dict | None:
    """The test that decided the claim's verdict: reproduced, its weakest supporting test (the
    largest p); contradicted, its strongest test against (the smallest Holm p against);
    inconclusive, of the tests that did not support it, the one nearest to supporting (the
    smallest p)."""
    tests = claim.get("tests") or []
    if not tests:
        return None
    if claim["verdict"] == REPRODUCED:
        return max(tests, key=lambda t: t["p"])
    if claim["verdict"] == CONTRADICTED:
        return min(tests, key=lambda t: t["p_against_holm"])
    return min([t for t in tests if t["decision"] != SUPPORTS] or tests, key=lambda t: t["p"])


def test_numbers(t: dict) -> str:
    """'x_abs_x: relu < mrepu: 5/8 pairs the paper's way, 2 dropped, p 0.36 (0.64 the other way),
    ln ratio -0.1 [-0.3, 0.2]' from a claims.json test."""
    unit = "members" if t["kind"] == "share" else "pairs"
    text = f"{t['label']}: {t['wins']}/{t['n']} {unit} the paper's way"
    if t.get("dropped"):
        text += f", {t['dropped']} dropped (unconverged)"
    text += f", p {wording.number(t['p'])} ({wording.number(t['p_opposite'])} the other way)"
    if t.get("effect") is not None:
        low, high = t.get("interval") or (None, None)
        text += f", {t.get('effect_name') or 'effect'} {wording.number(t['effect'])}"
        text += f" [{wording.number(low)}, {wording.number(high)}]" if low is not None else ""
    return text


def held(replication: dict | None, cid: str) -> str:
    """Whether the claim's verdict held when its sweeps were rerun under the second kernel set."""
    if replication is None or cid not in replication["claims"]:
        return "not rerun"
    c = replication["claims"][cid]
    return ("yes" if c["committed"] == c["rerun"] else f"**no**: {c['rerun']}") + ("" if c["whole"] else " (partly)")


def side_by_side(reports: list[Path]) -> list[str]:
    """A Markdown table, a claim per row and per report (smallest first) its verdict, fragility and
    whether it held under the second kernel set; then one line per claim whose verdict differs
    between two neighbouring reports (both decided), with each one's deciding test in numbers."""
    names = [r.name for r in reports]
    claims = [read_claims(r) for r in reports]
    replications = [read_replication(r) for r in reports]
    kernels = {r.name: rep["kernels"] for r, rep in zip(reports, replications) if rep}
    head = ["claim", "the paper says"] + [f"{n} {col}" for n in names for col in ("verdict", "fragility", "held")]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for cid, first in claims[0].items():
        row = [cid, cell(first["says"])]
        for found, rep in zip(claims, replications):
            c = found.get(cid)
            if c is None:
                row += ["absent", "", ""]
                continue
            decided = c["verdict"] in VERDICTS
            row += [c["verdict"], wording.fragility(c["fragility"]) if decided else "",
                    held(rep, cid) if decided else ""]
        lines.append("| " + " | ".join(row) + " |")
    lines += ["", "Held: the verdict when the report's Table 4/5 sweeps were rerun under the second kernel set "
              "(" + "; ".join(f"{n}: {k}" for n, k in kernels.items()) + ")." if kernels else
              "Held: no report here has a rerun under a second kernel set yet."]
    moved = []
    for (a, ca), (b, cb) in zip(zip(names, claims), zip(names[1:], claims[1:])):
        for cid, c in ca.items():
            other = cb.get(cid)
            if other is None or c["verdict"] == other["verdict"] or not {c["verdict"], other["verdict"]} <= set(VERDICTS):
                continue
            sides = [f"{n} {x['verdict']}" + (f" on {test_numbers(t)}" if (t := deciding_test(x)) else "")
                     for n, x in ((a, c), (b, other))]
            moved.append(f"- **{cid}**: {sides[0]}; {sides[1]}.")
    if moved:
        lines += ["", "Verdicts that differ between the sizes, each with the test that decided it:", "", *moved]
    return lines
