"""Tables of a sweep's jobs: a metric pivoted rows x columns, or grouped by any keys, as Markdown and
CSV, each cell the pooled ok members (Job.members), and the list of jobs that are not clean."""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass, field

from runner.results.jobs import Job
from runner.results.summary import COMPLETED, FINISHED, INTERRUPTED, member_stats
from runner.results import fragility, wording
from runner.results.verdicts import AGAINST, CONTRADICTED, REPRODUCED, SUPPORTS, Decision, Kind, Test, best_part


@dataclass
class Cell:
    """Pooled members of every completed job in one (row, column) of the table."""

    values: list[float] = field(default_factory=list)
    total: int = 0
    unpooled: set[str] = field(default_factory=set)  # statuses of jobs without members: failed, interrupted

    @property
    def stats(self) -> dict:
        """runner.results.summary.member_stats of the pooled values."""
        return member_stats(self.values)

    def add(self, job: Job, metric: str) -> None:
        """Pool a job's members of `metric` (jobs that trained to the end; others have none)."""
        if job.status in FINISHED:
            members = job.members(metric)
            self.total += len(members)
            self.values += [v for v in members if v is not None]
        else:
            self.unpooled.add(job.status)

    def csv_fields(self) -> list:
        """mean, std (empty without finite members), n_finite, n."""
        stats = self.stats
        fields = [f"{stats['mean']:.6e}", f"{stats['std']:.6e}"] if self.values else ["", ""]
        return fields + [len(self.values), self.total]


def label(value) -> str:
    return "-" if value is None else str(value)


def pivot(jobs: list[Job], metric: str, rows: str, cols: str):
    """(row labels, column labels, {(row, col): Cell}) over completed jobs, in order of appearance."""
    row_keys, col_keys, cells = [], [], {}
    for job in jobs:
        r, c = label(job.value(rows)), label(job.value(cols))
        if job.status == "missing":
            continue
        row_keys += [r] if r not in row_keys else []
        col_keys += [c] if c not in col_keys else []
        cells.setdefault((r, c), Cell()).add(job, metric)
    return row_keys, col_keys, cells


def problems(jobs: list[Job], metric: str, keys: list[str]) -> list[str]:
    """One line per job that is not a clean completed run, labelled by its values of `keys`."""
    lines = []
    for job in jobs:
        where = f"{job.path} ({', '.join(label(job.value(k)) for k in keys)})"
        if job.status == "missing":
            lines.append(f"{job.path}: no summary.json (still running, or killed)")
        elif job.status == "failed":
            lines.append(f"{where}: failed: {job.record.error or '?'}")
        elif job.status == "diverged":
            lines.append(f"{where}: diverged: every member {_member_fates(job) or 'non-finite'}")
        elif job.status == INTERRUPTED:
            epoch = "?" if job.record.epoch is None else job.record.epoch
            lines.append(f"{where}: interrupted by {job.record.signal or '?'} after epoch {epoch}; "
                         "resume=true continues it")
        elif job.status not in FINISHED:
            lines.append(f"{where}: status {job.status}")
        else:
            members = job.members(metric)
            bad = sum(v is None for v in members)
            if bad:
                lines.append(f"{where}: {bad}/{len(members)} members left out of the mean "
                             f"({_member_fates(job) or 'non-finite'})")
            elif not members:
                lines.append(f"{where}: no metric {metric!r}")
    return lines


def _member_fates(job: Job) -> str:
    """'2 blown up, 1 diverged' from a job's member_status ('' for a summary without it)."""
    status = job.record.member_status or []
    counts = {"blown up": status.count("blown_up"), "diverged (non-finite)": status.count("diverged"),
              "no better than the zero function": status.count("no_better_than_zero")}
    return ", ".join(f"{n} {what}" for what, n in counts.items() if n)


