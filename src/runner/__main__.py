"""Entry point: `python -m runner [group=option ...] [key=value ...] [-m]`."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from runner.checks import ConfigError
from runner.config import CONF_DIR, quote_expressions
from runner.faults import Interrupted, RunStopped
from runner.results.summary import FAILED_FATES
from runner.run import headline, run

log = logging.getLogger("runner")


@hydra.main(config_path=CONF_DIR, config_name="config", version_base="1.3")
def main(cfg: DictConfig) -> float | None:
    hc = HydraConfig.get()
    run_dir = Path(hc.runtime.output_dir)
    multirun = hc.mode == RunMode.MULTIRUN
    group = Path(hc.sweep.dir).name if multirun else None
    try:
        summary = run(cfg, run_dir, overrides=list(hc.overrides.task), group=group)
    except (ConfigError, RunStopped) as exc:
        print(f"runner: error: {exc}", file=sys.stderr)
        sys.exit(2)
    except Interrupted as exc:
        print(f"runner: {exc} after epoch {exc.epoch}; {run_dir / 'summary.json'} says interrupted; "
              f"resume=true continues from {run_dir / 'checkpoints' / 'last.ckpt'}", file=sys.stderr)
        sys.exit(exc.exit_code)
    except Exception:
        log.exception("run failed; status recorded in %s", run_dir / "summary.json")
        if not multirun:
            sys.exit(1)
        return summary_objective(cfg, {"status": "failed"})
    members = summary.get("member_status") or []
    counts = ", ".join(f"{members.count(s)} {s}" for s in ("ok", *FAILED_FATES) if members.count(s))
    converged = summary.get("member_converged")
    log.info("%s: %s%s%s in %.1fs -> %s", summary["name"], summary["status"],
             f" (members: {counts})" if summary["status"] != "completed" else "",
             f", {sum(converged)}/{len(converged)} converged" if converged is not None else "",
             summary["duration_s"], run_dir)
    log.info("summary: %s\nplots:   %s\n%s", run_dir / "summary.json", run_dir / "plots", headline(summary))
    return summary_objective(cfg, summary)


def summary_objective(cfg: DictConfig, summary: dict) -> float | None:
    """The value a sweeper minimizes: the member mean of metric `objective`. A diverged run (or a
    missing metric) gives +inf, the worst value, so an Optuna study records it and goes on."""
    name = cfg.get("objective")
    if not name:
        return None
    stats = summary.get("metrics", {}).get(name)
    if summary.get("status") != "completed" or not stats or stats["mean"] is None:
        return float("inf")
    return stats["mean"]


if __name__ == "__main__":
    sys.argv[1:] = quote_expressions(sys.argv[1:])  # task.exact='sin(pi*x)' as typed in a shell
    try:
        main()
    except KeyboardInterrupt:  # Ctrl-C outside a run: a sweep's own process (its jobs stop on their own)
        print("runner: interrupted; resume=true continues each run from its last checkpoint", file=sys.stderr)
        sys.exit(130)
