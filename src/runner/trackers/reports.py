"""What a run sends to its experiment trackers when it ends, read from its record (summary.json:
runner.results.record.RunRecord), and what `runner.aggregate --wandb` sends for a sweep.

W&B run summary (flat keys, so the runs table and parallel-coordinates panels can use them):
`final/<metric>/{mean,median,min,max}` for every final metric, `status`, `duration_s`,
`members/<fate>` (how many members ended ok, blown_up, diverged or any other fate in
member_status), `members/<flag>` (how many are true in each per-member boolean list such as
member_converged), `resolved_init/{C_W_first,C_W,C_b}` and `forecast/{verdict,leaves_at}`. The
run config gains `resolved_init`, `forecast` and `numerics` (the float kernels: runner.numerics),
so panels can group by them; the table
`member_values` holds one row per member (fate, flags, every metric); `plots/<name>` are the
run's plots; the run is tagged `status:<status>`. Training rows under train/ keep their minimum
and last value as summary (runner.trackers.loggers). TensorBoard gets the same numbers as the metrics of
its HParams tab, with the config, resolved init, forecast and status as hyperparameters. CSV
needs nothing.

New fields of summary.json flow through without code changes: new metrics, new member fates and
new per-member boolean lists.
"""

from __future__ import annotations

import csv
import io
import logging
from pathlib import Path

from lightning.pytorch.loggers import Logger, TensorBoardLogger, WandbLogger
from omegaconf import OmegaConf

from runner.config import CONF_DIR
from runner.results.jobs import Job
from runner.results.record import RunRecord
from runner.results.summary import FINISHED
from runner.trackers.loggers import wandb_mode

log = logging.getLogger("runner")

STATS = ("mean", "median", "min", "max")
FATES = ("ok", "blown_up", "diverged")  # counted even when zero; other fates when they occur
INIT_KEYS = ("C_W_first", "C_W", "C_b")


def member_flags(record: RunRecord) -> dict[str, list[bool]]:
    """The record's per-member boolean lists (e.g. member_converged), named without `member_`."""
    return {key.removeprefix("member_"): value for key, value in record.to_json().items()
            if isinstance(value, list) and len(value) == record.ensemble_size
            and all(isinstance(v, bool) for v in value)}


def init_fields(record: RunRecord) -> dict:
    """The init a run used (RunRecord.used_init: auto solved; for pytorch and xavier, the
    Gaussian-equivalent variances): scheme, C_W_first, C_W, C_b, None each for a run that failed
    before it was resolved."""
    init = record.used_init() or {}
    return {key: init.get(key) for key in ("scheme", *INIT_KEYS)}


def forecast_fields(record: RunRecord) -> dict:
    """The kernel forecast's verdict (stable, explodes, vanishes) and the layer it leaves the band at."""
    forecast = record.init_forecast or {}
    return {"verdict": forecast.get("verdict"), "leaves_at": forecast.get("leaves_at")}


def final_values(record: RunRecord) -> dict:
    """The run's comparison numbers and labels under flat keys (module docstring)."""
    out = {"status": record.status, "duration_s": record.duration_s}
    for name in record.metric_names():
        out.update({f"final/{name}/{stat}": record.stats(name).get(stat) for stat in STATS})
    fates = record.member_status or []
    if fates:
        out.update({f"members/{fate}": fates.count(fate) for fate in dict.fromkeys([*FATES, *fates])})
    out.update({f"members/{name}": sum(flags) for name, flags in member_flags(record).items()})
    out.update({f"resolved_init/{key}": value for key, value in init_fields(record).items() if key != "scheme"})
    out.update({f"forecast/{key}": value for key, value in forecast_fields(record).items()})
    if record.error:
        out["error"] = record.error
    return out


def member_table(record: RunRecord) -> tuple[list[str], list[list]]:
    """(columns, rows): one row per member of a trained run: its index (member_offset + k), fate,
    flags and its value of every per-member metric (None where not finite). No rows for a run
    without members (a failed start, a task that does not train)."""
    fates = record.member_status
    if not fates:
        return [], []
    n = len(fates)
    offset = record.setting("ensemble.member_offset") or 0
    flags = member_flags(record)
    metrics = {name: record.values(name) for name in record.metric_names() if len(record.values(name)) == n}
    columns = ["member", "status", *flags, *metrics]
    rows = [[offset + k, fates[k], *(f[k] for f in flags.values()), *(m[k] for m in metrics.values())]
            for k in range(n)]
    return columns, rows


def hyperparameters(record: RunRecord) -> dict:
    """TensorBoard's HParams columns: the run's config, resolved init, forecast and status
    (Lightning flattens the nesting with '/')."""
    return {**(record.config or {}), "resolved_init": init_fields(record),
            "forecast": forecast_fields(record), "numerics": record.numerics or {},
            "status": record.status}


def numeric_values(record: RunRecord) -> dict[str, float]:
    """The numbers of final_values (final metrics, member counts, duration) for TensorBoard."""
    return {key: float(value) for key, value in final_values(record).items()
            if isinstance(value, (int, float)) and not isinstance(value, bool)
            and not key.startswith(("resolved_init/", "forecast/"))}


