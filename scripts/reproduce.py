"""Reproduce both papers: run every preset sweep, check every claim, write reports/<scale>/REPORT.md.

    python scripts/reproduce.py --scale smoke                 # ~10 min on a 2-core CPU
    python scripts/reproduce.py --scale paper --launcher hydra/launcher=slurm hydra.launcher.partition=gpu
    python scripts/reproduce.py --scale smoke --only fig4,fig1 --report-only

The sweeps and their sizes are conf/reproduce/<scale>.yaml; the claims and their verdict rules
are runner.claims. Each sweep is an ordinary multirun of `python -m runner` into
<out>/runs/<sweep>, with skip_completed=true and resume=true, so running the command again
finishes what a killed run left and skips what is done. Before starting it prints a runtime
estimate scaled from the last smoke run on this machine.
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch
from hydra import compose as hydra_compose
from hydra import initialize_config_dir
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import OmegaConf

from runner.aggregate import Job, aggregate, collect, problems
from runner.claims import BEYOND, CLAIMS, Outcome, members, select, stats
from runner.config import CONF_DIR, compose
from runner.run import build_task
from runner.results import FINISHED, write_bytes_atomic
from runner.verdicts import CONTRADICTED, INCONCLUSIVE, REPRODUCED, VERDICTS

ROOT = Path(__file__).resolve().parent.parent
LIGHTNING_STEP_S = 1e-3  # Lightning's own cost per training step, measured on CPU (README, issue 2)
PIVOT_SWEEPS = {"table4", "table4_auto", "table5", "table5_auto"}  # the Table 4/5 pivot (activation x target)
SUITE = "pinn_suite"  # activation x equation, with a heat map
MEASURED = "runner measured (per test: n, p, effect [95% interval], converged members)"


def load_plan(scale: str) -> dict:
    path = Path(CONF_DIR) / "reproduce" / f"{scale}.yaml"
    return OmegaConf.to_container(OmegaConf.load(path), resolve=True)


def sweep_jobs(experiment: str, overrides: list[str]) -> list[list[str]]:
    """The override lists of every job of the sweep: the preset's hydra.sweeper.params, with the
    command line's overrides replacing a swept key, expanded as Hydra's basic sweeper does."""
    parser = OverridesParser.create()
    parsed = parser.parse_overrides(overrides)
    fixed = [o.input_line for o in parsed if not o.is_sweep_override()]
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = hydra_compose("config", [f"experiment={experiment}", *fixed], return_hydra_config=True)
    params = {k: str(v) for k, v in (cfg.hydra.sweeper.get("params") or {}).items()}
    for o in parsed:
        key = o.get_key_element()
        params.pop(key, None)
        if o.is_sweep_override():
            params[key] = ",".join(o.sweep_string_iterator())
    fixed_keys = {o.get_key_element() for o in parsed if not o.is_sweep_override()}
    grid = [[]]
    for key, values in params.items():
        if key in fixed_keys:
            continue
        grid = [job + [f"{key}={v}"] for job in grid for v in values.split(",")]
    return [[f"experiment={experiment}", *fixed, *job] for job in grid]


def work(job_overrides: list[str]) -> tuple[float, int]:
    """(relative work, training steps) of one job: steps x members x points x width^2 x depth
    (x C_W values x widths for the kernel tasks). Only ratios between scales of one sweep are used,
    so each task's constant factor cancels."""
    cfg = compose(*job_overrides)
    task = cfg.task
    steps = int(cfg.trainer.max_epochs) if task.name not in ("susceptibility", "kernel_init") else 1
    if task.get("n_collocation"):
        points = task.n_collocation
    elif task.get("n_train") and task.name != "digits":
        points = task.n_train
    elif task.get("n_points"):
        text = str(task.get("targets", {}).get(task.target, task.target))
        points = task.n_points ** (2 if "x1" in text else 1)
    else:
        points = 1 + int(task.get("n_random_inputs") or 0)
    widths = list(task.get("widths") or [cfg.model.width])
    cws = len(task.get("C_W_values") or [1])
    size = steps * cfg.ensemble.size * points * cfg.model.depth * sum(w * w for w in widths) * cws
    return float(size), steps


