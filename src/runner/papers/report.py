"""reports/<scale>/REPORT.md: every paper's claims checked on the sweeps of a plan, a first screen a
scientist reads in two minutes (the verdicts and what decided each, a forest plot and a
probability-of-improvement panel of the tests), a section per claim, the papers' own sections,
the sweeps and their failed jobs, and the figures (scripts/reproduce.py writes it).

What each part shows comes from the papers' modules (runner.papers.PAPERS: claims, sweep views,
sections) and the plan (conf/reproduce/<scale>.yaml: sweeps, their commands, alpha); nothing
here names a paper, a sweep or a task.
"""

from __future__ import annotations

import json
import math
import platform
import shutil
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import yaml

from runner import numerics

from runner.aggregate import aggregate
from runner.config import command_jobs
from runner.papers import PAPERS
from runner.papers.base import DEFAULT_VIEW, Checked, Paper, SweepView
from runner.results.claims import Claim, Outcome, evaluate
from runner.results.files import write_bytes_atomic, write_csv
from runner.results.jobs import Job, collect
from runner.results.plots import forest_rows, improvement_rows, plot_forest, plot_improvement
from runner.results.record import NOT_ENDED
from runner.results.summary import COMPLETED, FINISHED
from runner.results.tables import cell, evidence, problems, test_table
from runner.results import fragility, wording
from runner.results.fragility import FRAGILE, is_fragile
from runner.results.verdicts import (AGAINST, ERROR, NOT_RUN, SUPPORTS, UNDECIDED, VERDICTS, Decision, Kind,
                                     decisions)
from runner.sweeps import duration, launcher_workers, load_alpha, read_estimates, read_walls


def views(papers: list[Paper]) -> dict[str, SweepView]:
    """Every sweep view the papers give, by sweep name."""
    return {name: view for paper in papers for name, view in paper.views.items()}


def metric_of(view: SweepView, job: Job) -> str:
    """The view's metric, else the job's first metric."""
    return view.metric or next(iter(job.record.metric_names()), "final_train_loss")


def figures(name: str, jobs: list[Job], view: SweepView, runs: Path, fig_dir: Path) -> list[Path]:
    """Aggregate one sweep of several jobs (tables and comparison plots) and copy its figures
    beside the report; a sweep of one job shows that job's plots too. A figure whose source is not
    here (a run's plots are not committed, so a fresh clone lacks them) stays as it was committed,
    and the figures come in the order of their names, so that every machine lists them alike."""
    sweep = runs / name
    if not jobs:
        return []
    try:
        if len(jobs) > 1:
            arguments = view.aggregate or {"metric": metric_of(view, jobs[0]), "by": ["activation"]}
            aggregate([sweep], **arguments)
    except (FileNotFoundError, KeyError, ValueError):
        pass  # a sweep without a finished job has nothing to draw; the report lists it
    sources = sorted(sweep.glob("plots/*.png")) + sorted(sweep.glob("*.png"))
    if len(jobs) == 1 or not sources:
        sources += sorted(jobs[0].path.glob("plots/*.png"))
    named = {f"{name}-{src.name}": src for src in sources}
    committed = sorted(fig_dir.glob(f"{name}-*.png"))
    if view.per_job_plot:
        named = {f"{name}_{j.value('activation')}.png": j.path / "plots" / view.per_job_plot
                 for j in jobs if (j.path / "plots" / view.per_job_plot).exists()}
        committed = [fig_dir / f"{name}_{j.value('activation')}.png" for j in jobs]
    copied = []
    for dest_name, src in named.items():
        dest = fig_dir / dest_name
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dest)
        copied.append(dest)
    return sorted({*copied, *(path for path in committed if path.exists())}, key=lambda path: path.name)


def provenance(plan: dict, ran: dict, wall: float, runs: Path) -> str:
    """Which sweeps this invocation ran: all, some (the rest are earlier runs), or none. A run of
    every sweep leaves runs/wall.json, so a report regenerated later still states its wall time."""
    record = runs / "wall.json"
    if not ran:
        if record.exists():
            last = json.loads(record.read_text())
            return (f"; report regenerated from the runs of {last['finished']}, whose sweeps ran for "
                    f"{duration(last['seconds'])}")
        return "; report regenerated from existing runs"
    if set(ran) == set(plan["sweeps"]):
        finished = f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC"
        write_bytes_atomic(record, json.dumps({"finished": finished, "seconds": round(wall)}).encode())
        return f"; sweeps ran for {duration(wall)}"
    return f"; {', '.join(ran)} re-ran for {duration(wall)}, the other sweeps' runs are earlier ones"


