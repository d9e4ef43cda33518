"""Timing of the theory sweep and of a large ensemble at initialization, with peak memory.

1. kernel flow + χ∥ + χ⊥ for 100 C_W values x 50 layers (MRePU p=2), median of repeats;
2. sample_init: M networks of depth x width on 17 inputs (kernel_init's default), wall time and
   the process's peak resident memory (ru_maxrss) before and after. Inputs have std 0.1 (MRePU
   C_W = 0.5 runs away from O(1) inputs; see kimkang_fig5).
"""

from __future__ import annotations

import argparse
import resource
import statistics
import time

import numpy as np
import torch

from runner.theory import activations
from runner.theory import kernels
from runner.theory.measurements import sample_init


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=1000)
    parser.add_argument("--width", type=int, default=512)
    parser.add_argument("--depth", type=int, default=10)
    parser.add_argument("--chunk", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    act = activations.mrepu(p=2)
    C_W = np.logspace(-2, 1, 100)
    times = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        K = kernels.kernel_flow(act, 0.0, C_W, 0.01, 50)
        kernels.chi_par(act, K, C_W[:, None]), kernels.chi_perp(act, K, C_W[:, None])
        times.append(time.perf_counter() - start)
    print(f"sweep (100 C_W x 50 layers, kernel + chi_par + chi_perp): median {statistics.median(times):.3f}s "
          f"over {args.repeats}", flush=True)
    x = 0.1 * torch.randn(17, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    before = peak_rss_mb()
    start = time.perf_counter()
    stats = sample_init(act, x, args.depth, args.width, 0.5, 0.0, args.members, chunk=args.chunk)
    elapsed = time.perf_counter() - start
    print(f"ensemble at init (M={args.members}, width {args.width}, depth {args.depth}, 17 inputs, "
          f"chunk {args.chunk}): {elapsed:.1f}s; peak RSS {before:.0f} MB before, {peak_rss_mb():.0f} MB after; "
          f"overflowed {int(stats.overflowed()[-1])}")
    print(f"{torch.get_num_threads()} torch threads")


if __name__ == "__main__":
    main()
