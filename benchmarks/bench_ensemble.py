"""Vectorized seed ensemble vs one run per seed, and the runner's step vs a raw torch loop.

Trains K members of the 5x32 MLP on 101 points for N steps as one ensemble (median of 5 runs), then K sequential
single-member runs through the reference path (one Lightning step per epoch:
`benchmarks.per_epoch.PerEpochModule`), and K through the runner's chunked path, in one process; repeats and reports medians. Then the cost of one ensemble step in the runner (the
difference of two run lengths, so setup cancels) over the same step in a hand-written loop
(the same EnsembleMLP, task loss and fused Adam, no Lightning), median of three pairs. Last lines:
`ensemble_speedup: <median>` and `step_over_raw: <median>`; `ensemble_speedup_ceiling` is the
reference over the ensemble's steps in the raw loop alone, what no training path can beat.

With --peer, the same ensemble step (25 members, 5x32, 101 one-dim points, Table 4's one-input
shapes; MSE, Adam with the runner's lr, betas, eps) for ReLU, GELU and MRePU in four more ways:
the runner's own training under compile=true (runner.training.compiled: its step time after the
first chunk, which holds the compile), torch.compile of one functional step (benchmarks.peer:
torch.func, Adam as tensor ops), the same with ten steps unrolled in one compiled function, and JAX
(vmap + jit + lax.scan, optax.adam). Each repeat times them back to back, the order reversed every
other repeat; the ratios are medians over the repeats' pairs. Compile time is the first call less
a steady one (the runner's: its compiled run's setup less its eager run's; torch.compile's cache on
disk makes later processes faster: set TORCHINDUCTOR_FORCE_DISABLE_CACHES=1 for a cold compile);
`runner_compiled_10k_ms` is a 10,000-epoch run's time per step with that compile spread over it.
Last lines, one per activation: `relu runner_ms=... runner_compiled_ms=... compiled_ms=... jax_ms=...
runner_over_jax=... runner_compiled_over_jax=... compiled_over_jax=...`.
JAX is optional (`pip install .[bench]`): without it one note line, and no JAX numbers.
--threads 1 sets torch to one thread and XLA to one (flags set before jax is imported); XLA's
pool also follows the CPU affinity, so pin with `taskset -c 0` for one core.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import time
from pathlib import Path
from typing import Callable

import torch
from benchmarks import peer
from benchmarks.per_epoch import per_epoch_path
from runner.config import compose
from runner.sweeps import time_training
from runner.results.files import write_json_atomic
from runner.run import build, keep_freed_memory

BASE = ["model=mlp_5x32", "task=x2", "task.n_train=101"]
ACTIVATIONS = ("relu", "gelu", "mrepu")
UNROLL = 10  # steps in one compiled function, the probe's second variant


def raw_step_seconds(members: int, steps: int) -> float:
    """Seconds per step of a plain loop: zero_grad, the task's loss, backward, fused Adam."""
    keep_freed_memory()
    cfg = compose("trainer=cpu", *BASE, f"ensemble.size={members}")
    exp = build(cfg)
    task, model = exp.task, exp.build_model()
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.optimizer.lr, fused=True)
    batch = task.train_batch()

    def loop(n: int) -> float:
        start = time.perf_counter()
        for _ in range(n):
            optimizer.zero_grad()
            task.loss(model, batch).sum().backward()
            optimizer.step()
        return time.perf_counter() - start

    loop(50)  # warm-up
    return (loop(2 * steps) - loop(steps)) / steps


def runner_compiled_timer(members: int, *overrides: str) -> tuple[Callable[[int], float], list[float]]:
    """(seconds per step of the runner's training under compile=true, over n epochs after its first
    chunk; the compile seconds of each call: its setup less an eager run's, appended)."""
    compile_s: list[float] = []

    def seconds_per_step(n: int) -> float:
        run = (*BASE, f"ensemble.size={members}", *overrides)
        eager, fast = time_training(*run, "compile=false", epochs=n), time_training(*run, "compile=true", epochs=n)
        compile_s.append((fast.total - n * fast.step) - (eager.total - n * eager.step))
        return fast.step

    return seconds_per_step, compile_s


def runner_step_seconds(members: int, steps: int, *overrides: str) -> float:
    """Seconds per step of the runner's own eager path, setup cancelled by differencing run lengths."""
    run = (*BASE, f"ensemble.size={members}", "compile=false", *overrides)
    return (time_training(*run, epochs=2 * steps).total - time_training(*run, epochs=steps).total) / steps


