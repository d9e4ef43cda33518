"""The experiment trackers conf/logger/*.yaml names by `_target_`: each entry of `logger` is one.

metrics.csv is part of the run-directory contract, so every logger option except `none` also
writes it; `wandb` and `tensorboard` add their tracker beside it. A constructor gets, by name,
what it asks for of the run (runner.run.build_loggers: run_dir, resume_step, job, run_config).
What a tracker gets when the run ends (final metrics, status, resolved init, plots) is
runner.trackers.reports.
"""

from __future__ import annotations

import csv
import logging
import netrc
import os
from pathlib import Path

from lightning.fabric.loggers.logger import rank_zero_experiment
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger, WandbLogger
from lightning.pytorch.loggers.csv_logs import ExperimentWriter
from lightning.pytorch.utilities import rank_zero_only

from runner import checks
from runner.faults import DiskFull, naming_full_disk
from runner.results.files import csv_bytes, write_bytes_atomic

log = logging.getLogger("runner")


def wandb_credentials_configured() -> bool:
    """True when the user has set up online W&B (API key in the environment or ~/.netrc)."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    try:
        return netrc.netrc().authenticators("api.wandb.ai") is not None
    except (FileNotFoundError, netrc.NetrcParseError):
        return False


def wandb_settings(**values):
    """wandb.Settings(**values), imported only where a W&B run is made."""
    import wandb  # startup: wandb loads only where a W&B run is made

    return wandb.Settings(**values)


def wandb_mode(requested: str) -> str:
    """`auto` means online when credentials exist and WANDB_MODE does not say otherwise."""
    if requested != "auto":
        return requested
    if os.environ.get("WANDB_MODE"):
        return os.environ["WANDB_MODE"]
    return "online" if wandb_credentials_configured() else "offline"


class RunnerWandbLogger(WandbLogger):
    """Lightning's WandbLogger for one run: named and tagged by the run's job identity, in the
    group `group` (null: the job's group, a multirun's sweep name or the experiment), with the
    run's whole config. Its training rows under train/ (losses, penalties) keep their minimum and
    their last value as the run summary (`train/loss/mean` -> {min, last}), so a runs table ranks
    runs by their best loss and still shows where each ended. Each key is defined by name when
    first logged: W&B picks one of two matching globs (Lightning's `*` and a `train/*`) arbitrarily."""

    def __init__(self, project: str, entity: str | None, group: str | None, tags: list, mode: str, job_type: str,
                 run_dir: Path, job, run_config: dict):
        checks.one_of("mode", mode, ("auto", "online", "offline", "disabled"))
        self._announce = wandb_mode(mode) == "offline"  # not _offline: Lightning uses that name
        quiet = {"settings": wandb_settings(silent=True)} if self._announce else {}
        super().__init__(project=project, entity=entity, group=group or job.group, name=job.name,
                         tags=list(tags or []) + list(job.tags), save_dir=str(run_dir), mode=wandb_mode(mode),
                         config=run_config, job_type=job_type, **quiet)
        self._wandb_init.pop("anonymous", None)  # Lightning passes anonymous=None, which W&B warns is deprecated
        self._defined: set[str] = set()
        self._announced = False

    @property
    @rank_zero_experiment
    def experiment(self):
        """The W&B run. Offline, W&B's own console lines are silenced (about 30 of them) and one
        line says where the run is and how to upload it."""
        run = super().experiment
        if self._announce and not self._announced and getattr(run, "settings", None) is not None:
            self._announced = True
            log.info("W&B offline run in %s; `wandb sync %s` uploads it", run.settings.sync_dir, run.settings.sync_dir)
        return run

    @rank_zero_only
    def log_metrics(self, metrics: dict, step: int | None = None) -> None:
        new = [key for key in metrics if key.startswith("train/") and key not in self._defined]
        for key in new:
            self.experiment.define_metric(key, step_metric="trainer/global_step", step_sync=True,
                                          summary="min,last")
        self._defined.update(new)
        super().log_metrics(metrics, step)


class ResumableCSVLogger(CSVLogger):
    """CSVLogger writing run_dir/metrics.csv that a resumed run appends to.

    A resumed run keeps the rows logged before the checkpoint it resumes from (step < resume_step),
    rewritten atomically, so the file covers the whole run and no step appears twice; a fresh run
    starts an empty file. On a full disk, metrics.csv is cut back to its last whole row (DiskFull).
    """

    def __init__(self, run_dir: Path, resume_step: int | None = None):
        super().__init__(save_dir=str(run_dir), name="", version="")
        self.resume_step = resume_step

    @property
    @rank_zero_experiment
    def experiment(self) -> ExperimentWriter:
        if self._experiment is None:
            path = Path(self.log_dir) / ExperimentWriter.NAME_METRICS_FILE
            header, kept = [], []
            if self.resume_step is not None and path.exists():
                with path.open(newline="") as f:
                    reader = csv.DictReader(f)
                    header = list(reader.fieldnames or [])
                    kept = [r for r in reader if r.get("step") and int(r["step"]) < self.resume_step]
            self._experiment = KeepingExperimentWriter(log_dir=self.log_dir)
            if header:
                write_bytes_atomic(path, csv_bytes(header, kept))
                self._experiment.metrics_keys = sorted(header)
            else:
                path.unlink(missing_ok=True)
        return self._experiment

    @rank_zero_only
    def save(self) -> None:
        """Append the rows logged since the last save."""
        path = Path(self.log_dir) / ExperimentWriter.NAME_METRICS_FILE
        size = path.stat().st_size if path.exists() else 0
        try:
            with naming_full_disk(path):
                super().save()
        except DiskFull:
            if path.exists():
                os.truncate(path, size)
            raise


class KeepingExperimentWriter(ExperimentWriter):
    """Lightning's CSV writer, except that metrics.csv is never deleted or rewritten in place, so
    a full disk cannot lose its rows: ResumableCSVLogger decides what a starting run keeps, and a
    new column rewrites the file atomically."""

    def _check_log_dir_exists(self) -> None:
        pass

    def _rewrite_with_new_header(self, fieldnames: list[str]) -> None:
        with open(self.metrics_file_path, newline="") as f:
            rows = list(csv.DictReader(f))
        write_bytes_atomic(Path(self.metrics_file_path), csv_bytes(fieldnames, rows))


class RunTensorBoard(TensorBoardLogger):
    """TensorBoard event files under <run>/tensorboard. No hp_metric placeholder: runner.trackers.reports
    writes the HParams entry with the final metrics."""

    def __init__(self, run_dir: Path):
        super().__init__(save_dir=str(run_dir), name="tensorboard", version="", default_hp_metric=False)
