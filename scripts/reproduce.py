"""Reproduce the papers: run every preset sweep, check every claim, write reports/<scale>/REPORT.md.

    python scripts/reproduce.py --scale smoke                 # ~10 min on a 2-core CPU
    python scripts/reproduce.py --scale paper --launcher hydra/launcher=slurm hydra.launcher.partition=gpu
    python scripts/reproduce.py --scale smoke --only fig4,fig1 --report-only

The sweeps and their sizes are conf/reproduce/<scale>.yaml (runner.sweeps); the claims, their
verdict rules and the report are runner.papers. Each sweep is an ordinary multirun of
`python -m runner` into <out>/runs/<sweep>, with skip_completed=true and resume=true, so running
the command again finishes what a killed run left and skips what is done. Before starting it
prints a runtime estimate scaled from the last smoke run on this machine.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from runner.faults import Interrupted
from runner.papers.report import write_report
from runner.training.callbacks import StopOnSignal
from runner.sweeps import ROOT, duration, estimate, load_alpha, load_plan, probe_estimate, run_sweep, scales


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", choices=scales(), default="smoke", help="conf/reproduce/<scale>.yaml")
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
    args = parser.parse_args(argv)
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
    if args.estimate:
        print(f"reproduce --scale {args.scale}: timing probe of {len(names)} sweeps (nothing else runs):", flush=True)
        probed = -1  # the first line is the process start
        try:
            with StopOnSignal():
                for line in probe_estimate(plan, names, launcher):
                    print(line, flush=True)
                    probed += 1
        except (Interrupted, KeyboardInterrupt) as exc:
            name = exc.signal_name if isinstance(exc, Interrupted) else "SIGINT"
            print(f"reproduce: estimate stopped by {name} after {max(probed, 0)} of {len(names)} sweeps", file=sys.stderr)
            return exc.exit_code if isinstance(exc, Interrupted) else 130
        return 0
    if not args.report_only:
        print(f"reproduce --scale {args.scale}: {len(names)} sweeps into {out / 'runs'}; estimate:", flush=True)
        for line in estimate(plan, names, ROOT / "reports" / "smoke" / "timings.json"):
            print(line, flush=True)
        if args.estimate_only:
            return 0
    start, ran = time.perf_counter(), {}
    for name in [] if args.report_only else names:
        ran[name] = run_sweep(name, plan["sweeps"][name], launcher, args.extra, out / "runs")
        status = "ok" if ran[name]["rc"] == 0 else f"exit {ran[name]['rc']} (see runs/{name}.log)"
        print(f"  {name:12s} {duration(ran[name]['seconds']):>7s}  {status}", flush=True)
    report = write_report(out, args.scale, plan, ran, time.perf_counter() - start)
    print(f"wrote {report}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
