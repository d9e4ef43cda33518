"""Multirun directories -> tables and comparison plots.

    python -m runner.aggregate outputs/multirun/<date> [more dirs]
    python -m runner.aggregate <sweep> --metric train_mse --extra test_mse,deriv_mse --cols task.target
    python -m runner.aggregate <sweep> --by task,activation --metric test_mse,extrap_mse
    python -m runner.aggregate <sweep> --metric rel_l2,max_abs_error --vs relu
    python -m runner.aggregate <sweep> --export members.parquet

Each job directory's summary.json is one run. Jobs are grouped into a table with one row per
value of `--rows` and one column per value of `--cols` (dotted config keys, default
activation.name x task.name); a cell pools the members of every job that trained to the end and
shows mean ± std of `--metric` (default final_train_loss) over the ok members (one status rule:
Job.members). Further metrics (`--metric a,b` or `--extra`) get their own tables below it. A metric
that no finished run has, or a `--vs` activation without a finished run, stops it with one line
(exit code 2) before anything is written. `--heatmap` adds
plots/<metric>_heatmap.png, the cells' median over ok members on a log color scale. Failed,
interrupted, diverged, unfinished and partly diverged jobs are listed under the table, never
dropped silently. Writes table.md and table.csv (main metric) into --out (default: the first
directory), and comparison plots in plots/: loss curves with a band over members (from
metrics.csv), and for tasks that save predictions.npz with derivatives, fits of f and f' (one
input) or error contours (two).

With --by, jobs are grouped by any override or config keys (`activation`, `optimizer.lr`,
`task.name`, ...; an override's value as typed, else the config value, else `<key>.name`):
one row per group with mean ± std over every member of every job for each metric, and
plots/loss_curves.png overlays each group's training-loss curve (mean over jobs of the member mean,
min-max band).

`--vs relu` also tests every other activation against relu in every column, for every metric,
paired by member (the sign tests, Holm and convergence gate of the claims:
runner.results.claims.versus_check): vs_relu.md with a section per metric and a row per test, and
plots/vs_relu_forest.png (effects and 95% intervals) and plots/vs_relu_improvement.png
(P(a member beats its paired relu member)).

`--export members.parquet` (or .csv) writes instead one row per member of every run
(runner.results.load, for a notebook) and stops.

`--wandb` also logs the tables (one per metric) and the plots to one summary run in the jobs'
W&B group (runner.trackers.reports.report_sweep), with the jobs' logger settings. A preset can have its
sweep aggregated when it ends: the Hydra callback AggregateSweep with these arguments.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from hydra.experimental.callback import Callback

from runner.results.claims import versus_check
from runner.results.files import write_bytes_atomic
from runner.results.jobs import collect
from runner.results.members import export
from runner.results.plots import (compare_sweep, forest_rows, improvement_rows, plot_forest, plot_function_fits,
                                  plot_group_curves, plot_heatmap, plot_improvement, plot_loss_curves)
from runner.checks import did_you_mean
from runner.results.summary import FINISHED, member_stats
from runner.results.tables import csv_text, grouped_report, problems, report, test_table
from runner.results import wording
from runner.results.verdicts import decisions

log = logging.getLogger("runner")

METRIC, ROWS, COLS = "final_train_loss", "activation.name", "task.name"  # what any trained run has
ALPHA = 0.05  # the level of --vs's tests


class TrackerError(RuntimeError):
    """The tables and plots are written, but the experiment tracker did not take them."""


class UsageError(ValueError):
    """Arguments that cannot give what they ask for (a metric no run has, a baseline that did not run)."""


def check_arguments(jobs: list, metrics: list[str], vs: str | None) -> None:
    """Every metric is one that some finished run has, and the `vs` activation has a finished run;
    else a UsageError of one line with the nearest names, before anything is written."""
    finished = [job for job in jobs if job.status in FINISHED]
    if not finished:
        return  # nothing trained to the end: the problem list says why
    present = dict.fromkeys(name for job in finished for name in job.record.metric_names())
    for metric in metrics:
        if metric not in present:
            raise UsageError(f"--metric {metric}: no finished run here has it"
                             + did_you_mean(metric, [m for m in present if "/" not in m], "their metrics"))
    if vs is not None:
        activations = {str(job.value("activation")) for job in finished}
        if vs not in activations:
            raise UsageError(f"--vs {vs}: no finished run of activation {vs} here, so nothing to compare against"
                             + did_you_mean(vs, activations, "activations that ran"))


def versus(jobs: list, reference: str, metrics: list[str] | str, cols: str, out: Path, alpha: float = ALPHA) -> dict:
    """Every other activation against `reference` per column: for each metric, the paired sign tests
    (runner.results.claims.versus_check, the claims' own code, Holm across one metric's tests), as
    vs_<reference>.md and the forest and probability-of-improvement figures (runner.results.plots)."""
    metrics = [metrics] if isinstance(metrics, str) else list(metrics)
    name, lines, groups = f"vs_{reference}", [], []
    for metric in metrics:
        outcome = versus_check(metric, reference, cols)(jobs, alpha)
        decided = decisions(list(outcome.tests), alpha)
        prefix = f"{metric}: " if len(metrics) > 1 else ""
        groups += [(prefix + col, [d for d in decided if d.test.label.split(": ")[0] == col])
                   for col in dict.fromkeys(d.test.label.split(": ")[0] for d in decided)]
        lines += [f"# {metric}: every activation against {reference} (paired by member, α = {alpha:g}, Holm "
                  "across the tests)", "",
                  f"**{outcome.verdict}** (fragility {wording.fragility(outcome.fragility)}: the fewest changed "
                  "pair outcomes that would change it)" + (f": {outcome.why}" if outcome.why else ""), "",
                  *(test_table(decided, alpha) if decided else [outcome.measured]), ""]
    write_bytes_atomic(out / f"{name}.md", ("\n".join(lines)).encode())
    written = {f"{name}.md": out / f"{name}.md", "plots": []}
    title = f"{', '.join(metrics)}: against {reference}"
    if plot_forest(forest_rows(groups), out / "plots" / f"{name}_forest.png", f"{title}, left of 0: better"):
        written["plots"].append(out / "plots" / f"{name}_forest.png")
    if plot_improvement(improvement_rows(groups), out / "plots" / f"{name}_improvement.png",
                        f"{title}, P(beats {reference})"):
        written["plots"].append(out / "plots" / f"{name}_improvement.png")
    return written


def aggregate(dirs: list[Path], out: Path | None = None, metric: str = METRIC, extra: tuple[str, ...] = (),
              rows: str = ROWS, cols: str = COLS, plots: bool = True,
              by: list[str] | None = None, heatmap: bool = False, wandb: bool = False,
              vs: str | None = None, alpha: float = ALPHA) -> dict:
    """Write table.md, table.csv and plots/ for the jobs under `dirs`; return what was written.
    With `by`, one row per group of those keys and `metric` + `extra` as columns; with `heatmap`
    (rows x columns layout), also plots/<metric>_heatmap.png; with `vs`, every other activation
    against that one (`versus`); with `wandb`, the tables and plots also go to one W&B summary run
    of the jobs' group (its directory under `wandb_run`)."""
    jobs = collect(dirs)
    if not jobs:
        raise FileNotFoundError(f"no job directories under {', '.join(map(str, dirs))}")
    check_arguments(jobs, [metric, *extra], vs)
    out = Path(out or dirs[0])
    issues = problems(jobs, metric, by or [rows, cols])
    if by:
        text, table = grouped_report(jobs, by, [metric, *extra], issues)
        tables = {"by_" + "_".join(by): table}
    else:
        text, table = report(jobs, metric, list(extra), rows, cols, issues), csv_text(jobs, metric, rows, cols)
        tables = {name: table if name == metric else csv_text(jobs, name, rows, cols) for name in [metric, *extra]
                  if name == metric or any(name in job.record.metric_names() for job in jobs)}
    write_bytes_atomic(out / "table.md", text.encode())
    write_bytes_atomic(out / "table.csv", table.encode())
    written = {"table.md": out / "table.md", "table.csv": out / "table.csv", "plots": [],
               "problems": issues}
    if plots and by:
        if plot_group_curves(jobs, by, out / "plots" / "loss_curves.png"):
            written["plots"].append(out / "plots" / "loss_curves.png")
    elif plots:
        if plot_loss_curves(jobs, rows, cols, out / "plots" / "loss_curves.png"):
            written["plots"].append(out / "plots" / "loss_curves.png")
        written["plots"] += plot_function_fits(jobs, rows, cols, out / "plots")
        if heatmap and plot_heatmap(jobs, metric, rows, cols, out / "plots" / f"{metric}_heatmap.png"):
            written["plots"].append(out / "plots" / f"{metric}_heatmap.png")
    if vs:
        compared = versus(jobs, vs, [metric, *extra], cols, out, alpha)
        written[f"vs_{vs}.md"] = compared[f"vs_{vs}.md"]
        written["plots"] += compared["plots"]
    if wandb:
        # startup: Lightning and wandb (results.tracking) load only for --wandb
        from runner.trackers.reports import report_sweep, wandb_target

        counts: dict[str, int] = {}
        for job in jobs:
            counts[job.status] = counts.get(job.status, 0) + 1
        try:
            written["wandb_run"] = report_sweep(tables, written["plots"], counts, save_dir=out,
                                                **wandb_target(jobs, out))
        except Exception as exc:  # noqa: BLE001 - W&B's own errors (network, login)
            raise TrackerError(f"{type(exc).__name__}: {exc}") from exc
    return written


