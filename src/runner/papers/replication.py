"""REPLICATION.md: sweeps of a committed report rerun here (usually under another kernel set,
runner.numerics), member by member against the committed runs, and every claim that reads them
judged on both, with the committed verdict's fragility beside it (scripts/reproduce.py --replicate)."""

from __future__ import annotations

import json
import math
from datetime import datetime, timezone
from pathlib import Path

from runner import numerics
from runner.papers import PAPERS
from runner.papers.base import Paper
from runner.papers.report import check, unfinished
from runner.results import wording
from runner.results.files import write_bytes_atomic
from runner.results.jobs import Job, collect
from runner.results.replication import compare
from runner.results.tables import cell
from runner.sweeps import load_alpha


def kernels_of(sweeps: dict[str, list[Job]]) -> str:
    """The float kernels of these runs, in words (every distinct record)."""
    texts = sorted({numerics.describe(j.record.numerics) for jobs in sweeps.values() for j in jobs
                    if j.record.numerics})
    return "; ".join(texts) or "not recorded"


def write_replication(report_dir: Path, replica_runs: Path, scale: str, plan: dict, names: list[str],
                      papers: list[Paper] = PAPERS) -> tuple[Path, int, int]:
    """REPLICATION.md in `report_dir`, and its verdicts as replication.json (claim -> committed and
    rerun verdict, for runner.papers.sizes): the sweeps `names` of report_dir/runs against their
    reruns in `replica_runs`; returns (its path, verdicts that agree, verdicts compared). A rerun not
    yet whole (fewer of its jobs ended than its multirun.yaml has: report.unfinished) says how far it
    got and is not judged, as in the report."""
    alpha = load_alpha(plan, scale)
    committed = {name: collect([report_dir / "runs" / name]) for name in plan["sweeps"]
                 if (report_dir / "runs" / name).is_dir()}
    rerun, partial = {}, {}  # whole reruns; reruns not yet whole (name -> how far), judged once whole
    for name in names:
        if (replica_runs / name).is_dir():
            jobs = collect([replica_runs / name])
            if why := unfinished(replica_runs / name, jobs):
                partial[name] = why
            else:
                rerun[name] = jobs
    mixed = {**committed, **rerun}
    lines = [f"# Replication: `{report_dir.name}` rerun here", "",
             f"Generated on {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC by `python scripts/reproduce.py "
             f"--replicate {report_dir.as_posix()} --only {','.join(names)}`.", "",
             f"- committed runs: {kernels_of({n: committed.get(n, []) for n in rerun})}",
             f"- rerun here: {kernels_of(rerun)}", "",
             "## Members", "",
             "Jobs matched by their overrides; a member is identical when every final metric has the same bits. "
             "Moved: the median over members of |ln(rerun / committed)| of each final metric.", "",
             "| sweep | jobs | members | identical bits | fates changed | median \\|ln ratio\\| of each final metric |",
             "|---|---|---|---|---|---|"]
    for name in names:
        if name not in rerun:
            lines.append(f"| {name} | " + (f"unfinished: {partial[name]}" if name in partial else "not rerun")
                         + " | | | | |")
            continue
        c = compare(committed.get(name, []), rerun[name])
        moved = ", ".join(f"{m} {wording.number(v)}" for m, v in c.moved.items() if not m.startswith("spectral_norm/"))
        lines.append(f"| {name} | {c.jobs}" + (f" ({c.unmatched} unmatched)" if c.unmatched else "")
                     + f" | {c.members} | {c.identical} | {c.fates_changed} | {cell(moved)} |")
    before = {claim.id: (claim, outcome) for paper in papers for claim, outcome, _ in check(paper, committed, alpha)}
    after = {claim.id: outcome for paper in papers for claim, outcome, _ in check(paper, mixed, alpha)}
    lines += ["", "## Verdicts", "",
              "Every claim that reads a rerun sweep, judged on the committed runs and on the reruns (its other "
              "sweeps, if any, from the committed runs); fragility: the committed verdict's "
              "(runner.results.fragility).", "",
              "| claim | committed | fragility | rerun here | fragility here | agree |", "|---|---|---|---|---|---|"]
    agree = compared = 0
    record = {"kernels": kernels_of(rerun), "sweeps": sorted(rerun), "claims": {}}
    for cid, (claim, outcome) in before.items():
        if not set(claim.sweeps) & set(rerun):
            continue
        here = after[cid]
        same = outcome.verdict == here.verdict
        agree, compared = agree + same, compared + 1
        record["claims"][cid] = {"committed": outcome.verdict, "rerun": here.verdict,
                                 "whole": set(claim.sweeps) <= set(rerun)}
        partly = "" if set(claim.sweeps) <= set(rerun) else " (partly committed runs)"
        lines.append(f"| {cid} | {outcome.verdict} | {wording.fragility(outcome.fragility)} | {here.verdict}{partly} | "
                     f"{wording.fragility(here.fragility)} | {'yes' if same else '**no**'} |")
    moved_robust = [cid for cid, (claim, outcome) in before.items() if set(claim.sweeps) & set(rerun)
                    and after[cid].verdict != outcome.verdict and outcome.fragility is not None
                    and not math.isinf(outcome.fragility) and outcome.fragility > 1]
    if moved_robust:
        lines += ["", f"Moved although their fragility was above 1: {', '.join(moved_robust)} (a finding to explain: "
                  "more outcomes changed than the fragility counts)."]
    lines += ["", f"{agree} of {compared} verdicts agree."]
    path = report_dir / "REPLICATION.md"
    write_bytes_atomic(path, ("\n".join(lines) + "\n").encode())
    write_bytes_atomic(report_dir / "replication.json", (json.dumps(record, indent=1) + "\n").encode())
    return path, agree, compared