def _fmt(cell: Cell | None) -> str:
    if cell is None:
        return ""
    if not cell.values:
        return "diverged" if cell.total else "/".join(sorted(cell.unpooled)) or "no metric"
    stats = cell.stats
    text = f"{stats['mean']:.3e} ± {stats['std']:.1e}"
    return text + (f" ({len(cell.values)}/{cell.total})" if len(cell.values) < cell.total else "")


def markdown(jobs: list[Job], metric: str, rows: str, cols: str) -> str:
    """The table as Markdown: mean ± std over members; (n/N) when members were left out."""
    row_keys, col_keys, cells = pivot(jobs, metric, rows, cols)
    out = [f"| {rows} \\ {cols} | " + " | ".join(col_keys) + " |",
           "|---" * (len(col_keys) + 1) + "|"]
    for r in row_keys:
        out.append(f"| {r} | " + " | ".join(_fmt(cells.get((r, c))) for c in col_keys) + " |")
    return "\n".join(out)


def csv_text(jobs: list[Job], metric: str, rows: str, cols: str) -> str:
    """The table as CSV: per column, mean, std and the number of finite/total members."""
    row_keys, col_keys, cells = pivot(jobs, metric, rows, cols)
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow([rows] + [f"{c} {k}" for c in col_keys for k in ("mean", "std", "n_finite", "n")])
    for r in row_keys:
        writer.writerow([r] + [x for c in col_keys for x in cells.get((r, c), Cell()).csv_fields()])
    return buf.getvalue()


def problem_section(issues: list[str]) -> str:
    return "\n## Failed, diverged or incomplete jobs\n\n" + ("\n".join(f"- {i}" for i in issues) or "none")


def report(jobs: list[Job], metric: str, extra: list[str], rows: str, cols: str,
           issues: list[str]) -> str:
    """table.md: the main table, tables of the extra metrics present, and the problem list."""
    parts = [f"# {metric} (mean ± std over members)\n", markdown(jobs, metric, rows, cols)]
    for name in extra:
        if any(name in job.record.metric_names() for job in jobs):
            parts += [f"\n## {name}\n", markdown(jobs, name, rows, cols)]
    return "\n".join(parts + [problem_section(issues)]) + "\n"


def groups(jobs: list[Job], by: list[str]) -> dict[tuple, list[Job]]:
    """Jobs (every status) by their values of the `by` keys, in order of appearance."""
    grouped: dict[tuple, list[Job]] = {}
    for job in jobs:
        grouped.setdefault(tuple(label(job.value(k)) for k in by), []).append(job)
    return grouped


def grouped_report(jobs: list[Job], by: list[str], metrics: list[str],
                   issues: list[str]) -> tuple[str, str]:
    """(Markdown, CSV) of one row per group: job counts and mean ± std of each metric."""
    head = by + ["completed", "jobs"]
    md = ["| " + " | ".join(head + metrics) + " |", "|---" * (len(head) + len(metrics)) + "|"]
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(head + [f"{m} {k}" for m in metrics for k in ("mean", "std", "n_finite", "n")])
    for key, group in groups(jobs, by).items():
        done = sum(job.status == COMPLETED for job in group)
        cells = [Cell() for _ in metrics]
        for cell, m in zip(cells, metrics):
            for job in group:
                cell.add(job, m)
        md.append("| " + " | ".join([*key, str(done), str(len(group))] + [_fmt(c) for c in cells]) + " |")
        writer.writerow([*key, done, len(group)] + [x for c in cells for x in c.csv_fields()])
    text = "\n".join([f"# Final metrics by {', '.join(by)} (mean ± std over jobs and members)\n",
                      "\n".join(md), problem_section(issues)]) + "\n"
    return text, buf.getvalue()


def cell(text: str) -> str:
    """Text as one Markdown table cell."""
    return str(text).replace("|", "\\|").replace("\n", " ")


def fmt_p(p: float) -> str:
    """A p-value in two significant digits (scientific below 0.001)."""
    return f"{p:.2g}" if p >= 1e-3 else f"{p:.1e}"


