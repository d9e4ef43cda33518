"""Paper B regression throughput: the overhead-bound 1D preset and the compute-bound 2D grid.

Runs part 2 first, prints part 1, and ends with part 2's MRePU figure.

1. One input (kimkang_table4, poly_low, 25 members) through the real training path
   (one full-batch optimizer step per epoch) for each of MRePU, ReLU, GELU: model-steps per
   second, and the projected wall time of Table 4's one-input part (2 targets x 3 activations x
   10,000 epochs, run one after another as a sweep does), setup included. These tensors are
   tiny, so intra-op threads only add synchronization: the 1D part runs with --threads-1d
   (default 1, i.e. OMP_NUM_THREADS=1; two such jobs can share a 2-core machine).
2. Two inputs on the 101x101 grid (poly2d_a, 25 members): achieved GFLOP/s of one ensemble
   training step (forward, backward, Adam), counting matmul FLOPs (step_flops: forward, weight
   and input gradients), next to this machine's float32 matmul peak
   measured in the same run (a 4096^3 torch.mm). Three modes: eager on the whole grid, eager
   in tiles of 512 points (task.tile), and the preset's own (task.compile=true, tile 512).
   Also the GEMM-only ceiling: the same step's batched matmuls alone (forward and both
   backward products, same tiles), no activation, loss or optimizer: what the step would
   reach if every elementwise pass were free.
   Last line: `peak_fraction: <x>` (MRePU, the preset's mode).
"""

from __future__ import annotations

import argparse
import logging
import statistics
import time

import torch

from runner.config import compose
from benchmarks.per_epoch import per_epoch_path
from runner.sweeps import time_training
from runner.run import build, keep_freed_memory


def one_input(short: int, long: int, members: int) -> float:
    """Print each activation's step time and return the projected one-input part in minutes."""
    total = 0.0
    for act in ("mrepu", "relu", "gelu"):
        base = ["experiment=kimkang_table4", "kimkang=poly_low", f"activation={act}", f"ensemble.size={members}"]
        if act == "mrepu":
            base.append("init.C_W=auto")  # the paper's 0.5 overflows with the working MRePU (docs/papers.md)
        time_training(*base, epochs=2).total  # fills torch.compile's on-disk cache, as a sweep's first job does
        t_short, t_long = time_training(*base, epochs=short).total, time_training(*base, epochs=long).total
        per_step = (t_long - t_short) / (long - short)
        setup = t_short - short * per_step
        job = setup + 10_000 * per_step
        total += 2 * job  # two one-input targets per activation
        print(f"1D {act:6s}: {1 / per_step:7.0f} steps/s = {members / per_step:8.0f} model-steps/s "
              f"({per_step * 1e3:.2f} ms/step, setup {setup:.1f}s); 10k-epoch job {job:.0f}s", flush=True)
    print(f"projected kimkang_table4 one-input part (2 targets x 3 activations x 10k epochs, "
          f"{members} members): {total / 60:.1f} min", flush=True)
    return total / 60


def matmul_peak(n: int = 4096, repeats: int = 5) -> float:
    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.mm(a, b)
    best = min(_time(lambda: torch.mm(a, b)) for _ in range(repeats))
    return 2 * n**3 / best / 1e9