def speedup_lines(members: int, steps: int, repeats: int) -> dict[str, float]:
    """The ensemble against one run per seed, and the runner's step against a raw loop."""
    ratios, same_path, step_ratios, ceilings = [], [], [], []
    for r in range(repeats):
        # one ensemble run is about a second, and single runs here vary by up to 2x: median of 5
        ensemble = statistics.median(time_training(*BASE, f"ensemble.size={members}", epochs=steps).total
                                     for _ in range(5))
        with per_epoch_path():
            reference = sum(time_training(*BASE, "ensemble.size=1", f"ensemble.member_offset={k}", epochs=steps).total
                            for k in range(members))
        today = sum(time_training(*BASE, "ensemble.size=1", f"ensemble.member_offset={k}", epochs=steps).total
                    for k in range(members))
        # steps vary from run to run here by up to 1.5x: three runner/raw pairs side by side, the median
        pairs = [(runner_step_seconds(members, 500), raw_step_seconds(members, 500)) for _ in range(3)]
        runner_step, raw_step = sorted(pairs, key=lambda p: p[0] / p[1])[1]
        ratios.append(reference / ensemble)
        ceilings.append(reference / (steps * raw_step))  # the ensemble as a bare loop, no setup at all
        same_path.append(today / ensemble)
        step_ratios.append(runner_step / raw_step)
        print(f"repeat {r}: ensemble {ensemble:.2f}s; {members} sequential runs {reference:.2f}s "
              f"(one Lightning step per epoch), {today:.2f}s (chunked); ratios {ratios[-1]:.1f}x, "
              f"{same_path[-1]:.1f}x; ensemble step {runner_step * 1e3:.3f} ms in the runner, "
              f"{raw_step * 1e3:.3f} ms in a raw loop", flush=True)
    lines = {"ensemble_speedup_same_path": statistics.median(same_path),
             "ensemble_speedup_ceiling": statistics.median(ceilings),
             "ensemble_speedup": statistics.median(ratios),
             "step_over_raw": statistics.median(step_ratios)}
    print(f"{members} members x {steps} steps, 5x32 MLP, 101 points, "
          f"{torch.get_num_threads()} threads; median of {repeats}")
    print(f"ensemble_speedup_same_path: {lines['ensemble_speedup_same_path']:.1f}")
    print(f"ensemble_speedup_ceiling: {lines['ensemble_speedup_ceiling']:.1f}  "
          f"(the reference over {steps} raw-loop steps)")
    print(f"ensemble_speedup: {lines['ensemble_speedup']:.1f}")
    print(f"step_over_raw: {lines['step_over_raw']:.2f}")
    return lines