def unfinished(sweep: Path, jobs: list[Job]) -> str | None:
    """Why a sweep cannot be judged yet, e.g. '40 of 120 jobs finished': fewer of its jobs ended
    (completed, failed or any finished status) than the command it recorded at its start
    (multirun.yaml, committed with its runs) has. A sweep stopped part-way and resumed later
    (skip_completed) is judged only once it is whole, so that no verdict rests on a subset of the
    pairs the plan asks for. A sweep without the record (made by hand) is taken as it is."""
    record = sweep / "multirun.yaml"
    if not record.exists():
        return None
    expected = len(command_jobs(yaml.safe_load(record.read_text())["hydra"]["overrides"]["task"], multirun=True))
    ended = sum(j.status not in NOT_ENDED for j in jobs)
    return f"{ended} of {expected} jobs finished" if ended < expected else None


def check(paper: Paper, sweeps: dict[str, list[Job]], alpha: float) -> Checked:
    """The paper's claims with their outcomes and the jobs they read."""
    return [(claim, *evaluate(claim, sweeps, alpha)) for claim in paper.claims]


def claim_section(claim: Claim, outcome: Outcome, decided: list[Decision], alpha: float) -> list[str]:
    """A claim's section: its verdict, fragility and why, each test in a row of a small table, the
    rule, and the measured numbers folded away."""
    fragile = (f" · fragility {wording.fragility(outcome.fragility)}" if outcome.verdict in VERDICTS else "")
    lines = [f'<a id="{claim.id.lower()}"></a>', "", f"### {claim.id} · {claim.says}", "",
             f"*{claim.paper}* · **{outcome.verdict}**{fragile}" + (f": {outcome.why}" if outcome.why else ""), ""]
    if decided:
        table = test_table(decided, alpha)
        if len(decided) > 8:
            tally = ", ".join(f"{sum(d.decision == k for d in decided)} {k}" for k in (SUPPORTS, AGAINST, UNDECIDED))
            table = [f"<details><summary>{len(decided)} tests: {tally}</summary>", "", *table, "", "</details>"]
        lines += [*table, ""]
    return lines + [f"Rule: {claim.rule}.", "", "<details><summary>measured</summary>", "",
                    cell(outcome.measured), "", "</details>", ""]


def test_record(d: Decision, test_fragility: float) -> dict:
    """One test of claims.json: its kind, counts, p both ways, decision and fragility (the counts
    of a share test: members meeting the rule as wins, the others as losses)."""
    t = d.test
    out = {"label": t.label, "kind": t.kind.value, "n": t.n, "wins": t.wins, "losses": t.losses, "dropped": t.dropped,
           "threshold": t.threshold, "p": t.p, "p_opposite": t.p_opposite, "p_against_holm": d.p_against,
           "decision": d.decision, "fragility": None if math.isinf(test_fragility) else int(test_fragility)}
    if t.effect is not None:  # ln(a/b), below 0 the paper's direction, with its 95% bootstrap interval
        out.update(effect_name=t.effect_name, effect=t.effect, interval=list(t.interval) if t.interval else None)
    if t.kind == Kind.MANN_WHITNEY:
        out.update(n_a=t.n_a, n_b=t.n_b)
    if t.parts:  # a union: every part with its own counts (its p alone, before Bonferroni)
        out["parts"] = [{"label": part.label, "kind": part.kind.value, "n": part.n, "wins": part.wins,
                         "losses": part.losses, "dropped": part.dropped, "p": part.p, "p_opposite": part.p_opposite}
                        for part in t.parts]
    return out


def claims_record(claims: list, alpha: float) -> dict:
    """claims.json: every claim's verdict and fragility, and every test's counts, so that anyone
    can recompute both (docs/reproducing.md)."""
    return {"alpha": alpha, "fragile_at_most": FRAGILE, "claims": [
        {"id": claim.id, "paper": claim.paper, "says": claim.says, "verdict": outcome.verdict,
         "fragility": None if outcome.fragility is None or math.isinf(outcome.fragility) else int(outcome.fragility),
         "why": outcome.why,
         "tests": [test_record(d, fragility.of_test(decided, i, alpha)) for i, d in enumerate(decided)]}
        for _, claim, outcome, decided in claims]}


