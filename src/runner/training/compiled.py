"""The whole optimizer step as one compiled function, and whether a run compiles it (`compile`).

`compile: auto | true | false` (conf/config.yaml). The compiled step is the task's loss, the
regularizer's penalty, their gradient (torch.func over the model's parameters) and Adam's update,
traced by torch.compile into one graph that updates the parameters and the optimizer's own state
in place: checkpoints, resume, the metrics rows and every callback see what an eager step leaves.
inductor keeps what it builds in its on-disk caches (FX graph and AOTAutograd caches), so a
sweep compiles once per machine and shape; later processes load it in a few seconds.

`auto` decides after PROBE_STEPS eager steps of the run itself (timed, no extra work): it compiles
when the steps left, at the eager step time measured, times the share a compiled step saves,
exceed the compile time, and by at least MIN_SAVING_S. The compiled step's share and compile time
come from this machine's record of earlier compiled runs of the same shape (RECORD, beside
inductor's caches), else from PRIOR_RATIO and PRIOR_COMPILE_S; every compiled run updates the
record with what it measured, so the next run of a sweep decides on numbers from this machine.
A run too short to repay any compile decides at once, without reading the record.

What the compiled step cannot hold stays eager, under every mode, with its reason in the decision
line (`refusal`): a task that declares so (`Task.compiled_step_refusal`: the PINNs' derivatives
with respect to their inputs), a regularizer with state or random draws, an optimizer other than
Adam, a gradient scaler or mixed precision. Where inductor cannot build the step on a machine, one
warning line and the run goes on eagerly.
"""

from __future__ import annotations

import json
import logging
import math
import platform
import socket
import time
from pathlib import Path
from typing import Callable

import torch
from torch import nn
from torch._inductor.runtime.cache_dir_utils import cache_dir

from runner.nets.mlp import EnsembleMLP
from runner.results.files import write_json_atomic
from runner.tasks.base import Task

log = logging.getLogger("runner")

PROBE_STEPS = 8          # eager steps auto times (after the process's first) before it decides
MIN_SAVING_S = 10.0      # auto compiles only where it saves at least this much besides repaying the compile
PRIOR_RATIO = 0.6        # compiled over eager step time where this machine has no record of the shape
PRIOR_COMPILE_S = 20.0   # compile seconds (cold caches) where it has none
TIMED_COMPILED = 20      # compiled steps timed for the record (after the first, which compiles)
PRECISIONS = ("32-true", "64-true", "32", "64")  # float32 or float64 parameters, no autocast or scaler


def refusal(task: Task, regularizer: nn.Module, optimizer: torch.optim.Optimizer, precision: str = "32-true",
            scaler: bool = False) -> str | None:
    """Why this run's step cannot be one compiled function (stays eager), or None when it can."""
    reason = task.compiled_step_refusal()
    if reason:
        return reason
    if getattr(regularizer, "dropout", 0.0) > 0:
        return "dropout draws its masks from torch's eager random stream, which a compiled step does not follow"
    if any(True for _ in regularizer.buffers()):
        return f"the regularizer {type(regularizer).__name__} keeps state between steps"
    if not isinstance(optimizer, torch.optim.Adam):
        return f"the optimizer {type(optimizer).__name__} is not Adam (the compiled step writes Adam's update)"
    group = optimizer.param_groups
    if len(group) != 1 or any(group[0].get(k) for k in ("amsgrad", "maximize", "differentiable", "capturable")):
        return "Adam with amsgrad, maximize, capturable or several parameter groups"
    if scaler or str(precision) not in PRECISIONS:
        return f"trainer.precision={precision} (the compiled step is float32 or float64, without autocast or scaler)"
    return None