def effect_text(t: Test) -> str:
    """'median ln(a/b) -3.3 [-4.4, -2.1]', or '' for a test without an effect size."""
    if t.effect is None:
        return ""
    low, high = t.interval or (math.nan, math.nan)
    if not (math.isfinite(low) and math.isfinite(high)):  # one pair (or one value a side): no interval
        return f"{t.effect_name} {t.effect:.2g}"
    return f"{t.effect_name} {t.effect:.2g} [{low:.2g}, {high:.2g}]"


def test_table(decided: list[Decision], alpha: float) -> list[str]:
    """Markdown rows of tests (runner.results.verdicts.decisions at `alpha`): what each rests on,
    its p in the stated direction and against it (Holm), its effect with the 95% interval,
    convergence, decision, and its fragility (runner.results.fragility.of_test)."""
    fragilities = [fragility.of_test(decided, i, alpha) for i in range(len(decided))]
    rows = ["| test | n | counts | p | p against (Holm) | effect [95% CI] | converged | decision | fragility |",
            "|---|---|---|---|---|---|---|---|---|"]
    return rows + [f"| {cell(d.test.label)} | {wording.rests_on(d.test)} | {cell(wording.counts(d.test))} | "
                   f"{fmt_p(d.test.p)} | {fmt_p(d.p_against)} | {cell(effect_text(d.test))} | "
                   f"{wording.convergence(d.test)} | {d.decision} | {wording.fragility(f)} |"
                   for d, f in zip(decided, fragilities)]


def brief(d: Decision, alpha: float) -> str:
    """What decided one test, in a few words: its counts, p and effect, or why it cannot decide."""
    t = d.test
    effect = (f", ln ratio {t.effect:.2g} [{t.interval[0]:.2g}, {t.interval[1]:.2g}]"
              if t.effect is not None and t.interval else "")
    if t.kind == Kind.EXACT:
        return f"{t.label}: {wording.counts(t)} (quadrature)"
    sign = best_part(t).kind == Kind.SIGN
    if d.decision == SUPPORTS:
        counts = f"{t.wins}/{wording.rests_on(t)}" if sign else wording.counts(t) or wording.rests_on(t)
        return f"{t.label}: {counts}, p = {fmt_p(t.p)}{effect}"
    if d.decision == AGAINST:
        counts = f"{t.losses}/{wording.rests_on(t)}" if sign else wording.counts(t) or wording.rests_on(t)
        return f"{t.label}: the other way, {counts}, p = {fmt_p(t.p_opposite)} (Holm {fmt_p(d.p_against)}){effect}"
    if t.smallest_p >= alpha:
        return f"{t.label}: {wording.limit(t)}; smallest attainable p {fmt_p(t.smallest_p)}"
    if t.p_opposite < alpha:
        return f"{t.label}: leans the other way (p = {fmt_p(t.p_opposite)}), not after Holm"
    return f"{t.label}: no significant difference, p = {fmt_p(t.p)}{effect}"


def evidence(outcome, decided: list[Decision], alpha: float) -> str:
    """What decided a claim (runner.results.claims.Outcome) in a few words: its weakest test when
    reproduced, its strongest test against it when contradicted, else the first undecided test's
    reason (and how many are undecided)."""
    if not decided:
        return outcome.why or outcome.measured
    if outcome.verdict == REPRODUCED:
        weakest = max(decided, key=lambda d: d.test.p)
        return (f"weakest of {len(decided)} tests: " if len(decided) > 1 else "") + brief(weakest, alpha)
    if outcome.verdict == CONTRADICTED:
        return brief(min(decided, key=lambda d: d.p_against), alpha)
    undecided = [d for d in decided if d.decision != SUPPORTS]
    more = f" ({len(undecided)} of {len(decided)} tests undecided)" if len(decided) > 1 else ""
    return brief(undecided[0], alpha) + more
