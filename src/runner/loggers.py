"""conf/logger/*: which experiment trackers a run writes to.

metrics.csv is part of the run-directory contract, so every logger option except `none`
also writes it; `wandb` and `tensorboard` add their tracker beside it.
"""

from __future__ import annotations

import netrc
import os
from pathlib import Path

from lightning.pytorch.loggers import CSVLogger, Logger, TensorBoardLogger, WandbLogger
from omegaconf import DictConfig, OmegaConf

KINDS = ("csv", "wandb", "tensorboard", "none")


def wandb_credentials_configured() -> bool:
    """True when the user has set up online W&B (API key in the environment or ~/.netrc)."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    try:
        return netrc.netrc().authenticators("api.wandb.ai") is not None
    except (FileNotFoundError, netrc.NetrcParseError):
        return False


def wandb_mode(requested: str) -> str:
    """`auto` means online when credentials exist and WANDB_MODE does not say otherwise."""
    if requested != "auto":
        return requested
    if os.environ.get("WANDB_MODE"):
        return os.environ["WANDB_MODE"]
    return "online" if wandb_credentials_configured() else "offline"


def build_loggers(cfg: DictConfig, run_dir: Path, job: dict) -> list[Logger]:
    """Loggers for one run. `job` holds name, group and tags derived from the config."""
    kind = cfg.logger.kind
    if kind == "none":
        return []
    loggers: list[Logger] = [CSVLogger(save_dir=str(run_dir), name="", version="")]
    if kind == "wandb":
        lc = cfg.logger
        loggers.append(WandbLogger(
            project=lc.project, entity=lc.entity, group=lc.group or job["group"],
            name=job["name"], tags=list(lc.tags or []) + job["tags"], save_dir=str(run_dir),
            mode=wandb_mode(lc.mode), config=OmegaConf.to_container(cfg, resolve=True),
            job_type=lc.job_type))
    elif kind == "tensorboard":
        loggers.append(TensorBoardLogger(save_dir=str(run_dir), name="tensorboard", version=""))
    return loggers