class AggregateSweep(Callback):
    """Hydra callback: when a multirun ends, `aggregate` of its sweep directory with the preset's
    arguments (e.g. experiment=pinn_suite: rel_l2 per activation x equation, with its heat map)."""

    def __init__(self, metric: str, extra: list[str], rows: str, cols: str, heatmap: bool, by: list[str] | None):
        self.arguments = {"metric": metric, "extra": tuple(extra), "rows": rows, "cols": cols, "heatmap": heatmap,
                          "by": list(by) if by else None}

    def on_multirun_end(self, config, **kwargs) -> None:
        try:
            written = aggregate([Path(config.hydra.sweep.dir)], **self.arguments)
        except FileNotFoundError:  # no job directory: the sweep started nothing
            return
        except UsageError as exc:  # e.g. every run failed before it recorded the preset's metric
            log.warning("runner.aggregate: %s", exc)
            return
        log.info("%s of the sweep: %s", self.arguments["metric"], written["table.md"])


class CompareActivations(Callback):
    """Hydra callback: after a multirun, plot `metric` per activation in the sweep directory."""

    def __init__(self, metric: str):
        self.metric = metric

    def on_multirun_end(self, config, **kwargs) -> None:
        result = compare_sweep(Path(config.hydra.sweep.dir), self.metric)
        if result:
            for name, vals in sorted(result.items()):
                if vals:
                    log.info("%s %-10s median %.3e over %d members", self.metric, name,
                             member_stats(vals)["median"], len(vals))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m runner.aggregate", description=__doc__.splitlines()[0])
    parser.add_argument("dirs", nargs="+", type=Path, help="multirun (sweep) or run directories")
    parser.add_argument("--metric", default=METRIC,
                        help="comma-separated summary metrics: the first makes the main table, the others tables "
                             "below it (with --by: columns); --vs tests each")
    parser.add_argument("--by", default=None,
                        help="comma-separated override/config keys to group by, e.g. task,activation")
    parser.add_argument("--extra", default="", help="comma-separated metrics tabulated below it in table.md")
    parser.add_argument("--rows", default=ROWS, help="dotted config key of the rows")
    parser.add_argument("--cols", default=COLS, help="dotted config key of the columns")
    parser.add_argument("--out", type=Path, default=None, help="where to write (default: first dir)")
    parser.add_argument("--heatmap", action="store_true",
                        help="also plots/<metric>_heatmap.png: median per row x column (not with --by)")
    parser.add_argument("--no-plots", action="store_true")
    parser.add_argument("--wandb", action="store_true",
                        help="also log the tables and plots to one summary run in the jobs' W&B group")
    parser.add_argument("--vs", default=None, metavar="ACTIVATION",
                        help="also test every other activation against this one, per column (--cols), paired by "
                             "member: vs_<ACTIVATION>.md, a forest plot and a probability-of-improvement panel")
    parser.add_argument("--alpha", type=float, default=ALPHA, help="the level of --vs's tests")
    parser.add_argument("--export", type=Path, default=None, metavar="FILE",
                        help="only write every member of every run as one table (.parquet or .csv; "
                             "runner.results.load) and stop")
    args = parser.parse_args(argv)
    for d in args.dirs:
        if not d.is_dir():
            print(f"runner.aggregate: error: {d} is not a directory", file=sys.stderr)
            return 2
    if args.export:
        try:
            path = export(args.dirs[0], args.export)
        except (FileNotFoundError, ValueError) as exc:
            print(f"runner.aggregate: error: {exc}", file=sys.stderr)
            return 2
        print(f"wrote {path}: one row per member of every run under {args.dirs[0]}")
        return 0
    try:
        metric, *more = filter(None, args.metric.split(","))
        extra = list(dict.fromkeys([*more, *filter(None, args.extra.split(","))]))
        by = args.by.split(",") if args.by else None
        written = aggregate(args.dirs, args.out, metric, tuple(extra), args.rows, args.cols,
                            plots=not args.no_plots, by=by, heatmap=args.heatmap, wandb=args.wandb, vs=args.vs,
                            alpha=args.alpha)
    except (FileNotFoundError, UsageError) as exc:
        print(f"runner.aggregate: error: {exc}", file=sys.stderr)
        return 2
    except TrackerError as exc:
        print(f"runner.aggregate: error: the tables are written but W&B did not get them: {exc}",
              file=sys.stderr)
        return 1
    print(written["table.md"].read_text())
    if args.vs:
        print(written[f"vs_{args.vs}.md"].read_text())
    print(f"wrote {written['table.md']}, {written['table.csv']}"
          + (f", {written[f'vs_{args.vs}.md']}" if args.vs else "")
          + "".join(f", {p}" for p in written["plots"])
          + (f"; W&B summary run in {written['wandb_run']}" if written.get("wandb_run") else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
