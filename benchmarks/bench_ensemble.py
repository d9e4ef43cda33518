"""Vectorized seed ensemble vs one run per seed, and the runner's step vs a raw torch loop.

Trains K members of the 5x32 MLP on 101 points for N steps as one ensemble (median of 5 runs), then K sequential
single-member runs through the reference path (one Lightning step per epoch:
`benchmarks.per_epoch.PerEpochModule`), and K through the runner's chunked path, in one process; repeats and reports medians. Then the cost of one ensemble step in the runner (the
difference of two run lengths, so setup cancels) over the same step in a hand-written loop
(the same EnsembleMLP, task loss and fused Adam, no Lightning), median of three pairs. Last lines:
`ensemble_speedup: <median>` and `step_over_raw: <median>`; `ensemble_speedup_ceiling` is the
reference over the ensemble's steps in the raw loop alone, what no training path can beat.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from benchmarks.per_epoch import per_epoch_path
from runner.config import compose
from runner.plan import time_training
from runner.run import build_model, build_task, keep_freed_memory

BASE = ["model=mlp_5x32", "task=x2", "task.n_train=101"]


def raw_step_seconds(members: int, steps: int) -> float:
    """Seconds per step of a plain loop: zero_grad, the task's loss, backward, fused Adam."""
    keep_freed_memory()
    cfg = compose("trainer=cpu", *BASE, f"ensemble.size={members}")
    task = build_task(cfg)
    model = build_model(cfg, task)
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


def runner_step_seconds(members: int, steps: int) -> float:
    """Seconds per step of the runner's own path, setup cancelled by differencing run lengths."""
    size = f"ensemble.size={members}"
    return (time_training(*BASE, size, epochs=2 * steps) - time_training(*BASE, size, epochs=steps)) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=25)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    ratios, same_path, step_ratios, ceilings = [], [], [], []
    for r in range(args.repeats):
        # one ensemble run is about a second, and single runs here vary by up to 2x: median of 5
        ensemble = statistics.median(time_training(*BASE, f"ensemble.size={args.members}", epochs=args.steps)
                                     for _ in range(5))
        with per_epoch_path():
            reference = sum(time_training(*BASE, "ensemble.size=1", f"ensemble.member_offset={k}", epochs=args.steps)
                            for k in range(args.members))
        today = sum(time_training(*BASE, "ensemble.size=1", f"ensemble.member_offset={k}", epochs=args.steps)
                    for k in range(args.members))
        # steps vary from run to run here by up to 1.5x: three runner/raw pairs side by side, the median
        pairs = [(runner_step_seconds(args.members, 500), raw_step_seconds(args.members, 500)) for _ in range(3)]
        runner_step, raw_step = sorted(pairs, key=lambda p: p[0] / p[1])[1]
        ratios.append(reference / ensemble)
        ceilings.append(reference / (args.steps * raw_step))  # the ensemble as a bare loop, no setup at all
        same_path.append(today / ensemble)
        step_ratios.append(runner_step / raw_step)
        print(f"repeat {r}: ensemble {ensemble:.2f}s; {args.members} sequential runs {reference:.2f}s "
              f"(one Lightning step per epoch), {today:.2f}s (chunked); ratios {ratios[-1]:.1f}x, "
              f"{same_path[-1]:.1f}x; ensemble step {runner_step * 1e3:.3f} ms in the runner, "
              f"{raw_step * 1e3:.3f} ms in a raw loop", flush=True)
    print(f"{args.members} members x {args.steps} steps, 5x32 MLP, 101 points, "
          f"{torch.get_num_threads()} threads; median of {args.repeats}")
    print(f"ensemble_speedup_same_path: {statistics.median(same_path):.1f}")
    print(f"ensemble_speedup_ceiling: {statistics.median(ceilings):.1f}  (the reference over {args.steps} raw-loop steps)")
    print(f"ensemble_speedup: {statistics.median(ratios):.1f}")
    print(f"step_over_raw: {statistics.median(step_ratios):.2f}")


if __name__ == "__main__":
    main()