def _time(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def layer_dims(cfg, task) -> list[int]:
    return [task.in_dim] + [cfg.model.width] * cfg.model.depth + [task.out_dim]


def step_flops(dims: list[int], points: int, members: int) -> int:
    """Matmul FLOPs of one training step: per layer and point, 2 * fan_in * fan_out for the
    forward, as many for the weight gradient, and again for the input gradient except at the
    first layer (the data need none). tests/test_bench.py checks it against torch's FLOP counter."""
    per_point = [2 * a * b for a, b in zip(dims[:-1], dims[1:])]
    return points * members * (3 * sum(per_point) - per_point[0])


def gemm_ceiling(members: int, steps: int) -> float:
    """GFLOP/s of only the batched matmuls of the preset's tiled 101x101 step (fresh buffers per
    tile, as autograd allocates them); an upper bound for any step built on these GEMM calls."""
    cfg = compose("experiment=kimkang_table4", "kimkang=poly2d_a")
    task = build(cfg).task
    dims = layer_dims(cfg, task)
    weights = [torch.randn(members, a, b) for a, b in zip(dims[:-1], dims[1:])]
    biases = [torch.randn(members, 1, b) for b in dims[1:]]
    grads = [torch.zeros_like(w) for w in weights]

    def step():
        for x in torch.split(task.x_train, cfg.task.tile):
            hs = [x.expand(members, *x.shape)]
            for w, b in zip(weights, biases):
                hs.append(torch.baddbmm(b, hs[-1], w))
            g = hs[-1]
            for i in reversed(range(len(weights))):
                grads[i].baddbmm_(hs[i].transpose(1, 2), g)
                if i:
                    g = torch.bmm(g, weights[i].transpose(1, 2))

    step()
    per_step = statistics.median(_time(step) for _ in range(steps))
    return step_flops(dims, len(task.x_train), members) / per_step / 1e9


MODES = {"eager": ["task.compile=false", "task.tile=null"],
         "eager tiled": ["task.compile=false"],
         "preset": []}  # kimkang_table4: task.compile=true, task.tile=512


def step_gflops(act: str, members: int, steps: int, mode: str) -> tuple[float, float]:
    """(GFLOP/s, seconds per step) of the ensemble training step on the 101x101 grid."""
    overrides = ["experiment=kimkang_table4", "kimkang=poly2d_a", f"activation={act}", f"ensemble.size={members}",
                 *MODES[mode]]
    if act == "mrepu":
        overrides.append("init.C_W=0.1")
    cfg = compose("trainer=cpu", *overrides)
    exp = build(cfg)
    task, model = exp.task, exp.build_model()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, fused=True)
    batch = task.train_batch()

    def step():
        opt.zero_grad(set_to_none=True)
        task.loss(model, batch).sum().backward()
        opt.step()

    step()
    step()  # warm-up (and compilation)
    per_step = statistics.median(_time(step) for _ in range(steps))
    return step_flops(layer_dims(cfg, task), len(task.x_train), members) / per_step / 1e9, per_step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=25)
    parser.add_argument("--short", type=int, default=100, help="epochs of the short 1D run")
    parser.add_argument("--long", type=int, default=600, help="epochs of the long 1D run")
    parser.add_argument("--steps", type=int, default=15, help="timed 2D steps (median of)")
    parser.add_argument("--threads-1d", type=int, default=1, help="torch threads for the 1D part")
    parser.add_argument("--only-1d", action="store_true", help="skip the 2D part (and its peak_fraction line)")
    parser.add_argument("--repeats-1d", type=int, default=1, help="1D part repeats (median reported)")
    parser.add_argument("--reference-1d", action="store_true",
                        help="also time the 1D part through one Lightning step per epoch (benchmarks.per_epoch.PerEpochModule), "
                             "alternating with the runner's chunked path")
    args = parser.parse_args()
    logging.disable(logging.WARNING)  # the runs' forecast lines; here, not at import (tests import this file)
    keep_freed_memory()  # as every run does (runner.run.run)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads", flush=True)
    # the 2D part first: switching torch to 1 thread and back first slowed its steps ~10%
    if not args.only_1d:
        peak = matmul_peak()
        print(f"float32 torch.mm peak (4096^3): {peak:.1f} GFLOP/s", flush=True)
        fraction = {}
        for act in ("mrepu", "relu", "gelu"):
            for mode in MODES:
                gflops, per_step = step_gflops(act, args.members, args.steps, mode)
                fraction[act, mode] = gflops / peak
                print(f"2D 101x101 {act:6s} {mode:11s}: {per_step * 1e3:7.1f} ms/step, {gflops:6.1f} GFLOP/s, "
                      f"{gflops / peak:.1%} of peak", flush=True)
        ceiling = gemm_ceiling(args.members, 2 * args.steps + 1)
        print(f"2D 101x101 GEMM calls alone (ceiling of these shapes): {ceiling:.1f} GFLOP/s, "
              f"{ceiling / peak:.1%} of peak", flush=True)
    torch.set_num_threads(args.threads_1d)
    print(f"1D part with {args.threads_1d} thread(s)", flush=True)
    chunked, reference = [], []
    for _ in range(args.repeats_1d):
        chunked.append(one_input(args.short, args.long, args.members))
        if args.reference_1d:
            print("the same through one Lightning step per epoch (the reference):", flush=True)
            with per_epoch_path():
                reference.append(one_input(args.short, args.long, args.members))
    print(f"projected one-input part, median of {args.repeats_1d}: {statistics.median(chunked):.1f} min"
          + (f" (one Lightning step per epoch: {statistics.median(reference):.1f} min)" if reference else ""))
    if not args.only_1d:
        print(f"peak_fraction: {fraction['mrepu', 'preset']:.3f}")

if __name__ == "__main__":
    main()