def estimate(plan: dict, names: list[str], timings_path: Path) -> list[str]:
    """Lines of the runtime estimate: this CPU from the committed smoke run's mean job durations
    (reports/smoke/timings.json) scaled by work; one GPU as a floor of Lightning's per-step cost
    (these models are tiny, so a GPU run is bound by per-step overhead)."""
    smoke = load_plan("smoke")["sweeps"]
    timings = json.loads(timings_path.read_text()) if timings_path.exists() else {}
    lines, cpu_total, gpu_floor, known = [], 0.0, 0.0, True
    for name in names:
        spec = plan["sweeps"][name]
        jobs = sweep_jobs(spec["experiment"], spec["overrides"])
        size, steps = work(jobs[0])
        gpu_floor += len(jobs) * steps * LIGHTNING_STEP_S
        if name in timings and name in smoke:
            ref, _ = work(sweep_jobs(smoke[name]["experiment"], smoke[name]["overrides"])[0])
            per_job = timings[name] * size / ref
            cpu_total += per_job * len(jobs)
            lines.append(f"  {name:12s} {len(jobs):3d} jobs x ~{_duration(per_job)}")
        else:
            known = False
            lines.append(f"  {name:12s} {len(jobs):3d} jobs (no smoke timing in {timings_path.name} to scale from)")
    cpu = _duration(cpu_total) + ("" if known else " + the sweeps without a smoke timing")
    lines.append(f"  this CPU, one job at a time: ~{cpu} (smoke job times x work ratio)")
    lines.append(f"  one GPU: not measured here (no GPU in this session); floor ~{_duration(gpu_floor)} "
                 f"from Lightning's ~{LIGHTNING_STEP_S * 1e3:.0f} ms per step alone")
    return lines


PROBE_STEPS = (3, 23)   # a job kind's step time: (t(23 steps) - t(3 steps)) / 20, setup included in both
PROBE_KINDS = 12        # at most this many job kinds timed per sweep; the others take the mean of their size's


def job_kind(job_overrides: list[str], cfg) -> tuple:
    """What sets a job's cost per step: its work per step (members x points x width^2 x depth,
    `work`), the task, the activation, the penalty and the optimizer (targets, seeds and learning
    rates of one size cost the same)."""
    size, steps = work(job_overrides)
    reg = cfg.get("regularizer") or {}
    return (size / max(steps, 1), cfg.task.name, cfg.activation.name, reg.get("_target_"), bool(reg.get("coef")),
            cfg.optimizer.get("_target_"))


