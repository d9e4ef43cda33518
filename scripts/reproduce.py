"""Reproduce the papers: run every preset sweep, check every claim, write reports/<scale>/REPORT.md.

    python scripts/reproduce.py --scale smoke                 # ~10 min on a 2-core CPU
    python scripts/reproduce.py --scale paper --launcher hydra/launcher=slurm hydra.launcher.partition=gpu
    python scripts/reproduce.py --scale smoke --only fig4,fig1 --report-only
    python scripts/reproduce.py --replicate reports/medium --only table4,table5 --kernels avx2
    python scripts/reproduce.py --scale paper --queues 2      # two queues of one worker, balanced by --estimate
    python scripts/reproduce.py --side-by-side reports/medium,reports/paper   # the sizes' verdicts, in Markdown

The sweeps and their sizes are conf/reproduce/<scale>.yaml (runner.sweeps); the claims, their
verdict rules and the report are runner.papers. Each sweep is an ordinary multirun of
`python -m runner` into <out>/runs/<sweep>, with skip_completed=true and resume=true, so running
the command again finishes what a killed run left and skips what is done. Before starting it
prints a runtime estimate: the timing probe's (`--estimate`, runs/estimates.json) where one ran
here, else the committed smoke run's job times scaled by work.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from runner.faults import Interrupted
from runner.numerics import KERNEL_SETS
from runner.papers.replication import write_replication
from runner.papers.report import write_report
from runner.papers.sizes import side_by_side
from runner.training.callbacks import StopOnSignal
from runner.sweeps import (ROOT, SweepPlan, estimate, load_alpha, load_plan, read_estimates, record_estimates,
                           scales)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", choices=scales(), default=None,
                        help="conf/reproduce/<scale>.yaml (default smoke; with --replicate, the report's own)")
    parser.add_argument("--only", default=None, help="comma-separated sweeps (default: all of the scale)")
    parser.add_argument("--launcher", nargs="*", default=None,
                        help="Hydra launcher overrides replacing the plan's (e.g. hydra/launcher=slurm ...)")
    parser.add_argument("--extra", nargs="*", default=[], help="overrides appended to every sweep")
    parser.add_argument("--out", type=Path, default=None, help="default: reports/<scale>")
    parser.add_argument("--report-only", action="store_true", help="rewrite the report from existing runs")
    parser.add_argument("--estimate", action="store_true",
                        help="time a few steps of each sweep's jobs here, print each sweep's cost and the total, stop")
    parser.add_argument("--estimate-only", action="store_true",
                        help="print the estimate scaled from the smoke timings and stop")
    parser.add_argument("--replicate", type=Path, default=None, metavar="REPORT_DIR",
                        help="rerun sweeps of a committed report (e.g. reports/medium) into REPORT_DIR/replicate-"
                             "<kernels>/runs and compare them with its runs: REPLICATION.md")
    parser.add_argument("--kernels", default="avx2", choices=list(KERNEL_SETS),
                        help="the float kernels of a --replicate rerun (runner.numerics; default avx2)")
    parser.add_argument("--queues", type=int, default=1, metavar="N",
                        help="run the sweeps as N queues side by side, one job at a time each, balanced by "
                             "--estimate's job times (runs/estimates.json); default 1: one sweep after another")
    parser.add_argument("--side-by-side", default=None, metavar="REPORT_DIRS",
                        help="comma-separated report directories, smallest first: print their claims side by side "
                             "(runner.papers.sizes) and stop")
    args = parser.parse_args(argv)
    if args.scale is None:  # reports/medium replicates the medium scale
        args.scale = args.replicate.name if args.replicate is not None and args.replicate.name in scales() else "smoke"
    if args.queues < 1:
        print(f"reproduce: error: --queues {args.queues} must be at least 1", file=sys.stderr)
        return 2
    if args.side_by_side is not None:
        reports = [Path(r) for r in args.side_by_side.split(",")]
        if absent := [r for r in reports if not (r / "claims.json").exists()]:
            print(f"reproduce: error: {absent[0] / 'claims.json'} does not exist: --side-by-side needs written reports",
                  file=sys.stderr)
            return 2
        print("\n".join(side_by_side(reports)))
        return 0
    plan = load_plan(args.scale)
    names = list(plan["sweeps"]) if args.only is None else args.only.split(",")
    unknown = [n for n in names if n not in plan["sweeps"]]
    if unknown:
        print(f"reproduce: error: unknown sweep {unknown[0]!r}; choose from {', '.join(plan['sweeps'])}",
              file=sys.stderr)
        return 2
    try:
        load_alpha(plan, args.scale)
    except ValueError as exc:
        print(f"reproduce: error: {exc}", file=sys.stderr)
        return 2
    out = args.out or ROOT / "reports" / args.scale
    launcher = plan["launcher"] if args.launcher is None else args.launcher
    if args.replicate is not None:
        return replicate(args.replicate, args.kernels, args.scale, plan, names, launcher, args.extra, args.report_only,
                         args.queues)
    if args.estimate:
        print(f"reproduce --scale {args.scale}: timing probe of {len(names)} sweeps (nothing else runs):", flush=True)
        probed, walls, job_seconds, kept = -1, {}, {}, set()  # the first line is the process start
        try:
            with StopOnSignal():
                for line in SweepPlan(plan["sweeps"], launcher).estimate(names, walls, job_seconds):
                    if new := walls.keys() - kept:  # a sweep's probe ended: keep it before saying so
                        record_estimates(out / "runs", {n: walls[n] for n in new}, {n: job_seconds[n] for n in new},
                                         plan["sweeps"])
                        kept |= new
                    print(line, flush=True)
                    probed += 1
        except (Interrupted, KeyboardInterrupt) as exc:
            name = exc.signal_name if isinstance(exc, Interrupted) else "SIGINT"
            print(f"reproduce: estimate stopped by {name} after {max(probed, 0)} of {len(names)} sweeps"
                  + (f"; each sweep probed is kept in {out / 'runs' / 'estimates.json'}" if kept else ""),
                  file=sys.stderr)
            return exc.exit_code if isinstance(exc, Interrupted) else 130
        return 0
    if not args.report_only:
        print(f"reproduce --scale {args.scale}: {len(names)} sweeps into {out / 'runs'}; estimate:", flush=True)
        probed = read_estimates(out / "runs", plan["sweeps"])
        for line in estimate(plan, names, ROOT / "reports" / "smoke" / "timings.json", probed):
            print(line, flush=True)
        if args.estimate_only:
            return 0
    start = time.perf_counter()
    ran = {} if args.report_only else SweepPlan(plan["sweeps"], launcher).run(out / "runs", names, args.extra,
                                                                              args.queues)
    written = write_report(out, args.scale, plan, ran, time.perf_counter() - start)
    print(f"wrote {written.path}")
    for error in written.errors:
        print(f"reproduce: error: claim {error}", file=sys.stderr)
    return 1 if written.errors else 0


def replicate(report_dir: Path, kernels: str, scale: str, plan: dict, names: list[str], launcher: list[str],
              extra: list[str], compare_only: bool, n_queues: int = 1) -> int:
    """Rerun `names` of the committed report in report_dir under kernel set `kernels`, into a
    directory of their own, and write REPLICATION.md (with --report-only: compare what is there)."""
    if not (report_dir / "runs").is_dir():
        print(f"reproduce: error: {report_dir / 'runs'} does not exist: --replicate needs a report's committed runs",
              file=sys.stderr)
        return 2
    runs = report_dir / f"replicate-{kernels}" / "runs"
    if not compare_only:
        SweepPlan(plan["sweeps"], launcher).run(runs, names, [*extra, f"numerics.kernels={kernels}"], n_queues,
                                                report_dir / "runs")  # the committed report's probe balances the queues
    path, agree, compared = write_replication(report_dir, runs, scale, plan, names)
    print(f"wrote {path}: {agree} of {compared} verdicts agree")
    return 0


if __name__ == "__main__":
    sys.exit(main())