def numerics_lines(sweeps: dict[str, list[Job]]) -> list[str]:
    """What produced the runs' numbers (runner.numerics): one line when every sweep says the same,
    else one per sweep."""
    texts = {name: "; ".join(sorted({numerics.describe(j.record.numerics) for j in jobs
                                     if j.record.numerics})) or "not recorded (runs made before the record)"
             for name, jobs in sweeps.items()}
    if len(set(texts.values())) == 1:
        return [f"Float kernels: {next(iter(texts.values()))}."]
    return ["Float kernels, per sweep (they differ, so members of different sweeps are not bit-comparable):", "",
            *[f"- {name}: {text}" for name, text in texts.items()]]


def timing_lines(plan: dict, runs: Path, partial: dict[str, str], estimates: dict) -> list[str]:
    """Each sweep's estimate (`estimates`: runs/estimates.json as `read_estimates` gives it for the
    plan) beside the wall time it took (runs/walls.json, written as each sweep ends), and their
    ratio; a sweep not yet whole (`partial`) says how far it got."""
    walls = read_walls(runs)
    if not walls and not estimates["sweeps"] and not estimates["stale"]:
        return []
    planned = launcher_workers(plan["launcher"]) if "launcher" in plan else None
    lines = ["| sweep | estimate | actual wall | actual / estimate |", "|---|---|---|---|"]
    for name in plan["sweeps"]:
        est = estimates["sweeps"].get(name)
        wall, workers = (walls.get(name) or {}).get("seconds"), (walls.get(name) or {}).get("workers")
        ratio = f"{wall / est:.2f}" if est and wall else "-"
        actual = (f"unfinished: {partial[name]}" if name in partial else "not run" if not wall else duration(wall)
                  + (f" on {workers} worker{'s' * (workers > 1)}, not the estimate's {planned}"
                     if workers and workers != planned else ""))
        if est:
            estimated = duration(est)
        else:
            estimated = "- (probed with other overrides)" if name in estimates["stale"] else "-"
        lines.append(f"| {name} | {estimated} | {actual} | {ratio if name not in partial else '-'} |")
    dates = sorted({estimates["probed_at"][name] for name in estimates["sweeps"] if name in estimates["probed_at"]})
    probed = f" (probed {' and '.join(dates)})" if dates else ""
    return ["<details><summary>each sweep's estimate and actual time</summary>", "",
            f"Estimates: `reproduce.py --estimate`{probed}; actual: the sweep's wall time, jobs side by side.", "",
            *lines, "", "</details>"]


def headline(claims: list, papers_only: list, alpha: float) -> str:
    """'**9 reproduced (2 fragile), 3 contradicted, 13 inconclusive (1 fragile)** of the papers' 25
    claims at α = 0.05', with errors and claims not run at this size when there are any."""
    parts = []
    for v in VERDICTS:
        outcomes = [o for o in papers_only if o.verdict == v]
        fragile = sum(is_fragile(o.fragility) for o in outcomes)
        parts.append(f"{len(outcomes)} {v}" + (f" ({fragile} fragile)" if fragile else ""))
    for state in (NOT_RUN, ERROR):
        if count := sum(o.verdict == state for o in papers_only):
            parts.append(f"{count} {state}")
    beyond = [f"{claim.id} {outcome.verdict}" for paper, claim, outcome, _ in claims if paper.beyond_papers]
    return (f"**{', '.join(parts)}** of the papers' {len(papers_only)} claims at α = {alpha:g}"
            + (f"; beyond the papers: {', '.join(beyond)}" if beyond else ""))


SCALES = ("smoke", "medium", "paper")  # smallest first


def smaller_report(out: Path, scale: str) -> tuple[str, dict] | None:
    """(its scale, its claims by id) of the committed report one scale below, beside `out`."""
    below = SCALES[:SCALES.index(scale)] if scale in SCALES else ()
    for name in reversed(below):
        path = out.parent / name / "claims.json"
        if path.exists():
            return name, {c["id"]: c for c in json.loads(path.read_text())["claims"]}
    return None


