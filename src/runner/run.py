"""One run, start to finish: build the pieces from the config, fit, write the run directory."""

from __future__ import annotations

import ctypes
import inspect
import logging
import os
import signal
import socket
import time
import traceback
import warnings
from pathlib import Path

import lightning as L
import torch
from hydra.utils import get_object, instantiate
from lightning.pytorch.callbacks import TQDMProgressBar
from lightning.pytorch.loggers import Logger
from lightning.pytorch.utilities.exceptions import SIGTERMException
from omegaconf import DictConfig, OmegaConf

from runner.theory import activations
from runner.config import ConfigError, validate
from runner.training.ensemble import EnsembleMLP
from runner.theory.forecast import plan_init
from runner.faults import DiskFull, Interrupted, resume_checkpoint, run_dir_lock
from runner.theory.init import Init
from runner.training.loggers import build_loggers
from runner.training.module import EnsembleModule
from runner.training.callbacks import StopOnSignal
from runner.training.regularizers import exact_spectral_norms
from runner.results.summary import FINISHED, INTERRUPTED, convergence, member_stats, member_status, read_summary, run_status
from runner.results.files import write_json_atomic
from runner.tasks.base import Task
from runner.results.tracking import report_to_trackers

log = logging.getLogger("runner")

# Lightning's banners (GPU available..., tips), the CSV logger's note that Hydra's files share
# the run directory and the hint to use srun on any machine that has SLURM installed are noise
# on every run (under SLURM, submitit already runs jobs through srun); real warnings still show.
logging.getLogger("lightning.pytorch.utilities.rank_zero").setLevel(logging.WARNING)
warnings.filterwarnings("ignore", message=r".*(Experiment logs directory|treespec|LeafSpec|`srun` command is available).*")


def keep_freed_memory() -> None:
    """Have glibc serve tensors up to 32 MB from its heap and keep freed memory for reuse.

    By default a buffer above malloc's mmap threshold is a fresh mmap whose pages fault in on
    first touch, every step, a large share of a step on a 101x101 grid (docs/performance.md).
    The price: freed memory (up to 1 GB) stays with the process.
    A no-op where libc is not glibc.
    """
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(-3, 32 << 20)  # M_MMAP_THRESHOLD: glibc's maximum on 64-bit
        libc.mallopt(-1, 1 << 30)   # M_TRIM_THRESHOLD: keep up to 1 GB of freed heap
    except (OSError, AttributeError):
        pass


def build_task(cfg: DictConfig) -> Task:
    """The task object from conf/task/*, with constructor errors turned into config errors (their
    message names the key, or is prefixed with `task:`)."""
    try:
        return instantiate(cfg.task)
    except Exception as exc:  # noqa: BLE001 - instantiate wraps the task's own ValueError
        cause = str(exc.__cause__ or exc)
        raise ConfigError(cause if cause.startswith("task.") else f"task: {cause}") from None


def build_model(cfg: DictConfig, task: Task, init: Init | None = None, dropout: float = 0.0) -> EnsembleMLP:
    """The ensemble of conf/model for a task, initialized by `init` (cfg.init resolved for this
    task's inputs by runner.theory.forecast.plan_init when not given). The runner passes what the
    config does not hold: the task's input and output sizes, the activation object, the
    ensemble, the init and the dtype."""
    if init is None:
        init, _ = plan_init(cfg, task.in_dim, task.network_inputs())
    model = instantiate(cfg.model, _partial_=True)  # objects passed to instantiate itself become configs
    return model(in_dim=task.in_dim, out_dim=task.out_dim, activation=activations.build(**cfg.activation), init=init,
                 size=cfg.ensemble.size, seed=cfg.seed, member_offset=cfg.ensemble.member_offset, dropout=dropout,
                 dtype=parameter_dtype(cfg))


def build_callbacks(cfg: DictConfig, task: Task, run_dir: Path) -> list[L.Callback]:
    """The Lightning callbacks of conf/callbacks, each given the pieces of this run its target
    asks for by name (`task`, `run_dir`); a constructor's error is a config error naming it."""
    runtime = {"task": task, "run_dir": run_dir}
    callbacks = []
    for name, node in (cfg.get("callbacks") or {}).items():
        wants = inspect.signature(get_object(node._target_)).parameters
        try:
            callbacks.append(instantiate(node, _partial_=True)(**{k: v for k, v in runtime.items() if k in wants}))
        except Exception as exc:  # noqa: BLE001 - instantiate wraps the callback's own ValueError
            raise ConfigError(f"callbacks.{name}: {exc.__cause__ or exc}") from None
    return callbacks


