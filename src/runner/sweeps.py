"""Sweep plans: named sweeps run through one launcher (SweepPlan, shared by reproduce.py and
runner.screen), each sweep's jobs as Hydra expands them, running a sweep, and the runtime
estimates made before anything runs.

conf/reproduce/<scale>.yaml names sweeps (`sweeps: {name: {experiment, overrides}}`), the launcher
every sweep uses and the verdicts' level (`verdicts.alpha`); conf/screen/<scale>.yaml names a
screen's panel, which runner.screen turns into sweeps of the same kind. Each sweep is an ordinary
multirun of `python -m runner` into <out>/runs/<sweep>, with skip_completed=true and resume=true,
so running it again finishes what a killed run left and skips what is done.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
from omegaconf import OmegaConf

from runner.config import CONF_DIR, command_jobs, compose, launcher_config
from runner.results.files import write_bytes_atomic
from runner.run import Experiment, build, fit, keep_freed_memory, run
from runner.training.callbacks import StopOnSignal
from runner.training import compiled

ROOT = Path(CONF_DIR).parent
LIGHTNING_STEP_S = 1e-3  # Lightning's own cost per training step on CPU: the GPU estimate's floor


def load_plan(scale: str) -> dict:
    """conf/reproduce/<scale>.yaml as plain data."""
    path = Path(CONF_DIR) / "reproduce" / f"{scale}.yaml"
    return OmegaConf.to_container(OmegaConf.load(path), resolve=True)


def scales() -> list[str]:
    """The plans of conf/reproduce/."""
    return sorted(path.stem for path in (Path(CONF_DIR) / "reproduce").glob("*.yaml"))


def load_alpha(plan: dict, scale: str) -> float:
    """verdicts.alpha of the plan: the level of every test behind a verdict."""
    alpha = plan.get("verdicts", {}).get("alpha")
    if not (isinstance(alpha, (int, float)) and not isinstance(alpha, bool) and 0 < alpha < 1):
        raise ValueError(f"conf/reproduce/{scale}.yaml: verdicts.alpha={alpha!r} is invalid: must be a number in (0, 1)")
    return float(alpha)


def sweep_jobs(experiment: str, overrides: list[str], config_dir: Path | None = None) -> list[list[str]]:
    """The override lists of every job of `python -m runner -m experiment=<experiment> <overrides>`
    (with a user's --config-dir): the preset's hydra.sweeper.params, then the command line (which
    replaces a swept key), each job composed (runner.config.command_jobs, the entrypoint's own check)."""
    return command_jobs([f"experiment={experiment}", *overrides], multirun=True, config_dir=config_dir)


def work(job_overrides: list[str]) -> tuple[float, int]:
    """(relative work, training steps) of one job: steps x members x depth x the task's cost of one
    step (Task.cost: network inputs x width², or what a measuring task draws). Only ratios between
    scales of one sweep are used, so each task's constant factor cancels."""
    return job_work(build(compose(*job_overrides)))


def job_work(exp: Experiment) -> tuple[float, int]:
    steps = exp.epochs if exp.task.trains else 1
    size = steps * exp.settings.ensemble.size * exp.model.depth * exp.task.cost(exp.model.width)
    return float(size), steps


class TrainingTime(NamedTuple):
    """`total`: seconds of a training, its setup included; `step`: seconds per epoch after its
    first chunk (the progress callback's short warm-up chunk: runner.training.callbacks.ProgressPrinter);
    `epochs`: the epochs it trained (fewer than asked where every member diverged and it stopped)."""

    total: float
    step: float
    epochs: int


class StepClock(StopOnSignal):
    """StopOnSignal that also notes when each training chunk ends: (epochs done, perf_counter)."""

    def __init__(self):
        super().__init__()
        self.marks: list[tuple[int, float]] = []

    def on_train_epoch_end(self, trainer, module) -> None:
        super().on_train_epoch_end(trainer, module)
        self.marks.append((trainer.global_step, time.perf_counter()))


def time_training(*overrides: str, epochs: int, config_dir: Path | None = None) -> TrainingTime:
    """The time of `runner.run.fit` of `epochs` epochs with these overrides, setup of the model and
    trainer included (composing the config and building the task are not): CPU trainer, no
    loggers, progress lines only far apart, one checkpoint at the end, a throwaway directory, and
    the allocator setting every run gets; and the step time measured inside it, after the first
    chunk, which keeps the setup's noise out of it."""
    keep_freed_memory()
    exp = build(compose("trainer=cpu", "logger=none", "progress_every=1000000", *overrides,
                        f"trainer.max_epochs={epochs}", f"checkpoint_every={epochs}", config_dir=config_dir))
    with tempfile.TemporaryDirectory() as tmp, StepClock() as clock:
        start = time.perf_counter()
        init, _ = exp.resolve_init()
        fit(exp, init, Path(tmp), clock, loggers=[])
        total = time.perf_counter() - start
    (first, t_first), (last, t_last) = clock.marks[0], clock.marks[-1]
    return TrainingTime(total, (t_last - t_first) / (last - first) if last > first else total / max(last, 1), last)


def estimate(plan: dict, names: list[str], timings_path: Path, probed: dict | None = None) -> list[str]:
    """Lines of the runtime estimate printed before a run: per sweep, the wall time a timing probe
    here measured (`probed`: runs/estimates.json of `reproduce.py --estimate` as `read_estimates`
    gives it for the plan, with its date) where there is one of the sweep as it stands, else the
    committed smoke run's mean job durations (reports/smoke/timings.json) scaled by work (a rough
    guide: work ratios miss what sets a large job's cost, memory traffic and compiled steps); one
    GPU as a floor of Lightning's per-step cost (these models are tiny, so a GPU run is bound by
    per-step overhead)."""
    smoke = load_plan("smoke")["sweeps"]
    timings = json.loads(timings_path.read_text()) if timings_path.exists() else {}
    walls, stale = (probed or {}).get("sweeps") or {}, set((probed or {}).get("stale") or ())
    lines, total, gpu_floor, unknown, by_probe = [], 0.0, 0.0, 0, 0
    for name in names:
        spec = plan["sweeps"][name]
        jobs = sweep_jobs(spec["experiment"], spec["overrides"])
        size, steps = work(jobs[0])
        gpu_floor += len(jobs) * steps * LIGHTNING_STEP_S
        if name in walls:
            total, by_probe = total + walls[name], by_probe + 1
            lines.append(f"  {name:12s} {len(jobs):3d} jobs: ~{duration(walls[name])} (probed here)")
        elif name in timings and name in smoke:
            ref, _ = work(sweep_jobs(smoke[name]["experiment"], smoke[name]["overrides"])[0])
            per_job = timings[name] * size / ref
            total += per_job * len(jobs)
            retired = "; the probe here timed other overrides" if name in stale else ""
            lines.append(f"  {name:12s} {len(jobs):3d} jobs x ~{duration(per_job)} (smoke job time x work ratio{retired})")
        else:
            unknown += 1
            lines.append(f"  {name:12s} {len(jobs):3d} jobs (no probe here and no smoke timing to scale from)")
    sources = [f"{by_probe} probed here {probed.get('probed', '')}".rstrip()] if by_probe else []
    if by_probe < len(names) - unknown:
        sources.append(f"{len(names) - unknown - by_probe} scaled from smoke job times (`--estimate` probes them)")
    cpu = duration(total) + (f" + {unknown} sweeps with no estimate" if unknown else "")
    lines.append(f"  this CPU: ~{cpu} ({'; '.join(sources) or 'nothing to estimate from'})")
    lines.append(f"  one GPU: not measured here (no GPU in this session); floor ~{duration(gpu_floor)} "
                 f"from Lightning's ~{LIGHTNING_STEP_S * 1e3:.0f} ms per step alone")
    return lines


PROBE_STEPS = 24        # epochs of a probe: its step time is measured over the last 21 (time_training)
PROBE_MEMBERS = 16      # members of a probe at most. Below this a step of these small nets costs far less
                        # than members x one member's (per-step overhead dominates), so a probe trains
                        # the job's own members; a larger ensemble is probed at 16 and scaled linearly
PROBE_KINDS = 3         # job kinds timed per sweep; the others scale the nearest one's step by work


def job_kind(exp: Experiment) -> tuple:
    """What sets a job's cost per step: its work per step (members x points x width^2 x depth,
    `job_work`), the task, the activation, the penalty and the optimizer (targets, seeds and learning
    rates of one size cost the same)."""
    size, steps = job_work(exp)
    reg = exp.regularizer
    return (size / max(steps, 1), exp.task.name, exp.activation.label, type(reg).__name__,
            bool(getattr(reg, "coef", 0)), getattr(exp.optimizer, "func", exp.optimizer))


def probe_overrides(exp: Experiment, overrides: list[str]) -> tuple[list[str], float]:
    """A training job's overrides for its probe, and the factor from the probe's step time to the
    job's: at most PROBE_MEMBERS members, and eager steps where the task compiles (a compile per
    kind would take the probe's budget; compiled steps run faster than this projects)."""
    members = exp.settings.ensemble.size
    probe = min(members, PROBE_MEMBERS)
    eager = ["task.compile=false"] if getattr(exp.task, "compile", False) else []
    return [*overrides, f"ensemble.size={probe}", *eager], members / probe


class SweepProbe(NamedTuple):
    """What a timing probe measured of one sweep: each job's projected seconds (`times`), the
    seconds its process spends composing and building one job before any job starts (`check`:
    the entrypoint checks every job of a multirun first), and which job kinds were timed."""

    times: list[float]
    check: float
    note: str


def job_seconds(epochs: int, setup: float, step: float, extra: float) -> float:
    """A training job's projected seconds: model and trainer setup, its epochs at the probe's step
    time, and what it costs besides training (evaluation, plots, summary)."""
    return setup + epochs * step + extra


def projected_seconds(exp: Experiment, eager_s: float) -> float:
    """The training time of a run at `eager_s` seconds per eager step, under its `compile` setting
    as runner.training.compiled would run it: every step eager, or the first steps eager and the
    rest compiled (the compile included), from this machine's record or the priors."""
    mode, epochs = exp.settings.compile, exp.epochs
    optimizer = exp.optimizer([torch.nn.Parameter(torch.zeros(1))])
    if mode is False or compiled.refusal(exp.task, exp.regularizer, optimizer,
                                         str(exp.config.trainer.get("precision"))):
        return epochs * eager_s
    first = 1 if mode is True else compiled.PROBE_STEPS + 1
    if epochs <= first:
        return epochs * eager_s
    key = compiled.step_key(exp.activation.label, exp.task.train_batch(), exp.model.depth, exp.model.width,
                            exp.settings.ensemble.size, exp.dtype, exp.regularizer, exp.task.name)
    numbers = compiled.plan(eager_s, epochs - first, key)
    if mode == "auto" and not numbers["compile"] or "ratio" not in numbers:
        return epochs * eager_s
    return first * eager_s + numbers["compile_s"] + (epochs - first) * eager_s * numbers["ratio"]


def probe_sweep(spec: dict, job_overrides: list[str], config_dir: Path | None = None) -> SweepProbe:
    """Each job's projected seconds from a short timing probe here (probe_overrides). Up to
    PROBE_KINDS job kinds, each size first: the training of the kind's first job (runner.run.fit:
    model, init, trainer and PROBE_STEPS steps), for its setup and step time; the first kind also
    once end to end (task, evaluation, plots, summary: what a job costs besides training). A kind
    whose every member diverged at once stopped there, as its jobs will, and stands for no other.
    A kind not timed takes the step of the nearest timed one, scaled by the work per step
    (`job_kind`). Tasks that train nothing run their first job whole, at its own size. With a
    user's `config_dir` (their own activations and presets)."""
    jobs = sweep_jobs(spec["experiment"], spec["overrides"], config_dir)
    began = time.perf_counter()
    exps = [build(compose(*job, *job_overrides, config_dir=config_dir)) for job in jobs]
    check = (time.perf_counter() - began) / max(len(jobs), 1)
    job_kinds = [job_kind(exp) for exp in exps]
    kinds = list(dict.fromkeys(job_kinds))
    by_size = list(dict.fromkeys([*{k[0]: k for k in reversed(kinds)}.values(), *kinds]))  # each size first
    first = {kind: i for i, kind in reversed(list(enumerate(job_kinds)))}
    step_of: dict[tuple, float] = {}  # kind -> seconds per step of the whole job
    setup_of: dict[tuple, float] = {}  # kind -> seconds of building the task, model and trainer
    whole: dict[tuple, float] = {}   # kind -> seconds of a whole job (tasks that train nothing)
    stopped: dict[tuple, float] = {}  # kind -> seconds of a job whose every member diverged at once
    extra = 0.0                      # per job: evaluation and outputs
    for kind in by_size + [k for k in kinds if k not in by_size]:
        if len(step_of) + len(whole) >= PROBE_KINDS:
            break
        i = first[kind]
        with tempfile.TemporaryDirectory() as tmp:
            if not exps[i].task.trains:
                start = time.perf_counter()
                run(compose(*jobs[i], *job_overrides, "logger=none", config_dir=config_dir), Path(tmp))
                whole[kind] = time.perf_counter() - start
                continue
            overrides, scale = probe_overrides(exps[i], [*jobs[i], *job_overrides])
            if not step_of:  # end to end once: evaluation, outputs and the summary besides training
                start = time.perf_counter()
                run(compose(*overrides, "logger=none", f"trainer.max_epochs={PROBE_STEPS}",
                            f"checkpoint_every={PROBE_STEPS}", config_dir=config_dir), Path(tmp))
                end_to_end = time.perf_counter() - start
        timing = time_training(*overrides, epochs=PROBE_STEPS, config_dir=config_dir)
        if timing.epochs < PROBE_STEPS:  # it stopped: every member diverged; its jobs stop alike
            stopped[kind] = timing.total
            continue
        if not step_of:
            extra = max(end_to_end - timing.total, 0.0)
        setup_of[kind] = max(timing.total - PROBE_STEPS * timing.step, 0.0)
        step_of[kind] = timing.step * scale

    def nearest(kind: tuple) -> tuple[float, float]:
        """(setup, step) of a kind not timed: the timed kind nearest in work per step, scaled."""
        timed = min(step_of, key=lambda k: abs(np.log(max(k[0], 1e-30) / max(kind[0], 1e-30))))
        return setup_of[timed], step_of[timed] * kind[0] / max(timed[0], 1e-30)

    times = []
    for exp, kind in zip(exps, job_kinds):
        if kind in stopped:
            times.append(extra + stopped[kind])
        elif not exp.task.trains or not step_of:
            times.append(whole.get(kind, float(np.mean(list(whole.values()))) if whole else 0.0))
        else:
            setup, step = (setup_of[kind], step_of[kind]) if kind in step_of else nearest(kind)
            step = projected_seconds(exp, step) / exp.epochs  # the mean step as its `compile` runs it
            times.append(job_seconds(exp.epochs, setup, step, extra))
    timed = len(step_of) + len(whole) + len(stopped)
    note = f"{timed} of {len(kinds)} job kinds timed" if timed < len(kinds) else f"{len(kinds)} job kinds timed"
    return SweepProbe(times, check, note)


def makespan(times: list[float], workers: int) -> float:
    """Wall time of jobs handed in order to the first free of `workers` (joblib's dispatch)."""
    free = [0.0] * max(1, workers)
    for t in times:
        free[free.index(min(free))] += t
    return max(free)


def queues(seconds: dict[str, float], n: int) -> list[list[str]]:
    """Sweeps (name -> their jobs' seconds, one worker) split into `n` queues of near-equal time:
    the longest first onto the queue with the least so far (LPT); each queue keeps the given order,
    so that short sweeps still end first."""
    load, chosen = [0.0] * max(1, n), [set() for _ in range(max(1, n))]
    for name in sorted(seconds, key=lambda k: -seconds[k]):
        q = load.index(min(load))
        load[q] += seconds[name]
        chosen[q].add(name)
    return [[name for name in seconds if name in c] for c in chosen if c]


def queued_wall(seconds: dict[str, float], n: int, startup: float) -> float:
    """Wall time of the sweeps run as `n` queues of one worker each (`queues`), a process start per sweep."""
    return max(sum(seconds[name] + startup for name in queue) for queue in queues(seconds, n))


def launcher_workers(launcher: list[str], config_dir: Path | None = None) -> int:
    """The jobs a launcher runs side by side, read from its composed config (conf/hydra/launcher over
    the plugin's defaults): joblib's n_jobs (a negative one as joblib counts it: -1 is every CPU),
    submitit's array_parallelism (a SLURM array), else 1: Hydra's basic launcher runs one job at a
    time (submitit's local launcher starts every job at once, so there 1 is an upper bound)."""
    node = launcher_config(launcher, config_dir)
    if node.get("n_jobs") is not None:
        n = int(node.n_jobs)
        return max(1, n if n > 0 else (os.cpu_count() or 1) + 1 + n)
    if node.get("array_parallelism") is not None:
        return max(1, int(node.array_parallelism))
    return 1


def sweep_wall(times: list[float], workers: int, startup: float, check: float) -> float:
    """A sweep's wall time: its own process start (`startup`, a Python importing the runner), the
    check of every job before any starts (`check` seconds each), the workers' own process start
    when jobs run in parallel (joblib's start together and keep their process for every job), and
    the jobs handed to the first free worker (`makespan`)."""
    return startup + check * len(times) + (startup if workers > 1 else 0.0) + makespan(times, workers)


def process_start() -> float:
    """Seconds a fresh Python takes to import the runner (torch and Lightning included), here now."""
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import runner.run"], cwd=ROOT, check=True)
    return time.perf_counter() - start


def duration(seconds: float) -> str:
    """'42 s', '12 min' or '3.1 h'."""
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def job_overrides(launcher: list[str]) -> list[str]:
    """The launcher's overrides that reach every job (such as threads=1), not Hydra's own."""
    return [o for o in launcher if not o.lstrip("+~").startswith("hydra") and "=" in o]


def one_worker(launcher: list[str], config_dir: Path | None = None) -> list[str]:
    """The launcher run one job at a time: joblib's n_jobs or submitit's array_parallelism set to 1."""
    limits = ("hydra.launcher.n_jobs=", "hydra.launcher.array_parallelism=")
    node = launcher_config(launcher, config_dir)
    key = "n_jobs" if node.get("n_jobs") is not None else "array_parallelism" if "array_parallelism" in node else None
    return [o for o in launcher if not o.startswith(limits)] + ([f"hydra.launcher.{key}=1"] if key else [])


@dataclass
class SweepPlan:
    """Named sweeps run through one launcher: what `reproduce.py` runs for a scale of the papers
    (conf/reproduce/<scale>.yaml) and `runner.screen` for an activation (conf/screen/<scale>.yaml).

    Each sweep ({experiment, overrides}) is an ordinary multirun of `python -m runner` into
    <runs>/<name>, with skip_completed and resume, started in `cwd` (where a user's own modules
    import from) with a user's `config_dir`. The plan knows its workers from any launcher
    (`launcher_workers`: joblib's n_jobs, a SLURM array's array_parallelism), times itself here
    before anything runs (`estimate`), and runs its sweeps one after another or as queues side by
    side (`run`), each sweep's wall time and workers going into <runs>/walls.json as it ends."""

    sweeps: dict[str, dict]
    launcher: list[str]
    cwd: Path = ROOT
    config_dir: Path | None = None

    def workers(self) -> int:
        return launcher_workers(self.launcher, self.config_dir)

    def estimate(self, names: list[str] | None = None, walls: dict | None = None, job_seconds: dict | None = None,
                 counted: Callable[[], dict[str, float]] | None = None) -> Iterator[str]:
        """Lines of the probe estimate, each as soon as it is known: the process start, what
        `counted` times here first (name -> seconds, such as a screen's theory card), then per sweep
        its jobs' projected times (`probe_sweep`) and its wall time with the launcher's parallel
        jobs (`sweep_wall`: process starts and the check of every job counted), then the total,
        sweep after sweep and, with several workers, as that many queues of one worker (`run`'s
        queues). Each sweep's projected wall seconds go into `walls`, and its jobs' seconds on one
        worker (checks included) into `job_seconds`, by name, when given."""
        names = list(self.sweeps) if names is None else names
        workers, overrides = self.workers(), job_overrides(self.launcher)
        threads = next((int(o.split("=", 1)[1]) for o in overrides if o.startswith("threads=")), None)
        if threads:
            torch.set_num_threads(threads)
        startup = process_start()
        yield f"  process start {startup:.1f} s (once per sweep, once more for its parallel workers)"
        total = cpu = 0.0
        for name, seconds in (counted() if counted else {}).items():
            total += seconds
            yield f"  {name:24s} ~{duration(seconds)} (run here)"
        serial: dict[str, float] = {}  # name -> its jobs on one worker, checks included
        logging.getLogger("runner").setLevel(logging.ERROR)  # the probe's own runs: no forecast lines
        for name in names:
            began = time.perf_counter()
            probe = probe_sweep(self.sweeps[name], overrides, self.config_dir)
            wall = sweep_wall(probe.times, workers, startup, probe.check)
            total, cpu = total + wall, cpu + sum(probe.times)
            serial[name] = sum(probe.times) + probe.check * len(probe.times)
            if walls is not None:
                walls[name] = round(wall, 1)
            if job_seconds is not None:
                job_seconds[name] = round(serial[name], 1)
            yield (f"  {name:24s} {len(probe.times):3d} jobs, {duration(min(probe.times))}-"
                   f"{duration(max(probe.times))} each ({duration(sum(probe.times))} of job time): ~{duration(wall)} "
                   f"on {workers} workers ({probe.note}; probe {time.perf_counter() - began:.0f} s)")
        queued = (f"; ~{duration(queued_wall(serial, workers, startup))} as {workers} queues of one worker "
                  f"(--queues {workers})" if 1 < workers <= len(names) else "")
        yield (f"  total ~{duration(total)} wall sweep after sweep ({duration(cpu)} of job time){queued}, measured "
               "on this machine now: a loaded machine projects longer")

    def run(self, runs: Path, names: list[str] | None = None, extra: list[str] | tuple = (), n_queues: int = 1,
            probed_in: Path | None = None) -> dict[str, dict]:
        """Run the sweeps `names` (default all) into `runs` with `extra` overrides appended: one after
        another with the launcher's workers, or with n_queues > 1 as that many queues side by side,
        each one job at a time (`one_worker`), balanced by the probed job seconds in the
        estimates.json of `probed_in` (default `runs`; written by `record_estimates`; sweeps without
        a probe of their current spec count as equal). Prints a line per sweep as it ends and
        records its wall time and workers in runs/walls.json (`record_wall`); returns name ->
        run_sweep's record."""
        names = list(self.sweeps) if names is None else names
        ran, lock, width = {}, threading.Lock(), max(map(len, names), default=0)

        def run_queue(queue: list[str], launcher: list[str]) -> None:
            for name in queue:
                done = run_sweep(name, self.sweeps[name], launcher, list(extra), runs, self.cwd, self.config_dir)
                with lock:
                    ran[name] = done
                    record_wall(runs, name, done["seconds"], launcher_workers(launcher, self.config_dir))
                    status = "ok" if done["rc"] == 0 else f"exit {done['rc']} (see {runs / name}.log)"
                    print(f"  {name:{width}s} {duration(done['seconds']):>7s}  {status}", flush=True)

        if n_queues <= 1:
            run_queue(names, self.launcher)
            return ran
        record = read_estimates(probed_in or runs, self.sweeps)
        probed = {**record["sweeps"], **record["job_seconds"]}  # an older probe has walls only
        split = queues({name: probed.get(name, 1.0) for name in names}, n_queues)
        for i, queue in enumerate(split):
            print(f"  queue {i + 1}: {', '.join(queue)}", flush=True)
        threads = [threading.Thread(target=run_queue, args=(queue, one_worker(self.launcher, self.config_dir))) for queue in split]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return ran


def record_estimates(runs: Path, walls: dict[str, float], job_seconds: dict[str, float],
                     sweeps: dict[str, dict]) -> None:
    """Merge these sweeps' probed wall seconds (`walls`, on the launcher's workers) and job seconds
    (`job_seconds`, on one worker: what SweepPlan.run's queues balance) into runs/estimates.json,
    which a report puts beside each sweep's actual wall time, with the spec each probe timed
    (`sweeps`: name -> experiment and overrides), so a later change of a sweep retires its probe,
    and when each sweep was probed."""
    record = read_estimates(runs)
    record["sweeps"] = {**record.get("sweeps", {}), **walls}
    record["job_seconds"] = {**record.get("job_seconds", {}), **job_seconds}
    record["specs"] = {**record.get("specs", {}), **{name: probe_spec(sweeps[name]) for name in walls}}
    record["probed"] = f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC"  # the latest probe
    record["probed_at"] = {**record.get("probed_at", {}), **{name: record["probed"] for name in walls}}
    runs.mkdir(parents=True, exist_ok=True)
    write_bytes_atomic(runs / "estimates.json", (json.dumps(record, indent=1) + "\n").encode())


def probe_spec(spec: dict) -> dict:
    """What a timing probe of a sweep timed: its experiment and overrides."""
    return {"experiment": spec["experiment"], "overrides": list(spec.get("overrides") or [])}


def read_estimates(runs: Path, sweeps: dict[str, dict] | None = None) -> dict:
    """runs/estimates.json (`record_estimates`), or {} before any probe. Given the plan's `sweeps`,
    the probes of each sweep as it stands now, every key present (empty before any probe):
    "sweeps" (wall seconds) and "job_seconds" of the sweeps not "stale" (those whose experiment or
    overrides changed since their probe, or whose probe did not record them), and "probed_at"
    (every probed sweep -> when; a file older than per-sweep dates gives its one date)."""
    path = runs / "estimates.json"
    record = json.loads(path.read_text()) if path.exists() else {}
    if sweeps is None:
        return record
    specs = record.get("specs") or {}
    probed = set(record.get("sweeps") or {}) | set(record.get("job_seconds") or {})
    stale = sorted(n for n in probed if n not in sweeps or specs.get(n) != probe_spec(sweeps[n]))
    dates = {n: record["probed"] for n in probed} if record.get("probed") else {}
    dates.update(record.get("probed_at") or {})

    def current(values: dict | None) -> dict:
        return {n: v for n, v in (values or {}).items() if n not in stale}

    return {**record, "sweeps": current(record.get("sweeps")), "job_seconds": current(record.get("job_seconds")),
            "probed_at": dates, "stale": stale}


def read_walls(runs: Path) -> dict:
    """runs/walls.json (`record_wall`), or {} before any sweep ended."""
    path = runs / "walls.json"
    return json.loads(path.read_text()) if path.exists() else {}


def record_wall(runs: Path, name: str, seconds: float, workers: int) -> None:
    """Add one sweep's wall time to runs/walls.json (sweep -> seconds, its launcher's parallel
    workers and when it finished), which a report puts beside the sweep's estimate."""
    walls = read_walls(runs)
    walls[name] = {"seconds": round(seconds, 1), "workers": workers,
                   "finished": f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC"}
    write_bytes_atomic(runs / "walls.json", (json.dumps(walls, indent=1) + "\n").encode())


def run_sweep(name: str, spec: dict, launcher: list[str], extra: list[str], runs: Path, cwd: Path = ROOT,
              config_dir: Path | None = None) -> dict:
    """One multirun through the normal entrypoint, in `cwd` (where a user's own modules import
    from), with a user's --config-dir; its console output goes to runs/<name>.log."""
    cmd = [sys.executable, "-m", "runner", "-m", *(["--config-dir", str(config_dir)] if config_dir else []),
           f"experiment={spec['experiment']}", *spec["overrides"], *extra, *launcher,
           f"hydra.sweep.dir={runs / name}", "skip_completed=true", "resume=true"]
    runs.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    with open(runs / f"{name}.log", "w") as log:
        log.write(" ".join(cmd) + "\n")
        log.flush()
        rc = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=cwd).returncode
    return {"rc": rc, "seconds": time.perf_counter() - start, "command": " ".join(cmd[2:])}


