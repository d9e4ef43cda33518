"""One run, start to finish, and the one composition root: every config group becomes its object
here, once, and objects go down from here; only the run record (summary.json, the trackers'
config) sees the whole config.

    build(cfg) -> Experiment       activation, init scheme, model, task, regularizer, optimizer,
                                   each from its _target_; every bad value fails here in one line
    run(cfg, run_dir)              lock the run directory, resolve the init and forecast it, train
                                   (fit, then evaluate) or measure, write summary.json atomically
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import socket
import time
import traceback
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import lightning as L
import torch
from hydra.utils import instantiate as hydra_instantiate
from lightning.pytorch.callbacks import TQDMProgressBar
from lightning.pytorch.loggers import Logger
from lightning.pytorch.utilities.exceptions import SIGTERMException
from omegaconf import DictConfig, OmegaConf

from runner import checks, numerics
from runner.config import Settings, check_keys, check_missing, instantiate, instantiate_all
from runner.faults import DiskFull, Interrupted, resume_checkpoint, run_dir_lock
from runner.nets.mlp import MLP
from runner.results.record import RunRecord
from runner.results.summary import COMPLETED, FINISHED, INTERRUPTED, RUNNING, convergence, member_stats, member_status, run_status
from runner.trackers.reports import report_to_trackers
from runner.tasks.base import Networks, Task
from runner.theory.activations import Activation
from runner.theory.criticality import criticality
from runner.theory.forecast import Forecast
from runner.theory.init import Init
from runner.theory.schemes import resolve_init
from runner.training.callbacks import StopOnSignal
from runner.training.module import EnsembleModule
from runner.training.regularizers import NoRegularizer, exact_spectral_norms

log = logging.getLogger("runner")

# Lightning's banners (GPU available..., tips), the CSV logger's note that Hydra's files share
# the run directory and the hint to use srun on any machine that has SLURM installed are noise
# on every run (under SLURM, submitit already runs jobs through srun); real warnings still show.
logging.getLogger("lightning.pytorch.utilities.rank_zero").setLevel(logging.WARNING)
warnings.filterwarnings("ignore", message=r".*(Experiment logs directory|treespec|LeafSpec|`srun` command is available).*")

# The config groups a run is built of; every other top-level key is a setting (runner.config.Settings).
GROUPS = ("activation", "init", "model", "task", "regularizer", "optimizer", "trainer", "logger", "callbacks")


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


@dataclass
class Experiment:
    """The objects one run is made of, each built once from its config group (`build`). The
    trainer, loggers and callbacks need the run directory, so `run` builds them from `config`."""

    settings: Settings
    activation: Activation
    init: object                 # a scheme of runner.theory.init (Gaussian, PyTorchDefault, Xavier, yours)
    model: MLP
    task: Task
    regularizer: NoRegularizer
    optimizer: Callable          # params -> torch.optim.Optimizer
    epochs: int                  # trainer.max_epochs: one full-batch optimizer step each
    dtype: torch.dtype           # the parameters': float64 under trainer.precision=64-true
    config: DictConfig           # the whole config, for the run record and the run-time pieces

    def networks(self, init: Init) -> Networks:
        """The networks of this run as a measuring task draws them, at the resolved `init`."""
        s = self.settings
        return Networks(self.activation, init, self.model.depth, self.model.width, s.ensemble.size, s.seed,
                        s.ensemble.member_offset)

    def build_model(self, init: Init | None = None):
        """The ensemble for the task, drawn by `init` (this run's init resolved, when not given)."""
        if init is None:
            init, _ = self.resolve_init()
        s = self.settings
        return self.model.build(self.task.in_dim, self.task.out_dim, self.activation, init, s.ensemble.size, s.seed,
                                s.ensemble.member_offset, self.regularizer.dropout, self.dtype)

    def resolve_init(self) -> tuple[Init, Forecast]:
        """The init scheme resolved to numbers for this task's training inputs and targets, and its forecast."""
        return resolve_init(self.init, self.activation, self.task.network_inputs(), self.model.depth,
                            self.model.width, self.task.in_dim, self.task.target_moment())


def run_device(trainer: DictConfig) -> str:
    """Where the trainer puts the networks: cuda for accelerator gpu or cuda (auto: when CUDA is
    available), else cpu. Tasks that train nothing measure on the CPU."""
    accelerator = str(trainer.get("accelerator") or "auto")
    cuda = accelerator in ("gpu", "cuda") or (accelerator == "auto" and torch.cuda.is_available())
    return "cuda" if cuda else "cpu"


def parameter_dtype(precision) -> torch.dtype:
    """float64 under trainer.precision=64-true, else float32. Building the model in its final
    dtype matters on resume: Lightning loads the checkpoint before converting precision."""
    return torch.float64 if str(precision or "").startswith("64") else torch.float32


def build(cfg: DictConfig) -> Experiment:
    """Every object of the config, each from its `_target_`; a bad value fails here, before any
    work, as a ConfigError naming its key. The optimizer is built once on a stand-in parameter so
    that its constructor checks its arguments now."""
    check_missing(cfg)
    settings = Settings.of(cfg, GROUPS)
    objects = {group: instantiate(cfg[group], group) for group in
               ("activation", "init", "model", "task", "regularizer", "optimizer")}
    try:
        objects["optimizer"]([torch.nn.Parameter(torch.zeros(1))])
    except checks.ConfigError as exc:
        raise exc.under("optimizer") from None
    check_keys(cfg.trainer, "trainer", ("logger", "callbacks", "default_root_dir"))
    for name, node in (cfg.get("logger") or {}).items():
        check_keys(node, f"logger.{name}", LOGGER_RUNTIME)
    for name, node in (cfg.get("callbacks") or {}).items():
        check_keys(node, f"callbacks.{name}", CALLBACK_RUNTIME)
    epochs = checks.positive_int("trainer.max_epochs", cfg.trainer.get("max_epochs"))
    return Experiment(settings, **objects, epochs=epochs, dtype=parameter_dtype(cfg.trainer.get("precision")),
                      config=cfg)


LOGGER_RUNTIME = ("run_dir", "resume_step", "job", "run_config")  # what a logger's constructor may ask for
CALLBACK_RUNTIME = ("task", "run_dir")                         # and a callback's


@dataclass(frozen=True)
class JobIdentity:
    """Name, group and tags that trackers and summaries use to find and compare runs."""

    name: str
    group: str
    tags: list[str]


def job_identity(exp: Experiment, group: str | None = None) -> JobIdentity:
    """The group is `group` (a multirun's sweep directory name), else the experiment or the task
    (a logger may set its own: logger.wandb.group)."""
    s = exp.settings
    tags = [f"task:{exp.task.name}", f"activation:{exp.activation.name}"]
    if s.experiment_name:
        tags.append(f"experiment:{s.experiment_name}")
    return JobIdentity(f"{exp.task.name}-{exp.activation.name}-s{s.seed}",
                       group or s.experiment_name or exp.task.name, tags + list(s.tags))


def build_loggers(exp: Experiment, run_dir: Path, job: JobIdentity, resume_step: int | None = None) -> list[Logger]:
    """conf/logger: each tracker of the run, given what its constructor asks for of this run."""
    return instantiate_all(exp.config.get("logger"), "logger", run_dir=run_dir, resume_step=resume_step, job=job,
                           run_config=OmegaConf.to_container(exp.config, resolve=True))


def fit(exp: Experiment, init: Init, run_dir: Path, stop: StopOnSignal, loggers: list[Logger],
        ckpt_path: Path | None = None) -> tuple[EnsembleModule, L.Trainer]:
    """Build the ensemble (drawn by `init`), the callbacks (conf/callbacks, conf/progress) and the
    trainer, and fit, from `ckpt_path` (a checked checkpoint) when given. Interrupted on Ctrl-C/SIGTERM."""
    module = EnsembleModule(exp.build_model(init), exp.task, exp.regularizer, exp.optimizer, exp.settings.log_every,
                            exp.settings.compile)
    callbacks = instantiate_all(exp.config.get("callbacks"), "callbacks", task=exp.task, run_dir=run_dir)
    bar = any(isinstance(callback, TQDMProgressBar) for callback in callbacks)
    trainer: L.Trainer = hydra_instantiate(
        exp.config.trainer, logger=loggers or False, callbacks=[stop, *callbacks],
        default_root_dir=str(run_dir), **({"enable_progress_bar": True} if bar else {}))
    try:
        trainer.fit(module, ckpt_path=str(ckpt_path) if ckpt_path else None)
    except SIGTERMException:  # Lightning's stop on SIGTERM, raised after the epoch's checkpoint
        raise Interrupted(signal.SIGTERM, stop.epoch) from None
    stop.check()
    return module, trainer


def train(exp: Experiment, init: Init, run_dir: Path, stop: StopOnSignal, loggers: list[Logger],
          ckpt_path: Path | None = None) -> tuple[dict, list[str], dict, dict | None]:
    """Fit from `init`, then evaluate; return final per-member metrics (tensors), each member's
    status, the members' training loss at the logged epochs (EnsembleModule.loss_history) and the
    compile decision (EnsembleModule.compile_record)."""
    module, trainer = fit(exp, init, run_dir, stop, loggers, ckpt_path)
    model = module.model
    model.eval()
    metrics = dict(exp.task.evaluate(model))
    metrics["final_train_loss"] = module.member_loss.cpu()
    metrics["initial_train_loss"] = module.initial_loss.cpu()
    metrics["zero_output_loss"] = module.zero_output_loss.cpu()
    status = member_status(module.member_loss, module.initial_loss, module.zero_output_loss,
                           exp.settings.blowup_factor)
    for i, sigma in enumerate(exact_spectral_norms(model)):
        metrics[f"spectral_norm/layer{i + 1}"] = sigma.cpu()
    exp.task.save_outputs(model, run_dir, label=exp.activation.name)
    for logger in trainer.loggers:
        logger.finalize("success")
    return metrics, status, module.loss_history(), module.compile_record()


def run(cfg: DictConfig, run_dir: Path, overrides: list[str] | None = None, group: str | None = None) -> dict:
    """Build, train (or measure) and write summary.json atomically; return its contents
    (runner.results.record.RunRecord.to_json()).

    Before training, the init scheme is resolved to numbers (init.C_W=auto from the theory; the
    config stays as written) and the kernel of the training inputs is forecast through the depth:
    both logged, and in the summary (`resolved_init`, `init_forecast`).
    One process at a time works in a run directory (run_dir/.lock, else RunDirInUse). A trained
    run is `completed` when every member trained, else `partly_diverged` or `diverged`
    (runner.results.summary.member_status: non-finite, blown up past blowup_factor, or no better
    than the zero function), and records each member's loss history and whether it converged
    (runner.results.summary.convergence); Ctrl-C or SIGTERM records `interrupted` and raises
    Interrupted; other failures are recorded as `failed` and re-raised. Once summary.json is
    written, the active trackers (W&B, TensorBoard) get it too (runner.trackers.reports).
    """
    numerics.use_kernels(Settings.of(cfg, GROUPS).numerics.kernels)  # before the run's first tensor operation
    exp = build(cfg)
    run_dir = Path(run_dir)
    with run_dir_lock(run_dir), StopOnSignal() as stop:
        return run_locked(exp, run_dir, overrides, group, stop).to_json()


def run_locked(exp: Experiment, run_dir: Path, overrides: list[str] | None, group: str | None,
               stop: StopOnSignal) -> RunRecord:
    """run() once it holds the run directory; resume=true starts from the newest whole checkpoint."""
    s, task = exp.settings, exp.task
    previous = RunRecord.read(run_dir)
    if s.skip_completed and previous and previous.status in FINISHED:
        log.info("skip_completed: %s already finished (%s)", run_dir, previous.status)
        return previous
    init, init_forecast = exp.resolve_init()
    if task.trains:
        (log.info if init_forecast.verdict == "stable" and not init_forecast.note else log.warning)(
            init_forecast.line())
    ckpt_path, resume_step = None, None
    if s.resume and task.trains:
        ckpt_path, resume_step = resume_checkpoint(run_dir / "checkpoints", s.resume == "fresh_if_corrupt")
        stop.epoch = resume_step or 0  # one optimizer step per epoch
        if ckpt_path:
            log.info("resuming from %s (step %d)", ckpt_path, resume_step)
        else:
            log.info("resume=%s but no checkpoint in %s; starting from scratch", s.resume, run_dir / "checkpoints")
    keep_freed_memory()
    if s.threads:
        torch.set_num_threads(s.threads)
    job = job_identity(exp, group)
    loggers = build_loggers(exp, run_dir, job, resume_step)
    record = RunRecord(
        RUNNING, task=task.name, activation=exp.activation.name, overrides=list(overrides or []), seed=s.seed,
        ensemble_size=s.ensemble.size, name=job.name, group=job.group, tags=job.tags, host=socket.gethostname(),
        slurm_job_id=os.environ.get("SLURM_JOB_ID"), init=OmegaConf.to_container(exp.config.init, resolve=True),
        resolved_init=init.as_dict(), init_forecast=init_forecast.as_dict(),
        criticality=criticality(exp.activation).as_dict(),
        numerics=numerics.record(s.numerics.kernels, run_device(exp.config.trainer) if task.trains else "cpu",
                                 exp.dtype))
    start = time.time()
    try:
        L.seed_everything(s.seed, verbose=False)
        if task.trains:
            metrics, members, history, compiled = train(exp, init, run_dir, stop, loggers, ckpt_path)
            record.compile = compiled  # whether the steps were compiled, from which epoch, and why
            record.member_status = members
            record.diverged_members = sum(m != "ok" for m in members)
            record.status = run_status(members)
            record.loss_history = history
            record.member_converged, record.member_improvement = convergence(history, s.convergence_tail,
                                                                             s.convergence_tol)
        else:
            metrics = task.measure(exp.networks(init), run_dir)
            record.status = COMPLETED
        record.metrics = {name: member_stats(values) for name, values in metrics.items()}
    except Interrupted as exc:
        record.status, record.signal, record.epoch = INTERRUPTED, exc.signal_name, exc.epoch
        raise
    except Exception as exc:
        record.status, record.error = "failed", f"{type(exc).__name__}: {exc}"
        record.traceback = traceback.format_exc()
        raise
    finally:
        record.duration_s = round(time.time() - start, 3)
        record.config = OmegaConf.to_container(exp.config, resolve=True)
        try:
            record.write(run_dir)
        except DiskFull:  # when the run already fails, its own error (maybe this disk) goes on
            if record.status not in ("failed", INTERRUPTED):
                raise
        report_to_trackers(loggers, record, run_dir)
    return record


def headline(record: RunRecord, keys: tuple[str, ...] | None = None) -> str:
    """A few final metrics as 'name mean ± std' lines for the console."""
    lines = []
    for name in record.metric_names():
        stats = record.stats(name)
        if (keys and name not in keys) or name.startswith("spectral_norm/") or stats["mean"] is None:
            continue
        lines.append(f"  {name:<22} {stats['mean']:.4g} ± {stats['std']:.2g}")
    return "\n".join(lines)