def parameter_dtype(cfg: DictConfig) -> torch.dtype:
    """float64 under trainer.precision=64-true, else float32. Building the model in its final
    dtype matters on resume: Lightning loads the checkpoint before converting precision."""
    return torch.float64 if str(cfg.trainer.get("precision", "")).startswith("64") else torch.float32


def job_identity(cfg: DictConfig, run_dir: Path, group: str | None = None) -> dict:
    """Name, group and tags that trackers and summaries use to find and compare runs. The group
    is logger.group when set, else `group` (a multirun's sweep directory name), else the
    experiment or the task."""
    tags = [f"task:{cfg.task.name}", f"activation:{cfg.activation.name}"]
    if cfg.get("experiment_name"):
        tags.append(f"experiment:{cfg.experiment_name}")
    name = f"{cfg.task.name}-{cfg.activation.name}-s{cfg.seed}"
    group = (cfg.get("logger") or {}).get("group") or group or cfg.get("experiment_name") or cfg.task.name
    return {"name": name, "group": group,
            "tags": tags + list(cfg.get("tags") or [])}


def train(cfg: DictConfig, task: Task, run_dir: Path, job: dict, stop: StopOnSignal,
          ckpt_path: Path | None = None, resume_step: int | None = None,
          loggers: list[Logger] | None = None, init: Init | None = None) -> tuple[EnsembleModule, L.Trainer]:
    """Build the ensemble (initialized by `init`, else cfg.init resolved here), optimizer,
    callbacks (conf/callbacks) and, unless given, loggers from the config and train, from
    `ckpt_path` (a checked checkpoint at `resume_step`) when given. Interrupted on Ctrl-C/SIGTERM."""
    regularizer = instantiate(cfg.regularizer)
    model = build_model(cfg, task, init, dropout=regularizer.dropout)
    module = EnsembleModule(model, task, regularizer, instantiate(cfg.optimizer), cfg.log_every)
    if ckpt_path:
        log.info("resuming from %s (step %d)", ckpt_path, resume_step)
    elif cfg.resume:
        log.info("resume=%s but no checkpoint in %s; starting from scratch", cfg.resume, run_dir / "checkpoints")
    if loggers is None:
        loggers = build_loggers(cfg, run_dir, job, resume_step)
    callbacks = build_callbacks(cfg, task, run_dir)
    bar = any(isinstance(callback, TQDMProgressBar) for callback in callbacks)
    trainer: L.Trainer = instantiate(
        cfg.trainer, logger=loggers or False, callbacks=[stop, *callbacks],
        default_root_dir=str(run_dir), **({"enable_progress_bar": True} if bar else {}))
    try:
        trainer.fit(module, ckpt_path=str(ckpt_path) if ckpt_path else None)
    except SIGTERMException:  # Lightning's stop on SIGTERM, raised after the epoch's checkpoint
        raise Interrupted(signal.SIGTERM, stop.epoch) from None
    stop.check()
    return module, trainer


def fit(cfg: DictConfig, task: Task, run_dir: Path, job: dict, stop: StopOnSignal, init: Init,
        ckpt_path: Path | None = None, resume_step: int | None = None,
        loggers: list[Logger] | None = None) -> tuple[dict, list[str], dict]:
    """Train from `init`, then evaluate; return final per-member metrics (tensors), each member's
    status and the members' training loss at the logged epochs (EnsembleModule.loss_history)."""
    module, trainer = train(cfg, task, run_dir, job, stop, ckpt_path, resume_step, loggers, init)
    model = module.model
    model.eval()
    metrics = dict(task.evaluate(model))
    metrics["final_train_loss"] = module.member_loss.cpu()
    metrics["initial_train_loss"] = module.initial_loss.cpu()
    metrics["zero_output_loss"] = module.zero_output_loss.cpu()
    status = member_status(module.member_loss, module.initial_loss, module.zero_output_loss, cfg.blowup_factor)
    for i, sigma in enumerate(exact_spectral_norms(model)):
        metrics[f"spectral_norm/layer{i + 1}"] = sigma.cpu()
    task.save_outputs(model, run_dir, label=f"{cfg.activation.name}")
    for logger in trainer.loggers:
        logger.finalize("success")
    return metrics, status, module.loss_history()


