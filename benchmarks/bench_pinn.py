"""Time one training step of the runner's Burgers PINN against a plain-torch loop, same process.

Both train the same 7x64 MLP (one member) on the same 10,000 collocation and 100 initial /
boundary points with Adam (fused, lr 1e-3): plain torch as nn.Sequential with derivatives by
double backward through autograd, the runner through `runner.run.fit` (Lightning, EnsembleMLP,
`task=burgers`: the general PDE task with the equation compiled from the config). The runner's step time is (T(warmup + steps) - T(warmup)) / steps, which
cancels its setup. Repeats alternate the two and report medians; the last line is
`runner_over_plain: <median of the per-repeat ratios, tanh and GELU together>`.
"""

from __future__ import annotations

import argparse
import math
import statistics
import time

import torch
from torch import nn

from runner.config import compose
from runner.sweeps import time_training
from runner.run import build


def plain_step_time(task, activation: str, depth: int, width: int, steps: int, warmup: int) -> float:
    """Seconds per step of a hand-written PINN loop on the task's own points."""
    torch.manual_seed(0)
    act = {"tanh": nn.Tanh, "gelu": nn.GELU}[activation]
    layers: list[nn.Module] = []
    for fan_in in [2] + [width] * (depth - 1):
        layers += [nn.Linear(fan_in, width), act()]
    net = nn.Sequential(*layers, nn.Linear(width, 1))
    opt = torch.optim.Adam(net.parameters(), lr=1e-3, fused=True)
    lo, hi = task.lo.float(), task.hi.float()
    xt_f = task.collocation.clone()
    (_, _, initial, u0), (_, _, boundary, ub) = task.targets  # u on t = 0, then on x = +-1
    xt_u, u_target, n0 = task.condition_points[torch.cat([initial, boundary])], torch.cat([u0, ub]), len(initial)
    nu = task.params["nu"]

    def step() -> None:
        x = xt_f[:, :1].clone().requires_grad_(True)
        t = xt_f[:, 1:].clone().requires_grad_(True)
        u = net(2 * (torch.cat([x, t], 1) - lo) / (hi - lo) - 1)
        u_x, u_t = torch.autograd.grad(u.sum(), (x, t), create_graph=True)
        (u_xx,) = torch.autograd.grad(u_x.sum(), x, create_graph=True)
        residual = u_t + u * u_x - nu * u_xx
        err = (net(2 * (xt_u - lo) / (hi - lo) - 1) - u_target).pow(2)
        loss = residual.pow(2).mean() + err[:n0].mean() + err[n0:].mean()
        opt.zero_grad()
        loss.backward()
        opt.step()

    for _ in range(warmup):
        step()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return (time.perf_counter() - start) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--activations", default="tanh,gelu")
    parser.add_argument("--collocation", type=int, default=10000, help="collocation points (the paper's 10,000)")
    args = parser.parse_args()
    depth, width = 7, 64
    ratios, lines = [], []
    for activation in args.activations.split(","):
        base = ["task=burgers", f"activation={activation}", "model=mlp_7x64", "ensemble.size=1",
                f"task.n_collocation={args.collocation}"]
        task = build(compose("trainer=cpu", *base)).task
        plain_times, runner_times = [], []
        for r in range(args.repeats):
            plain = plain_step_time(task, activation, depth, width, args.steps, args.warmup)
            long = time_training(*base, epochs=args.warmup + args.steps).total
            short = time_training(*base, epochs=args.warmup).total
            runner = (long - short) / args.steps
            plain_times.append(plain)
            runner_times.append(runner)
            ratios.append(runner / plain)
            print(f"{activation} repeat {r}: plain {plain * 1e3:.1f} ms/step, runner "
                  f"{runner * 1e3:.1f} ms/step, ratio {runner / plain:.3f}", flush=True)
        lines.append(f"{activation}: plain {statistics.median(plain_times) * 1e3:.1f} ms/step, "
                     f"runner {statistics.median(runner_times) * 1e3:.1f} ms/step")
    print(f"7x64 MLP, {task.n_collocation} collocation points, CPU, "
          f"{torch.get_num_threads()} threads; medians of {args.repeats}")
    print("\n".join(lines))
    print(f"runner_over_plain: {statistics.median(ratios):.3f}")
    assert math.isfinite(statistics.median(ratios))


if __name__ == "__main__":
    main()