def probe_sweep(spec: dict, job_overrides: list[str]) -> tuple[list[float], str]:
    """Each job's projected seconds from a short timing probe here: per job kind, a few training
    steps of its first job through the runner's own path (runner.run.train: model, init, trainer
    and steps), twice, for the step time and the setup; the first job once end to end at the probe's
    length (task, evaluation, plots, summary) for what a job costs besides training. Tasks that
    train nothing run their first job whole."""
    sys.path.insert(0, str(ROOT / "scripts"))
    from timing import time_training  # the runner's training path, timed (scripts/timing.py)
    from runner.run import run as run_job

    jobs = sweep_jobs(spec["experiment"], spec["overrides"])
    cfgs = [compose(*job, *job_overrides) for job in jobs]
    job_kinds = [job_kind([*job, *job_overrides], cfg) for job, cfg in zip(jobs, cfgs)]
    kinds = list(dict.fromkeys(job_kinds))
    by_size = list(dict.fromkeys([*{k[0]: k for k in reversed(kinds)}.values(), *kinds]))  # each size first
    probed = by_size[:PROBE_KINDS]
    first = {kind: i for i, kind in reversed(list(enumerate(job_kinds)))}
    per_kind: dict[tuple, tuple[float, float]] = {}  # kind -> (setup s, step s)
    whole: dict[tuple, float] = {}  # kind -> seconds of a whole job (tasks that train nothing)
    extra = 0.0  # per job: evaluation, outputs and a compile, beyond setup and steps
    for n, kind in enumerate(probed):
        i = first[kind]
        overrides = [*jobs[i], *job_overrides]
        with tempfile.TemporaryDirectory() as tmp:
            if not build_task(cfgs[i]).trains:
                start = time.perf_counter()
                run_job(compose(*overrides, "logger=none"), Path(tmp))
                whole[kind] = time.perf_counter() - start
                continue
            if n == 0:  # end to end once: the first call also pays a compile, if the task compiles
                start = time.perf_counter()
                run_job(compose(*overrides, "logger=none", f"trainer.max_epochs={PROBE_STEPS[0]}",
                                f"checkpoint_every={PROBE_STEPS[0]}"), Path(tmp))
                end_to_end = time.perf_counter() - start
        short, long = (time_training(*overrides, epochs=e) for e in PROBE_STEPS)
        step = max(long - short, 0.0) / (PROBE_STEPS[1] - PROBE_STEPS[0])
        per_kind[kind] = (max(short - PROBE_STEPS[0] * step, 0.0), step)
        if n == 0:
            extra = max(end_to_end - short, 0.0)
    def mean(kinds: list[tuple]) -> tuple[float, float]:
        return (float(np.mean([per_kind[k][0] for k in kinds])), float(np.mean([per_kind[k][1] for k in kinds])))

    times = []
    for cfg, kind in zip(cfgs, job_kinds):
        if kind in whole or (not per_kind and whole):
            times.append(whole.get(kind, np.mean(list(whole.values()))))
        else:
            same_size = [k for k in per_kind if k[0] == kind[0]]
            setup, step = per_kind.get(kind) or mean(same_size or list(per_kind))
            times.append(extra + setup + int(cfg.trainer.max_epochs) * step)
    note = f"{len(probed)} of {len(kinds)} job kinds timed" if len(probed) < len(kinds) else f"{len(kinds)} job kinds timed"
    return times, note


def makespan(times: list[float], workers: int) -> float:
    """Wall time of jobs handed in order to the first free of `workers` (joblib's dispatch)."""
    free = [0.0] * max(1, workers)
    for t in times:
        free[free.index(min(free))] += t
    return max(free)


def probe_estimate(plan: dict, names: list[str], launcher: list[str]) -> list[str]:
    """Lines of the probe estimate: per sweep, its jobs' projected times and its wall time with the
    launcher's parallel jobs (hydra.launcher.n_jobs, default 1), then the total. Process start is
    timed once here (a Python that imports the runner) and counted twice per sweep: the sweep's
    own process, then its workers (joblib's reuse theirs for every job of the sweep)."""
    workers = next((int(o.split("=", 1)[1]) for o in launcher if o.startswith("hydra.launcher.n_jobs=")), 1)
    job_overrides = [o for o in launcher if not o.startswith("hydra") and "=" in o]
    threads = next((int(o.split("=", 1)[1]) for o in job_overrides if o.startswith("threads=")), None)
    if threads:
        torch.set_num_threads(threads)
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import runner.run"], cwd=ROOT, check=True)
    startup = time.perf_counter() - start
    lines, total, cpu = [f"  process start {startup:.1f} s (twice per sweep)"], 0.0, 0.0
    logging.getLogger("runner").setLevel(logging.ERROR)  # the probe's own runs: no forecast lines
    for name in names:
        began = time.perf_counter()
        times, note = probe_sweep(plan["sweeps"][name], job_overrides)
        wall = 2 * startup + makespan(times, workers)
        total, cpu = total + wall, cpu + sum(times)
        lines.append(f"  {name:13s} {len(times):3d} jobs, {_duration(min(times))}-{_duration(max(times))} each: "
                     f"~{_duration(wall)} on {workers} workers ({note}; probe {time.perf_counter() - began:.0f} s)")
    lines.append(f"  total ~{_duration(total)} wall ({_duration(cpu)} of job time), measured on this machine now: "
                 "a loaded machine projects longer")
    return lines


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def run_sweep(name: str, spec: dict, launcher: list[str], extra: list[str], runs: Path) -> dict:
    """One multirun through the normal entrypoint; its console output goes to runs/<name>.log."""
    cmd = [sys.executable, "-m", "runner", "-m", f"experiment={spec['experiment']}", *spec["overrides"],
           *extra, *launcher, f"hydra.sweep.dir={runs / name}", "skip_completed=true", "resume=true"]
    runs.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    with open(runs / f"{name}.log", "w") as log:
        log.write(" ".join(cmd) + "\n")
        log.flush()
        rc = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT).returncode
    return {"rc": rc, "seconds": time.perf_counter() - start, "command": " ".join(cmd[2:])}