def run(cfg: DictConfig, run_dir: Path, overrides: list[str] | None = None,
        group: str | None = None) -> dict:
    """Validate, train (or measure) and write summary.json atomically; return the summary.

    Before training, cfg.init is resolved to numbers (init.C_W=auto from the theory; the config
    stays as written) and the kernel of the training inputs is forecast through the depth: both
    logged, and in the summary (`resolved_init`, `init_forecast`).
    One process at a time works in a run directory (run_dir/.lock, else RunDirInUse). A trained
    run is `completed` when every member trained, else `partly_diverged` or `diverged`
    (runner.results.summary.member_status: non-finite, blown up past blowup_factor, or no better than the
    zero function), and records each member's loss history and whether it converged
    (runner.results.summary.convergence, by convergence_tail and convergence_tol); Ctrl-C or SIGTERM
    records `interrupted` and raises Interrupted; other failures are recorded as `failed` and re-raised.
    Once summary.json is written, the active trackers (W&B, TensorBoard) get it too (runner.results.tracking).
    """
    run_dir = Path(run_dir)
    validate(cfg)
    with run_dir_lock(run_dir), StopOnSignal() as stop:
        return run_locked(cfg, run_dir, overrides, group, stop)


def run_locked(cfg: DictConfig, run_dir: Path, overrides: list[str] | None, group: str | None,
               stop: StopOnSignal) -> dict:
    """run() once it holds the run directory; resume=true starts from the newest whole checkpoint."""
    task = build_task(cfg)
    previous = read_summary(run_dir)
    if cfg.skip_completed and previous and previous.get("status") in FINISHED:
        log.info("skip_completed: %s already finished (%s)", run_dir, previous["status"])
        return previous
    init, init_forecast = plan_init(cfg, task.in_dim, task.network_inputs())
    if task.trains:
        (log.info if init_forecast.verdict == "stable" and not init_forecast.note else log.warning)(
            init_forecast.line())
    ckpt_path, resume_step = None, None
    if cfg.resume and task.trains:
        fresh_if_corrupt = cfg.resume == "fresh_if_corrupt"
        ckpt_path, resume_step = resume_checkpoint(run_dir / "checkpoints", fresh_if_corrupt)
        stop.epoch = resume_step or 0  # one optimizer step per epoch
    job = job_identity(cfg, run_dir, group)
    loggers = build_loggers(cfg, run_dir, job, resume_step)
    summary = {"status": "running", "task": cfg.task.name, "activation": cfg.activation.name,
               "overrides": list(overrides or []), "seed": cfg.seed,
               "ensemble_size": cfg.ensemble.size, "name": job["name"], "group": job["group"], "tags": job["tags"],
               "host": socket.gethostname(), "slurm_job_id": os.environ.get("SLURM_JOB_ID"),
               "init": OmegaConf.to_container(cfg.init, resolve=True), "resolved_init": init.as_dict(),
               "init_forecast": init_forecast.as_dict()}
    start = time.time()
    try:
        L.seed_everything(cfg.seed, verbose=False)
        keep_freed_memory()
        if cfg.get("threads"):
            torch.set_num_threads(cfg.threads)
        if task.trains:
            metrics, members, history = fit(cfg, task, run_dir, job, stop, init, ckpt_path, resume_step, loggers)
            summary["member_status"] = members
            summary["diverged_members"] = sum(m != "ok" for m in members)
            summary["status"] = run_status(members)
            summary["loss_history"] = history
            summary.update(convergence(history, cfg.convergence_tail, cfg.convergence_tol))
        else:
            metrics = task.run(cfg, run_dir, init)
            summary["status"] = "completed"
        summary["metrics"] = {name: member_stats(values) for name, values in metrics.items()}
    except Interrupted as exc:
        summary.update(status=INTERRUPTED, signal=exc.signal_name, epoch=exc.epoch)
        raise
    except Exception as exc:
        summary.update(status="failed", error=f"{type(exc).__name__}: {exc}",
                       traceback=traceback.format_exc())
        raise
    finally:
        summary["duration_s"] = round(time.time() - start, 3)
        summary["config"] = OmegaConf.to_container(cfg, resolve=True)
        try:
            write_json_atomic(run_dir / "summary.json", summary)
        except DiskFull:  # when the run already fails, its own error (maybe this disk) goes on
            if summary["status"] not in ("failed", INTERRUPTED):
                raise
        report_to_trackers(loggers, summary, run_dir)
    return summary


def headline(summary: dict, keys: tuple[str, ...] | None = None) -> str:
    """A few final metrics as 'name mean ± std' lines for the console."""
    lines = []
    for name, stats in summary.get("metrics", {}).items():
        if (keys and name not in keys) or name.startswith("spectral_norm/") or stats["mean"] is None:
            continue
        lines.append(f"  {name:<22} {stats['mean']:.4g} ± {stats['std']:.2g}")
    return "\n".join(lines)
