"""Vectorized seed ensemble vs one run per seed, through the same training path.

Trains K members of the 5x32 MLP on 101 points for N steps as one ensemble, then K sequential
single-member runs, in one process; repeats and reports medians. Last line:
`ensemble_speedup: <median ratio>`.
"""

from __future__ import annotations

import argparse
import statistics

import torch
from timing import time_training


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=25)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    base = ["model=mlp_5x32", "task=x2", "task.n_train=101"]
    ratios = []
    for r in range(args.repeats):
        ensemble = time_training(*base, f"ensemble.size={args.members}", epochs=args.steps)
        sequential = sum(
            time_training(*base, "ensemble.size=1", f"ensemble.member_offset={k}", epochs=args.steps)
            for k in range(args.members))
        ratios.append(sequential / ensemble)
        print(f"repeat {r}: ensemble {ensemble:.2f}s, {args.members} sequential "
              f"{sequential:.2f}s, ratio {ratios[-1]:.1f}x", flush=True)
    print(f"{args.members} members x {args.steps} steps, 5x32 MLP, 101 points, "
          f"{torch.get_num_threads()} threads; median of {args.repeats}")
    print(f"ensemble_speedup: {statistics.median(ratios):.1f}")


if __name__ == "__main__":
    main()