def compiled_timer(step: Callable, k: int, params, state, x, y) -> tuple[Callable[[int], float], float]:
    """torch.compile of `k` functional steps in one function: (seconds per step over n steps from
    the initial state, compile seconds: the first call less a steady one)."""
    compiled = torch.compile(peer.unrolled_steps(step, k) if k > 1 else step)

    def call() -> float:
        start = time.perf_counter()
        compiled(params, state, x, y)
        return time.perf_counter() - start

    first = call()
    compile_s = first - min(call() for _ in range(3))

    def seconds_per_step(n: int) -> float:
        p, s = params, state
        start = time.perf_counter()
        for _ in range(n // k):
            p, s, losses = compiled(p, s, x, y)
        elapsed = (time.perf_counter() - start) / (n // k * k)
        if not torch.isfinite(losses).all():
            print(f"warning: non-finite losses after {n} compiled steps; these times are not of training")
        return elapsed

    return seconds_per_step, compile_s


def jax_timer(model, x, y, cfg) -> tuple[Callable[[int], float], Callable[[int], float]]:
    """(seconds per step over n JAX steps from the initial state, compile seconds for n steps)."""
    ensemble = peer.JaxEnsemble(model, x, y, cfg.optimizer.lr, tuple(cfg.optimizer.betas),
                                cfg.optimizer.get("eps", 1e-8))

    def run(n: int) -> float:
        ensemble.restart()
        start = time.perf_counter()
        losses = ensemble.train(n)  # blocks until the result is there
        elapsed = time.perf_counter() - start
        if not math.isfinite(float(losses[-1].sum())):
            print(f"warning: non-finite JAX losses after {n} steps; these times are not of training")
        return elapsed

    def compile_s(n: int) -> float:
        first = run(n)
        return first - min(run(n) for _ in range(2))

    return (lambda n: run(n) / n), compile_s


def peer_lines(activation: str, members: int, steps: int, repeats: int, jax_ok: bool) -> dict[str, float]:
    """The runner, torch.compile of one and of UNROLL functional steps, and JAX on one activation."""
    keep_freed_memory()
    cfg = compose("trainer=cpu", *BASE, f"ensemble.size={members}", f"activation={activation}")
    exp = build(cfg)
    task, model = exp.task, exp.build_model()
    batch = task.train_batch()
    x, y = batch["x"], batch["y"]
    step = peer.functional_step(model, cfg.optimizer.lr, tuple(cfg.optimizer.betas), cfg.optimizer.get("eps", 1e-8))
    params, state = peer.initial_state(model)
    compiled, torch_compile_s = compiled_timer(step, 1, params, state, x, y)
    unrolled, torch_compile10_s = compiled_timer(step, UNROLL, params, state, x, y)
    runner_compiled, runner_compile_s = runner_compiled_timer(members, f"activation={activation}")
    timers = {"runner": lambda n: runner_step_seconds(members, n, f"activation={activation}"),
              "runner_compiled": runner_compiled, "compiled": compiled, "compiled10": unrolled}
    out = {"torch_compile_s": torch_compile_s, "torch_compile10_s": torch_compile10_s}
    if jax_ok:
        timers["jax"], jax_compile = jax_timer(model, x, y, cfg)
        out["jax_compile_s"] = jax_compile(steps)
    times: dict[str, list[float]] = {name: [] for name in timers}
    for r in range(repeats):
        # back to back, the order reversed every other repeat so that drift favours neither side
        for name in (list(timers) if r % 2 == 0 else list(reversed(timers))):
            times[name].append(timers[name](steps))
        print(f"{activation} repeat {r}: " + ", ".join(f"{name} {t[-1] * 1e3:.3f} ms" for name, t in times.items()),
              flush=True)
    for name, t in times.items():
        out[f"{name}_ms"] = statistics.median(t) * 1e3
    out["runner_compile_s"] = statistics.median(runner_compile_s)
    out["runner_compiled_10k_ms"] = out["runner_compiled_ms"] + out["runner_compile_s"] / 10_000 * 1e3
    out["runner_compiled_over_runner"] = statistics.median(
        a / b for a, b in zip(times["runner_compiled"], times["runner"]))
    if jax_ok:
        for name in ("runner", "runner_compiled", "compiled", "compiled10"):
            out[f"{name}_over_jax"] = statistics.median(a / b for a, b in zip(times[name], times["jax"]))
    return out


SUMMARY = ("runner_ms", "runner_compiled_ms", "compiled_ms", "compiled10_ms", "jax_ms", "runner_over_jax",
           "runner_compiled_over_jax", "compiled_over_jax", "compiled10_over_jax", "runner_compiled_over_runner",
           "runner_compile_s", "runner_compiled_10k_ms", "jax_compile_s", "torch_compile_s", "torch_compile10_s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=25)
    parser.add_argument("--steps", type=int, default=300, help="steps per timed run")
    parser.add_argument("--repeats", type=int, default=3, help="repeats (peer: alternating pairs) for the medians")
    parser.add_argument("--threads", type=int, choices=(1, 2), default=None,
                        help="torch threads, and XLA's with --peer (default: torch's own choice)")
    parser.add_argument("--peer", action="store_true",
                        help="also time torch.compile of the functional step and JAX on relu, gelu, mrepu")
    parser.add_argument("--peer-only", action="store_true", help="--peer without the ensemble_speedup lines")
    parser.add_argument("--activations", default=",".join(ACTIVATIONS),
                        help=f"comma-separated, for --peer (default: {','.join(ACTIVATIONS)})")
    parser.add_argument("--json", type=Path, default=None, help="write the numbers here as JSON")
    args = parser.parse_args()
    args.peer = args.peer or args.peer_only
    if args.members < 1 or args.repeats < 1 or args.steps < 1:
        parser.error("--members, --steps and --repeats must be positive")
    if args.peer and args.steps % UNROLL:
        parser.error(f"--steps={args.steps}: with --peer it must be a multiple of {UNROLL} (the unrolled variant)")
    activations = args.activations.split(",")
    if not set(activations) <= set(ACTIVATIONS):
        parser.error(f"--activations={args.activations}: choose from {', '.join(ACTIVATIONS)}")
    if args.json is not None and not args.json.parent.is_dir():
        parser.error(f"--json {args.json}: directory {args.json.parent} does not exist")
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    jax_version = None
    if args.peer:
        try:
            jax_version = peer.import_jax(args.threads).__version__
        except ImportError:
            print("note: jax or optax is not installed (pip install '.[bench]'); the JAX lines are skipped")
    cpus = len(os.sched_getaffinity(0))
    if jax_version and args.threads is not None and cpus > args.threads:
        print(f"note: XLA's thread pool follows the CPU affinity ({cpus} CPUs here); "
              f"pin with taskset to {args.threads} core(s) for a like-for-like comparison")
    record: dict = {"members": args.members, "steps": args.steps, "repeats": args.repeats,
                    "threads": torch.get_num_threads(), "cpus": cpus, "torch": torch.__version__}
    if not args.peer_only:
        record.update(speedup_lines(args.members, args.steps, args.repeats))
    if args.peer:
        record["jax"] = jax_version
        record["peer"] = {a: peer_lines(a, args.members, args.steps, args.repeats, jax_version is not None)
                          for a in activations}
        print(f"peer: {args.members} members x {args.steps} steps, 5x32 MLP, 101 points, "
              f"{torch.get_num_threads()} torch threads, {cpus} CPUs; medians of {args.repeats}")
        for activation, lines in record["peer"].items():
            print(activation + " " + " ".join(f"{k}={lines[k]:.3f}" for k in SUMMARY if k in lines))
    if args.json is not None:
        write_json_atomic(args.json, record)


if __name__ == "__main__":
    main()