def plots(run_dir: Path) -> list[Path]:
    """The run's plots (run_dir/plots/*.png)."""
    return sorted((Path(run_dir) / "plots").glob("*.png"))


def report_wandb(run, record: RunRecord, run_dir: Path) -> None:
    """Summary, config, member table, plots and status tag to a W&B run, which then finishes
    (a later run in the same process, a multirun job, starts its own)."""
    import wandb

    try:
        run.config.update({"resolved_init": init_fields(record), "forecast": forecast_fields(record),
                           "numerics": record.numerics}, allow_val_change=True)
        run.summary.update(final_values(record))
        media = {f"plots/{path.stem}": wandb.Image(str(path)) for path in plots(run_dir)}
        columns, rows = member_table(record)
        if rows:
            media["member_values"] = wandb.Table(columns=columns, data=rows)
        if media:
            run.log(media)
        run.tags = tuple(run.tags or ()) + (f"status:{record.status}",)
    finally:
        run.finish(exit_code=0 if record.status in FINISHED else 1)


def report_tensorboard(logger: TensorBoardLogger, record: RunRecord) -> None:
    """HParams entry (hyperparameters and final numbers) in the run's TensorBoard directory."""
    logger.log_hyperparams(hyperparameters(record), metrics=numeric_values(record))
    logger.finalize("success")


def report_to_trackers(loggers: list[Logger], record: RunRecord, run_dir: Path) -> None:
    """Send a run's record to each tracker among `loggers` (W&B, TensorBoard; CSV needs
    nothing). Never raises: a tracker's error is one warning line, and summary.json has it all."""
    for logger in loggers:
        try:
            if isinstance(logger, WandbLogger):
                report_wandb(logger.experiment, record, run_dir)
            elif isinstance(logger, TensorBoardLogger):
                report_tensorboard(logger, record)
        except Exception as exc:  # noqa: BLE001 - a tracker must never fail the run
            first_line = str(exc).splitlines()[0] if str(exc) else ""
            log.warning("%s did not get the run's summary (%s: %s); %s has it", type(logger).__name__,
                        type(exc).__name__, first_line, Path(run_dir) / "summary.json")


def wandb_target(jobs: list[Job], out: Path) -> dict:
    """Where a sweep's summary run goes: the jobs' W&B group (the one they share, else the output
    directory's name) and the logger settings of a job that used W&B (else conf/logger/wandb.yaml)."""
    settings = next((logger["wandb"] for job in jobs if "wandb" in (logger := job.record.setting("logger") or {})),
                    None)
    if settings is None:
        settings = OmegaConf.to_container(OmegaConf.load(Path(CONF_DIR) / "logger" / "wandb.yaml"))["wandb"]
    group_names = {job.record.group for job in jobs if job.record.group}
    return {"project": settings.get("project") or "runner", "entity": settings.get("entity"),
            "mode": wandb_mode(settings.get("mode") or "auto"),
            "group": settings.get("group") or (group_names.pop() if len(group_names) == 1 else out.name)}


def _number(text: str) -> float | None:
    return None if text == "" else float(text)


def csv_table(text: str):
    """A wandb.Table of a CSV text: its header the columns; a column whose cells all read as
    numbers (empty cells as None) holds floats, any other column (row labels) strings."""
    import wandb

    header, *rows = list(csv.reader(io.StringIO(text)))
    columns = list(zip(*rows)) if rows else [() for _ in header]
    typed = []
    for cells in columns:
        try:
            typed.append([_number(c) for c in cells])
        except ValueError:
            typed.append(list(cells))
    return wandb.Table(columns=header, data=[list(row) for row in zip(*typed)])


def summary_run(name: str, job_type: str, summary: dict, *, tables: dict[str, str] | None = None,
                plot_paths: list[Path] = (), project: str, entity: str | None, group: str, mode: str,
                save_dir: Path) -> Path:
    """One W&B run in group `group` that holds a result rather than a training: `summary` in its
    summary, each table (name -> CSV text) as a Table under `<job_type>/<name>`, the plots as images
    under plots/. Returns the run's local directory."""
    import wandb

    save_dir.mkdir(parents=True, exist_ok=True)
    run = wandb.init(project=project, entity=entity, group=group, name=name, job_type=job_type, tags=[job_type],
                     mode=mode, dir=str(save_dir))
    try:
        media = {f"{job_type}/{table}": csv_table(text) for table, text in (tables or {}).items()}
        media.update({f"plots/{path.stem}": wandb.Image(str(path)) for path in plot_paths})
        if media:
            run.log(media)
        run.summary.update(summary)
        return Path(run.dir).parent
    finally:
        run.finish()


def report_sweep(tables: dict[str, str], plot_paths: list[Path], counts: dict[str, int], *,
                 project: str, entity: str | None, group: str, mode: str, save_dir: Path) -> Path | None:
    """One summary run in W&B group `group`: each aggregate table (name -> CSV text) as a Table
    under `aggregate/<name>`, the comparison plots as images, and the job counts by status in its
    summary. Returns the run's local directory."""
    return summary_run(f"{group}-aggregate", "aggregate", {f"jobs/{status}": n for status, n in counts.items()},
                       tables=tables, plot_paths=plot_paths, project=project, entity=entity, group=group, mode=mode,
                       save_dir=save_dir)