def check(claim, sweeps: dict[str, list[Job]], alpha: float) -> tuple[Outcome, list[Job]]:
    """The claim's verdict at level `alpha` on the pooled jobs of its sweeps (`sweeps`: the jobs of
    every sweep that ran)."""
    missing = [s for s in claim.sweeps if s not in sweeps]
    if missing:
        text = f"sweep {', '.join(missing)} did not run"
        return Outcome(text, INCONCLUSIVE, text), []
    jobs = [j for s in claim.sweeps for j in sweeps[s]]
    try:
        return claim.check(jobs, alpha), jobs
    except Exception as exc:  # a check must not take the report down with it
        text = f"could not be computed: {type(exc).__name__}: {exc}"
        return Outcome(text, INCONCLUSIVE, text), jobs


def figures(name: str, jobs: list[Job], runs: Path, fig_dir: Path) -> list[Path]:
    """Aggregate one sweep (tables and comparison plots) and copy its figures beside the report."""
    sweep = runs / name
    if not jobs:
        return []
    try:
        if name in PIVOT_SWEEPS:
            aggregate([sweep])
        elif name == SUITE:
            aggregate([sweep], metric="rel_l2", extra=("max_abs_error",), cols="task.name", heatmap=True)
        elif name == "tsvetkova":
            aggregate([sweep], metric="extrap_mse", extra=("tail_line_residual", "tail_rel_range"),
                      by=["task", "activation", "regularizer.coef"])
        elif len(jobs) > 1:
            aggregate([sweep], metric=_objective(jobs[0]), extra=(), by=["activation"])
    except (FileNotFoundError, KeyError, ValueError):
        pass  # a sweep without a finished job has nothing to draw; the report lists it
    sources = sorted(sweep.glob("plots/*.png")) + sorted(sweep.glob("*.png"))
    if len(jobs) == 1 or not sources:
        sources += sorted(jobs[0].path.glob("plots/*.png"))
    named = {f"{name}-{src.name}": src for src in sources}
    if name == "phase_diagram":  # one diagram per activation
        named = {f"phase_diagram_{j.value('activation')}.png": j.path / "plots" / "phase_diagram.png"
                 for j in jobs if (j.path / "plots" / "phase_diagram.png").exists()}
    copied = []
    for dest_name, src in named.items():
        dest = fig_dir / dest_name
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dest)
        copied.append(dest)
    return copied


def _objective(job: Job) -> str:
    metrics = list(job.summary.get("metrics", {}))
    for name in ("rel_l2", "test_acc", "test_mse", "train_mse"):
        if name in metrics:
            return name
    return metrics[0] if metrics else "final_train_loss"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def claim_row(claim, outcome: Outcome) -> str:
    """| claim | paper says | runner measured | verdict | for one claim."""
    why = outcome.why if outcome.why != outcome.measured else ""
    verdict = f"**{outcome.verdict}**" + (f": {why}" if why else "")
    return f"| {claim.id} ({claim.paper}) | {_cell(claim.says)} | {_cell(outcome.measured)} | {_cell(verdict)} |"


