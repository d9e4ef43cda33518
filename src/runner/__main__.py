"""Entry point: `python -m runner [group=option ...] [key=value ...] [-m]`."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import hydra
from hydra._internal.utils import get_args_parser
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from runner.checks import ConfigError
from runner.config import CONF_DIR, command_jobs, compose, quote_expressions

# torch and Lightning load only once the command line has been checked (`check_command`), so a
# mistake in it answers in about a second.
if TYPE_CHECKING:
    from runner.results.record import RunRecord

log = logging.getLogger("runner")


@hydra.main(config_path=CONF_DIR, config_name="config", version_base="1.3")
def main(cfg: DictConfig) -> float | None:
    # startup: torch and Lightning load once the command line is checked (check_command)
    from runner.faults import Interrupted, RunStopped
    from runner.results.record import RunRecord
    from runner.results.summary import COMPLETED, FAILED_FATES
    from runner.run import headline, run

    hc = HydraConfig.get()
    run_dir = Path(hc.runtime.output_dir)
    multirun = hc.mode == RunMode.MULTIRUN
    group = Path(hc.sweep.dir).name if multirun else None
    try:
        record = RunRecord.from_json(run(cfg, run_dir, overrides=list(hc.overrides.task), group=group))
    except (ConfigError, RunStopped) as exc:
        if not multirun:
            print(f"runner: error: {exc}", file=sys.stderr)
            sys.exit(2)
        # one job of a sweep: said in one line, and the sweep goes on (an exit would take a joblib
        # or submitit worker, and the valid jobs it runs, down with it)
        log.error("runner: error: job %s: %s", hc.job.num, exc)
        if isinstance(exc, ConfigError):
            RunRecord("failed", overrides=list(hc.overrides.task), error=f"ConfigError: {exc}").write(run_dir)
        return summary_objective(cfg, RunRecord("failed"))
    except Interrupted as exc:
        print(f"runner: {exc} after epoch {exc.epoch}; {run_dir / 'summary.json'} says interrupted; "
              f"resume=true continues from {run_dir / 'checkpoints' / 'last.ckpt'}", file=sys.stderr)
        sys.exit(exc.exit_code)
    except Exception:
        log.exception("run failed; status recorded in %s", run_dir / "summary.json")
        if not multirun:
            sys.exit(1)
        return summary_objective(cfg, RunRecord("failed"))
    members = record.member_status or []
    counts = ", ".join(f"{members.count(s)} {s}" for s in ("ok", *FAILED_FATES) if members.count(s))
    converged = record.member_converged
    log.info("%s: %s%s%s in %.1fs -> %s", record.name, record.status,
             f" (members: {counts})" if record.status != COMPLETED else "",
             f", {sum(converged)}/{len(converged)} converged" if converged is not None else "",
             record.duration_s, run_dir)
    plots = run_dir / "plots"
    log.info("summary: %s%s\n%s%s", run_dir / "summary.json",
             f"\nplots:   {plots}" if plots.is_dir() and any(plots.iterdir()) else "", headline(record),
             units_note(cfg, record))
    return summary_objective(cfg, record)


LOSSES = ("final_train_loss", "initial_train_loss", "zero_output_loss")  # the training loss, as the net sees the data


def units_note(cfg: DictConfig, record: RunRecord) -> str:
    """A line naming the units where the headline shows both: the training losses are of the data
    as the network is trained on it (standardized under task.normalize=true), every other metric
    is in the task's own units."""
    metrics = record.metric_names()
    if not (cfg.task.get("normalize") and "residual" not in cfg.task  # a PDE's normalize maps its inputs only
            and any(k in metrics for k in LOSSES)
            and any(k not in LOSSES and not k.startswith("spectral_norm/") for k in metrics)):
        return ""
    return ("\n  (*_train_loss and zero_output_loss: on the standardized training data, task.normalize=true; "
            "the other metrics in the task's own units)")


def summary_objective(cfg: DictConfig, record: RunRecord) -> float | None:
    """The value a sweeper minimizes: the member mean of metric `objective`. A diverged run (or a
    missing metric) gives +inf, the worst value, so an Optuna study records it and goes on."""
    from runner.results.summary import COMPLETED  # startup: torch loads only once a run ends

    name = cfg.get("objective")
    if not name:
        return None
    stats = record.stats(name)
    if record.status != COMPLETED or not stats or stats["mean"] is None:
        return float("inf")
    return stats["mean"]


def check_command(argv: list[str]) -> tuple[int, dict[int, ConfigError]]:
    """Check a command line before Hydra runs it: every override and, under -m, every job composed
    (runner.config.command_jobs; a mistake raises one ConfigError line), then under -m every job
    built (runner.run.build), so that a job whose values cannot work is known before any job
    starts. Returns the number of jobs and those jobs' errors by job number: the sweep runs the
    others. Help, --info and another primary config are Hydra's own business and are not checked."""
    args = get_args_parser().parse_args(argv)
    if (args.help or args.hydra_help or args.shell_completion or args.info
            or args.experimental_rerun or args.config_path or args.config_name not in (None, "config")):
        return 0, {}
    jobs = command_jobs(args.overrides, args.multirun, args.config_dir)
    if not args.multirun:
        return len(jobs), {}
    # startup: torch and Lightning load only once every job composed (a typo answers before them)
    from runner.numerics import use_kernels
    from runner.run import build

    invalid = {}
    for number, job in enumerate(jobs):
        try:
            cfg = compose(*job, config_dir=args.config_dir)
            # building computes: the sweep's kernel set first, as each job's run puts it in force (under
            # the basic launcher the jobs run in this process, which must not have chosen another one)
            use_kernels(str(cfg.numerics.kernels))
            build(cfg)
        except ConfigError as exc:
            invalid[number] = exc
    return len(jobs), invalid


if __name__ == "__main__":
    sys.argv[1:] = quote_expressions(sys.argv[1:])  # task.exact='sin(pi*x)' as typed in a shell
    try:
        n_jobs, invalid = check_command(sys.argv[1:])
    except ConfigError as exc:
        if os.environ.get("HYDRA_FULL_ERROR") == "1":
            raise
        print(f"runner: error: {exc}", file=sys.stderr)
        sys.exit(2)
    for number, exc in invalid.items():
        rest = n_jobs - len(invalid)
        others = "no job runs" if not rest else "the other job runs" if rest == 1 else f"the other {rest} jobs run"
        print(f"runner: error: job {number}: {exc}; {others}", file=sys.stderr)
    if invalid and len(invalid) == n_jobs:
        sys.exit(2)
    try:
        main()
    except KeyboardInterrupt:  # Ctrl-C outside a run: a sweep's own process (its jobs stop on their own)
        print("runner: interrupted; resume=true continues each run from its last checkpoint", file=sys.stderr)
        sys.exit(130)
    sys.exit(2 if invalid else 0)