def not_run(claim: Claim, scale: str, runs: Path, smaller: tuple[str, dict] | None,
            partial: dict[str, str], estimates: dict[str, float]) -> str:
    """A claim whose sweeps did not run, or did not finish (`partial`: sweep -> how far it got):
    their estimate here (`estimates`: sweep -> probed seconds), the command that runs (or resumes)
    them on a SLURM cluster, and the verdict of the report one scale below, marked as such."""
    missing = [s for s in claim.sweeps if not (runs / s).is_dir() or s in partial]
    seconds = [estimates.get(s) for s in missing]
    here = (f"about {duration(sum(seconds))} here by `--estimate`" if all(seconds)
            else "no estimate here (`reproduce.py --estimate` times it)")
    states = [f"{s} did not run" if s not in partial else f"{s} is unfinished ({partial[s]})" for s in missing]
    text = (f"sweep {', '.join(states)}: {here}; on a cluster: `python scripts/reproduce.py "
            f"--scale {scale} --only {','.join(missing)} --launcher hydra/launcher=slurm`"
            + (" (skip_completed keeps the finished jobs)" if partial.keys() & set(missing) else ""))
    if smaller and claim.id in smaller[1]:
        c = smaller[1][claim.id]
        fragility_text = "–" if c.get("fragility") is None else c["fragility"]
        text += f"; the {smaller[0]} report (not this size) says {c['verdict']}, fragility {fragility_text}"
    return text


@dataclass(frozen=True)
class Written:
    """What write_report wrote, and the claims whose check raised (reproduce.py exits non-zero)."""

    path: Path
    errors: list[str]