def suite_section(jobs: list[Job], results: list) -> list[str]:
    """Median rel_l2 per activation x equation, and the claim rows of BEYOND."""
    lines = ["## Beyond the papers: PINN suite", "",
             "Paper B's PINN comparison on every preset of `conf/pde/` (`experiment=pinn_suite`, README). Median "
             "rel_l2 over members (finite/total); heat map: figure pinn_suite-rel_l2_heatmap below.", ""]
    if jobs:
        equations = list(dict.fromkeys(j.value("task.name") for j in select(jobs)))
        lines += ["| activation | " + " | ".join(equations) + " |", "|---" * (len(equations) + 1) + "|"]
        for act in dict.fromkeys(j.value("activation") for j in select(jobs)):
            cells = []
            for eq in equations:
                values = members(select(jobs, activation=act, task__name=eq), "rel_l2")
                finite = values[np.isfinite(values)]
                cells.append(f"{np.median(finite):.3g} ({len(finite)}/{len(values)})" if len(finite)
                             else f"none finite (0/{len(values)})" if len(values) else "")
            lines.append(f"| {act} | " + " | ".join(cells) + " |")
    else:
        lines.append("Not run at this scale.")
    lines += ["", f"| claim | paper says | {MEASURED} | verdict |", "|---|---|---|---|"]
    return lines + [claim_row(claim, outcome) for claim, outcome, _ in results]


def _provenance(plan: dict, ran: dict, wall: float) -> str:
    """Which sweeps this invocation ran: all, some (the rest are earlier runs), or none."""
    if not ran:
        return "; report regenerated from existing runs"
    if set(ran) == set(plan["sweeps"]):
        return f"; sweeps ran for {_duration(wall)}"
    return f"; {', '.join(ran)} re-ran for {_duration(wall)}, the other sweeps' runs are earlier ones"


def load_alpha(plan: dict, scale: str) -> float:
    """verdicts.alpha of the plan: the level of every test behind a verdict."""
    alpha = plan.get("verdicts", {}).get("alpha")
    if not (isinstance(alpha, (int, float)) and not isinstance(alpha, bool) and 0 < alpha < 1):
        raise ValueError(f"conf/reproduce/{scale}.yaml: verdicts.alpha={alpha!r} is invalid: must be a number in (0, 1)")
    return float(alpha)


