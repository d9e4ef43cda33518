"""`python -m runner.screen`: the command line of the screen (runner.screen)."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

from runner.checks import ConfigError
from runner.faults import Interrupted
from runner.screen import DESCRIPTION, panel
from runner.screen.plan import Screen
from runner.screen.render import write_screen
from runner.sweeps import duration
from runner.trackers.loggers import wandb_mode
from runner.trackers.reports import summary_run
from runner.training.callbacks import StopOnSignal


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m runner.screen", description=DESCRIPTION)
    parser.add_argument("overrides", nargs="+", help="activation=... and activation.<key>=... (as for python -m runner)")
    parser.add_argument("--scale", default="smoke", help="conf/screen/<scale>.yaml: smoke, medium, paper, or "
                        "your own under <config-dir>/screen/")
    parser.add_argument("--config-dir", type=Path, default=None, help="your own conf/ (an activation of yours)")
    parser.add_argument("--out", type=Path, default=None, help="default: outputs/screen/<activation>/<scale>")
    parser.add_argument("--launcher", nargs="*", default=None, help="Hydra launcher overrides replacing the plan's")
    parser.add_argument("--estimate", action="store_true", help="print the time it takes here and stop")
    parser.add_argument("--report-only", action="store_true", help="rewrite SCREEN.md from the runs there")
    parser.add_argument("--wandb", action="store_true", help="also one W&B run with the card in its summary")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    try:
        screen = Screen(args.overrides, args.scale, args.out, args.config_dir, args.launcher)
    except ConfigError as exc:
        print(f"runner.screen: error: {exc}", file=sys.stderr)
        return 2
    missing = [d for d in ("theory", "runs") if not (screen.out / d).is_dir()]
    if args.report_only and missing:
        print(f"runner.screen: error: {screen.out / missing[0]} does not exist: --report-only rewrites SCREEN.md "
              "from a screen's runs; run the screen without it first", file=sys.stderr)
        return 2
    try:
        with StopOnSignal():
            if args.estimate:
                print(f"screen of {screen.activation!r} at scale {args.scale}: timing probe (nothing else runs):",
                      flush=True)
                for line in screen.estimate():
                    print(line, flush=True)
                return 0
            start = time.perf_counter()
            print(f"screen of {screen.activation!r} at scale {args.scale} into {screen.out}", flush=True)
            theory = screen.theory_records() if args.report_only else screen.theory_runs()
            networks = panel.networks(screen)
            print(f"  theory card: {duration(time.perf_counter() - start)}", flush=True)
            if not args.report_only:
                screen.run_panel()
            path = write_screen(screen, theory, networks, None if args.report_only else time.perf_counter() - start)
    except Interrupted as exc:
        print(f"runner.screen: stopped by {exc.signal_name}; the same command resumes it", file=sys.stderr)
        return exc.exit_code
    print(f"wrote {path}")
    if args.wandb:
        record = json.loads((screen.out / "screen.json").read_text())
        flat = {f"card/{k}": v for k, v in record["card"].items() if isinstance(v, (int, float, str, type(None)))}
        flat.update({f"panel/{p['group']}/{p['metric']}/vs_{p['baseline']}": p["verdict"] for p in record["panel"]})
        run_dir = summary_run(f"screen-{screen.activation.label}-{args.scale}", "screen", flat,
                              plot_paths=sorted((screen.out / "figures").glob("*.png")), project="runner", entity=None,
                              group=f"screen-{screen.activation.label}", mode=wandb_mode("auto"), save_dir=screen.out)
        print(f"W&B run in {run_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