def write_report(out: Path, scale: str, plan: dict, ran: dict, wall: float, papers: list[Paper] = PAPERS) -> Written:
    """REPORT.md, claims.json, its figures and timings.json (each sweep's mean job seconds) in
    `out`, from the runs in out/runs (`ran`: the sweeps this invocation ran, `wall`: for how long).

    First screen: one row per claim (what the paper says, the verdict, its fragility, the evidence
    that decided it), then the forest plot and the probability-of-improvement panel of every
    paired test; then a section per claim, the papers' own sections, the rules, the sweeps, failed
    jobs and figures."""
    runs, fig_dir = out / "runs", out / "figures"
    alpha = load_alpha(plan, scale)
    found = {name: collect([runs / name]) for name in plan["sweeps"] if (runs / name).is_dir()}
    partial = {name: why for name, jobs in found.items() if (why := unfinished(runs / name, jobs))}
    sweeps = {name: jobs for name, jobs in found.items() if name not in partial}
    checked = {id(paper): check(paper, sweeps, alpha) for paper in papers}
    claims = [(paper, claim, outcome, decisions(list(outcome.tests), alpha))
              for paper in papers for claim, outcome, _ in checked[id(paper)]]
    counted = [outcome for paper, _, outcome, _ in claims if not paper.beyond_papers]
    groups = [(claim.id, decided) for _, claim, _, decided in claims]
    forest, improvement = forest_rows(groups), improvement_rows(groups)
    drawn = []
    if plot_forest(forest, fig_dir / "forest.png"):
        write_csv(fig_dir / "forest.csv", forest)
        drawn.append(("forest", "every paired test: effect and 95% interval, left of 0 is the paper's direction"))
    if plot_improvement(improvement, fig_dir / "improvement.png"):
        write_csv(fig_dir / "improvement.csv", improvement)
        drawn.append(("improvement", "P(the paper's side beats its paired member), 95% interval"))
    write_bytes_atomic(out / "claims.json", (json.dumps(claims_record(claims, alpha), indent=1) + "\n").encode())
    lines = [f"# Reproduction report: scale `{scale}`", "",
             f"Generated by `python scripts/reproduce.py --scale {scale}` on "
             f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC; {platform.node()}, {platform.machine()}, "
             f"{numerics.cpu_model()}" + provenance(plan, ran, wall, runs) + ".",
             "", *numerics_lines(sweeps), "",
             headline(claims, counted, alpha) + ". A claim is reproduced when "
             "every test of it is significant in the paper's direction, contradicted when one is significant the "
             "other way (Holm), else inconclusive; each claim's section has its tests, the rules follow. "
             "Fragility: the fewest single outcomes (a pair's win, loss or drop; a member meeting a rule or not) "
             f"whose change would change the verdict, Holm recomputed; at most {FRAGILE} is fragile, and a change "
             "of float kernels can move it (docs/reproducing.md). Every count is in [claims.json](claims.json).",
             "", "| claim | the paper says | verdict | fragility | deciding evidence |", "|---|---|---|---|---|"]
    smaller, estimates = smaller_report(out, scale), read_estimates(runs, plan["sweeps"])
    probed = estimates["sweeps"]
    lines += [f"| [{claim.id}](#{claim.id.lower()}) | {cell(claim.says)} | **{outcome.verdict}** | "
              f"{wording.fragility(outcome.fragility) if outcome.verdict in VERDICTS else ''} | "
              f"{cell(not_run(claim, scale, runs, smaller, partial, probed) if outcome.verdict == NOT_RUN else evidence(outcome, decided, alpha))} |"
              for _, claim, outcome, decided in claims]
    for name, caption in drawn:
        lines += ["", f"![{caption}](figures/{name}.png)", f"*{caption}* ([numbers](figures/{name}.csv))"]
    lines += ["", *timing_lines(plan, runs, partial, estimates)]
    lines += ["", "## Claims", ""]
    for _, claim, outcome, decided in claims:
        lines += claim_section(claim, outcome, decided, alpha)
    for paper in papers:
        if paper.section is not None:
            lines += ["", *paper.section(sweeps, checked[id(paper)], alpha)]
    lines += ["", "## Rules", "",
              "Every verdict is computed from the runs below (claims: runner/papers/, statistics: "
              "runner/results/verdicts.py; docs/reproducing.md): `reproduced` when every test of the claim is "
              "significant in the paper's direction, `contradicted` when one is significant the other way "
              "(Holm across the claim's tests), else `inconclusive` with the reason. A seed is member k of each "
              "activation's ensemble, which share initial-weight streams; a pair with an unconverged member "
              "(its best training loss over the last 20% of logged epochs still 5% or more below the best "
              "before, by default) is dropped, unless the other member failed, which decides it, or the pair is "
              "settled: the gap between the two values, |ln(a/b)|, is larger than either member's loss still "
              "fell over that last 20% (-ln(1 - improvement)).", ""]
    lines += [f"- **{c.id}** ({', '.join(c.sweeps)}): {c.rule}." for paper in papers for c in paper.claims]
    shown = views(papers)
    timings = {}
    lines += ["", "## Sweeps", "", "| sweep | command | jobs | completed | not every member ok | failed, interrupted "
              "or missing | members converged | time |", "|---|---|---|---|---|---|---|---|"]
    issues = []
    for name in plan["sweeps"]:
        spec, jobs = plan["sweeps"][name], found.get(name, [])
        view = shown.get(name, DEFAULT_VIEW)
        done = sum(j.status == COMPLETED for j in jobs)
        not_ok = sum(j.status in FINISHED and j.status != COMPLETED for j in jobs)
        converged = [c for j in jobs if j.status in FINISHED for c in j.record.member_converged or []]
        seconds = sum(j.record.duration_s or 0 for j in jobs)
        cmd = " ".join([f"experiment={spec['experiment']}", *spec["overrides"]])
        lines.append(f"| {name} | `{cell(cmd)}` | {len(jobs)} | {done} | {not_ok} | {len(jobs) - done - not_ok} | "
                     f"{f'{sum(converged)}/{len(converged)}' if converged else '-'} | "
                     f"{duration(seconds) if jobs else 'not run'}"
                     f"{f', unfinished: {partial[name]}' if name in partial else ''} |")
        timed = [j.record.duration_s for j in jobs if j.record.duration_s]
        if timed:
            timings[name] = round(sum(timed) / len(timed), 2)
        if jobs:
            issues += [f"{name}: {line.replace(str(runs) + '/', '')}"
                       for line in problems(jobs, metric_of(view, jobs[0]), list(view.labels))]
    lines += ["", "Time is the sum of job durations (jobs may run side by side); members converged counts the "
              "members of finished jobs that converged by the rule (theory tasks train nothing and have none).", "",
              "## Failed, interrupted, diverged and partly diverged jobs", ""]
    lines += [f"- {cell(line)}" for line in issues] or ["None."]
    lines += ["", "## Figures", ""]
    for name, jobs in sweeps.items():
        for fig in figures(name, jobs, shown.get(name, DEFAULT_VIEW), runs, fig_dir):
            lines += [f"### {fig.stem}", "", f"![{fig.stem}](figures/{fig.name})", ""]
    write_bytes_atomic(out / "timings.json", (json.dumps(timings, indent=1) + "\n").encode())
    path = out / "REPORT.md"
    write_bytes_atomic(path, ("\n".join(lines) + "\n").encode())
    return Written(path, [f"{claim.id}: {outcome.why}" for _, claim, outcome, _ in claims if outcome.verdict == ERROR])