def write_report(out: Path, scale: str, plan: dict, ran: dict, wall: float) -> Path:
    runs, fig_dir = out / "runs", out / "figures"
    alpha = load_alpha(plan, scale)
    sweeps = {name: collect([runs / name]) for name in plan["sweeps"] if (runs / name).is_dir()}
    results = [(c, *check(c, sweeps, alpha)) for c in CLAIMS]
    counts = {v: sum(o.verdict == v for _, o, _ in results) for v in VERDICTS}
    lines = [f"# Reproduction report: scale `{scale}`", "",
             f"Generated by `python scripts/reproduce.py --scale {scale}` on "
             f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC; {platform.node()}, {platform.machine()}, "
             f"{torch.get_num_threads()} CPU threads, torch {torch.__version__}"
             + _provenance(plan, ran, wall) + ".",
             "",
             f"**{counts[REPRODUCED]} reproduced, {counts[CONTRADICTED]} contradicted, "
             f"{counts[INCONCLUSIVE]} inconclusive** of {len(results)} claims, at α = {alpha:g}. Every verdict "
             "is computed from the runs below by the rule in its row (runner/claims.py, statistics in "
             "runner/verdicts.py; docs/reproducing.md): `reproduced` when every test of the claim is "
             "significant in the paper's direction, `contradicted` when one is significant the other way "
             "(Holm across the claim's tests), else `inconclusive` with the reason. A seed is member k of each "
             "activation's ensemble, which share initial-weight streams; a pair with an unconverged member "
             "(its best training loss over the last 20% of logged epochs still 5% or more below the best "
             "before, by default) is dropped unless the other member failed, which decides it.",
             "", f"| claim | paper says | {MEASURED} | verdict |", "|---|---|---|---|"]
    lines += [claim_row(claim, outcome) for claim, outcome, _ in results]
    lines += ["", "## Rules", ""]
    lines += [f"- **{c.id}** ({', '.join(c.sweeps)}): {c.rule}." for c in CLAIMS + BEYOND]
    lines += ["", "## Beyond the papers: digits (vision stand-in)", ""]
    digits = sweeps.get("digits", [])
    if digits:
        lines += ["| activation | test accuracy | train accuracy |", "|---|---|---|"]
        for act in dict.fromkeys(j.value("activation") for j in digits):
            chosen = select(digits, activation=act)
            lines.append(f"| {act} | {stats(members(chosen, 'test_acc'))} | {stats(members(chosen, 'train_acc'))} |")
    else:
        lines.append("Not run at this scale.")
    lines += ["", *suite_section(sweeps.get(SUITE, []), [(c, *check(c, sweeps, alpha)) for c in BEYOND])]
    timings = {}
    lines += ["", "## Sweeps", "", "| sweep | command | jobs | completed | not every member ok | failed, interrupted "
              "or missing | members converged | time |", "|---|---|---|---|---|---|---|---|"]
    issues = []
    for name in plan["sweeps"]:
        spec, jobs = plan["sweeps"][name], sweeps.get(name, [])
        done = sum(j.status == "completed" for j in jobs)
        not_ok = sum(j.status in FINISHED and j.status != "completed" for j in jobs)
        converged = [c for j in jobs if j.status in FINISHED for c in j.summary.get("member_converged") or []]
        seconds = sum(j.summary.get("duration_s", 0) or 0 for j in jobs)
        cmd = " ".join([f"experiment={spec['experiment']}", *spec["overrides"]])
        lines.append(f"| {name} | `{_cell(cmd)}` | {len(jobs)} | {done} | {not_ok} | {len(jobs) - done - not_ok} | "
                     f"{f'{sum(converged)}/{len(converged)}' if converged else '-'} | "
                     f"{_duration(seconds) if jobs else 'not run'} |")
        timed = [j.summary["duration_s"] for j in jobs if j.summary.get("duration_s")]
        if timed:
            timings[name] = round(sum(timed) / len(timed), 2)
        if jobs:
            issues += [f"{name}: {line.replace(str(runs) + '/', '')}"
                       for line in problems(jobs, _objective(jobs[0]),
                                            ["activation", "task.name" if name == SUITE else "task.target"])]
    lines += ["", "Time is the sum of job durations (jobs may run side by side); members converged counts the "
              "members of finished jobs that converged by the rule (theory tasks train nothing and have none).", "",
              "## Failed, interrupted, diverged and partly diverged jobs", ""]
    lines += [f"- {_cell(line)}" for line in issues] or ["None."]
    lines += ["", "## Figures", ""]
    for name, jobs in sweeps.items():
        for fig in figures(name, jobs, runs, fig_dir):
            lines += [f"### {fig.stem}", "", f"![{fig.stem}](figures/{fig.name})", ""]
    write_bytes_atomic(out / "timings.json", (json.dumps(timings, indent=1) + "\n").encode())
    path = out / "REPORT.md"
    write_bytes_atomic(path, ("\n".join(lines) + "\n").encode())
    return path


def scales() -> list[str]:
    return sorted(path.stem for path in (Path(CONF_DIR) / "reproduce").glob("*.yaml"))


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
        for line in probe_estimate(plan, names, launcher):
            print(line, flush=True)
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
        print(f"  {name:12s} {_duration(ran[name]['seconds']):>7s}  {status}", flush=True)
    report = write_report(out, args.scale, plan, ran, time.perf_counter() - start)
    print(f"wrote {report}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