class StepLoss(nn.Module):
    """The training objective as a module of the model's parameters, for torch.func.functional_call:
    each member's task loss and the regularizer's penalty (zeros without one)."""

    def __init__(self, model: EnsembleMLP, task: Task, regularizer: nn.Module):
        super().__init__()
        self.model = model
        self.regularizer = regularizer
        self.task = task

    def forward(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        member_loss = self.task.loss(self.model, batch)
        penalty = self.regularizer.penalty(self.model) if self.regularizer.has_penalty else None
        return member_loss, torch.zeros_like(member_loss) if penalty is None else penalty


def adam_step_function(loss: StepLoss, names: list[str], lr: float, betas: tuple[float, float], eps: float,
                       weight_decay: float) -> Callable:
    """step(params, exp_avg, exp_avg_sq, steps, batch) -> (member losses, penalties), both before
    the update: one optimizer step of the summed loss, written in place into the parameters and
    Adam's state (torch.optim.Adam's update: m <- lerp(m, g, 1-b1), v <- b2 v + (1-b2) g²,
    p <- p - lr/(1-b1^t) m / (sqrt(v)/sqrt(1-b2^t) + eps), bias corrections in float64)."""
    beta1, beta2 = betas

    def total(params: dict[str, torch.Tensor], batch: dict[str, torch.Tensor]):
        member_loss, penalty = torch.func.functional_call(loss, params, (batch,))
        return (member_loss + penalty).sum(), (member_loss.detach(), penalty.detach())

    grad_and_value = torch.func.grad_and_value(total, has_aux=True)

    def step(params: list[torch.Tensor], exp_avg: list[torch.Tensor], exp_avg_sq: list[torch.Tensor],
             steps: list[torch.Tensor], batch: dict[str, torch.Tensor]):
        grads, (_, (member_loss, penalty)) = grad_and_value(dict(zip(names, params)), batch)
        t = steps[0].double() + 1
        step_size = lr / (1 - beta1**t)
        bias_correction2_sqrt = (1 - beta2**t).sqrt()
        for name, p, m, v, s in zip(names, params, exp_avg, exp_avg_sq, steps):
            g = grads[name] if weight_decay == 0 else grads[name] + weight_decay * p
            s.add_(1)
            m.lerp_(g, 1 - beta1)
            v.mul_(beta2).addcmul_(g, g, value=1 - beta2)
            denom = v.sqrt() / bias_correction2_sqrt.to(v.dtype) + eps
            p.sub_(step_size.to(p.dtype) * m / denom)
        return member_loss, penalty

    return step


def adam_state(optimizer: torch.optim.Adam, params: list[torch.Tensor]) -> list[dict]:
    """Adam's state of each parameter, created as torch.optim.Adam creates it where a step has not."""
    states = []
    for p in params:
        state = optimizer.state[p]
        if not state:
            state["step"] = torch.zeros((), dtype=torch.float32, device=p.device if optimizer.param_groups[0].get(
                "fused") else "cpu")
            state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
            state["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
        states.append(state)
    return states


def step_key(activation: str, batch: dict[str, torch.Tensor], depth: int, width: int, members: int,
             dtype: torch.dtype, regularizer: nn.Module, task: str) -> str:
    """What sets a compiled step's speed and compile on this machine: the shape of the work
    (task, activation, data, net, members, dtype, penalty), the threads, torch and the CPU."""
    shapes = ",".join(f"{k}{list(v.shape)}" for k, v in sorted(batch.items()) if isinstance(v, torch.Tensor))
    return (f"{task}|{activation}|{shapes}|{depth}x{width}|K{members}|{dtype}|{type(regularizer).__name__}"
            f"{getattr(regularizer, 'coef', '')}|threads{torch.get_num_threads()}|torch{torch.__version__}|"
            f"{torch.backends.cpu.get_cpu_capability()}|{platform.machine()}|{socket.gethostname()}")


def record_path() -> Path:
    """This machine's record of compiled steps, beside inductor's own caches."""
    return Path(cache_dir()) / "runner_compiled_steps.json"


def read_record(key: str) -> dict | None:
    """The last measurement of the compiled step of `key` on this machine, if any."""
    try:
        entry = json.loads(record_path().read_text()).get(key)
    except (OSError, ValueError, AttributeError):
        return None
    ok = isinstance(entry, dict) and all(isinstance(entry.get(k), (int, float)) for k in ("ratio", "compile_s"))
    return entry if ok else None


def write_record(key: str, entry: dict) -> None:
    """Add `entry` under `key` (the last one wins: concurrent writers may drop each other's)."""
    path = record_path()
    try:
        records = json.loads(path.read_text()) if path.exists() else {}
        if not isinstance(records, dict):
            records = {}
    except (OSError, ValueError):
        records = {}
    records[key] = entry
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_json_atomic(path, records)
    except OSError as exc:  # a read-only cache directory costs the next run its measured numbers only
        log.debug("could not write %s: %s", path, exc)


def plan(eager_s: float, epochs_left: int, key: str | None) -> dict:
    """auto's decision for `epochs_left` steps at `eager_s` seconds per eager step: the predicted
    compiled step and compile time (this machine's record of `key`, else the priors), the saving,
    and `compile` (bool). With key None (or a run too short for any compile to repay), no record is
    read."""
    out = {"eager_ms": round(eager_s * 1e3, 4), "epochs_left": int(epochs_left)}
    if epochs_left * eager_s < MIN_SAVING_S or key is None:
        # even a free compiled step could not save MIN_SAVING_S: decided without reading anything
        return {**out, "compile": False, "saving_s": None, "source": "bound",
                "reason": f"{epochs_left} epochs left at {eager_s * 1e3:.3g} ms take {epochs_left * eager_s:.3g} s "
                          f"in all, under the {MIN_SAVING_S:g} s a compile must save"}
    entry = read_record(key)
    ratio, compile_s, source = ((entry["ratio"], entry["compile_s"], "record") if entry
                                else (PRIOR_RATIO, PRIOR_COMPILE_S, "prior"))
    saving = epochs_left * eager_s * (1 - ratio)
    compile_ = saving > compile_s + MIN_SAVING_S
    comparison = ">" if compile_ else "<="
    return {**out, "compile": compile_, "compiled_ms": round(eager_s * ratio * 1e3, 4), "ratio": round(ratio, 4),
            "compile_s": round(compile_s, 2), "saving_s": round(saving, 2), "source": source,
            "reason": f"eager {eager_s * 1e3:.3g} ms/step, compiled ~{eager_s * ratio * 1e3:.3g} ms/step and "
                      f"compile ~{compile_s:.3g} s ({'this machine' if entry else 'no record of this shape here: priors'}"
                      f"); {epochs_left} epochs left save ~{saving:.3g} s {comparison} compile + {MIN_SAVING_S:g} s"}


class StepCompiler:
    """The compiled step of one training run, and the decision (`mode`) whether it runs.

    The module times its eager steps with `eager_done` and asks `active` before each step; once
    active, `step(batch)` runs one compiled optimizer step, or returns None where inductor failed to
    build it (the module then steps eagerly, and so does the rest of the run). `record()` is the
    decision and its numbers for summary.json."""

    def __init__(self, mode: str | bool, model: EnsembleMLP, task: Task, regularizer: nn.Module,
                 optimizer: torch.optim.Optimizer, precision: str = "32-true", scaler: bool = False):
        self.mode = mode  # checked with the other settings (runner.config.Settings)
        self.model, self.task, self.regularizer, self.optimizer = model, task, regularizer, optimizer
        self.active = False
        self.decided: dict | None = None
        self.eager_times: list[float] = []
        self.compiled_times: list[float] = []
        self.compile_s: float | None = None
        self.fn: Callable | None = None
        self.key: str | None = None
        self.from_epoch: int | None = None
        self.reason = None if self.mode is False else refusal(task, regularizer, optimizer, precision, scaler)

    def start(self, epoch: int, max_epochs: int, fresh: bool) -> None:
        """At the start of training from `epoch`; `fresh`: the first step records the references
        (initial and zero-output loss) and is eager whatever the mode."""
        left = max_epochs - epoch
        if self.mode is False:
            self.decide(epoch, False, "compile=false")
        elif self.reason:
            self.decide(epoch, False, f"compile={self.label()}: eager steps: {self.reason}")
        elif self.mode is True:
            self.pending_from = epoch + (1 if fresh else 0)
        elif left <= PROBE_STEPS + 1:
            self.decide(epoch, False, f"compile=auto: eager steps: {left} epochs left, fewer than the "
                                      f"{PROBE_STEPS + 1} it times before deciding")

    def label(self) -> str:
        return {True: "true", False: "false"}.get(self.mode, str(self.mode))

    def decide(self, epoch: int, compile_: bool, line: str, numbers: dict | None = None) -> None:
        self.decided = {"mode": self.label(), "compiled": compile_, "from_epoch": epoch if compile_ else None,
                        **(numbers or {}), "line": line}
        if compile_:
            self.from_epoch = epoch
            self.active = True
        log.info(line)

    def before_step(self, epoch: int, max_epochs: int) -> None:
        """Turn the compiled step on where this epoch is where the mode says."""
        if self.decided is not None:
            return
        if self.mode is True and epoch >= self.pending_from:
            self.decide(epoch, True, f"compile=true: one compiled step (forward, loss, backward, penalty, Adam) "
                                     f"from epoch {epoch}")
        elif self.mode == "auto" and len(self.eager_times) > PROBE_STEPS:
            # the fastest: on a shared machine a step's time is its cost plus whatever else ran (the
            # process's first step also pays one-time work, so it is left out)
            eager_s = min(self.eager_times[1:])
            left = max_epochs - epoch
            bound = left * eager_s < MIN_SAVING_S
            numbers = plan(eager_s, left, None if bound else self.shape_key())
            what = f"one compiled step from epoch {epoch}" if numbers["compile"] else "eager steps"
            self.decide(epoch, numbers["compile"], f"compile=auto: {what}: {numbers['reason']}",
                        {k: v for k, v in numbers.items() if k not in ("compile", "reason")})

    def eager_done(self, seconds: float) -> None:
        """An eager step took `seconds` (auto's probe)."""
        if self.decided is None:
            self.eager_times.append(seconds)

    def finish(self, epoch: int) -> None:
        """At the end of training: decide where the run ended before it did, and record what a
        compiled run measured (the decision's record, and this machine's, for later runs)."""
        if self.decided is None:
            self.decide(epoch, False, f"compile={self.label()}: eager steps: the run ended at epoch {epoch}, "
                                      "before a decision")
        if self.compile_s is not None and 3 <= len(self.compiled_times) < TIMED_COMPILED:
            self.measured()

    def measured(self) -> None:
        """Put what the compiled steps measured into the decision's record and, where this run also
        timed eager steps, into this machine's record (as soon as TIMED_COMPILED are timed: a run
        stopped later still leaves it)."""
        compiled_s = min(self.compiled_times)  # the fastest, as auto's eager step
        compile_s = max(self.compile_s - compiled_s, 0.0)  # the first call less a steady one
        self.decided.update(measured_compiled_ms=round(compiled_s * 1e3, 4), measured_compile_s=round(compile_s, 2))
        if len(self.eager_times) > 2:
            eager_s = min(self.eager_times[1:])
            self.decided["measured_eager_ms"] = round(eager_s * 1e3, 4)
            write_record(self.shape_key(), {"ratio": compiled_s / eager_s, "compile_s": compile_s,
                                            "eager_ms": eager_s * 1e3, "compiled_ms": compiled_s * 1e3})

    def shape_key(self) -> str:
        if self.key is None:
            m = self.model
            self.key = step_key(m.activation.label, self.task.train_batch(), m.depth, m.weights[0].shape[-1],
                                m.size, m.weights[0].dtype, self.regularizer, self.task.name)
        return self.key

    def build(self) -> Callable:
        group = self.optimizer.param_groups[0]
        names = [name for name, _ in self.model.named_parameters()]
        loss = StepLoss(self.model, self.task, self.regularizer)
        fn = adam_step_function(loss, [f"model.{n}" for n in names], float(group["lr"]),
                                tuple(float(b) for b in group["betas"]), float(group["eps"]),
                                float(group["weight_decay"]))
        # each run its own graphs: a worker that ran other jobs keeps none of theirs in memory (nor
        # runs into dynamo's recompile limit); inductor's disk caches still serve a known shape
        torch._dynamo.reset()
        return torch.compile(fn)

    def arguments(self) -> tuple:
        """The compiled step's tensors: the parameters and Adam's state, aliases written in place."""
        params = list(self.model.parameters())
        states = adam_state(self.optimizer, params)
        return ([p.detach() for p in params], [s["exp_avg"] for s in states], [s["exp_avg_sq"] for s in states],
                [s["step"] for s in states])

    def step(self, batch: dict[str, torch.Tensor], arguments: tuple) -> tuple[torch.Tensor, torch.Tensor] | None:
        """One compiled optimizer step: (member losses, penalties) before it; None where inductor
        cannot build the step here (one warning; the run goes on eagerly)."""
        start = time.perf_counter()
        if self.fn is None:
            self.fn = self.build()
            try:
                out = self.fn(*arguments, batch)
            except torch._dynamo.exc.TorchDynamoException as exc:
                log.warning("compile=%s: torch.compile of the training step failed on this machine (%s); "
                            "running eagerly", self.label(), str(exc).strip().splitlines()[0] if str(exc) else
                            type(exc).__name__)
                self.active, self.fn = False, None
                self.decided.update(compiled=False, failed=type(exc).__name__)
                self.mode = False
                return None
            self.compile_s = time.perf_counter() - start
            return out
        out = self.fn(*arguments, batch)
        if len(self.compiled_times) < TIMED_COMPILED:
            self.compiled_times.append(time.perf_counter() - start)
            if len(self.compiled_times) == TIMED_COMPILED:
                self.measured()
        return out

    def record(self) -> dict | None:
        """The decision and its numbers, for summary.json (`compile`)."""
        if self.decided is None:
            return None
        return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in self.decided.items()}
