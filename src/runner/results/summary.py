"""The rules behind summary.json's numbers: per-member statistics, member fates, run statuses and
convergence. The file itself is runner.results.record.RunRecord."""

from __future__ import annotations

import math

import numpy as np
import torch

# A run that Ctrl-C or SIGTERM stopped (summary.json also holds `signal` and `epoch`): not done,
# so skip_completed runs it again and resume=true continues it; tables list it, never drop it.
INTERRUPTED = "interrupted"
RUNNING = "running"  # what a run writes first, before its first epoch; a run that ends overwrites it


STATS = ("mean", "std", "median", "min", "max")


def member_stats(values: torch.Tensor | np.ndarray | list[float | None]) -> dict:
    """Statistics of one metric over an ensemble's members: mean, std (population), median, min
    and max over the finite values (None when no value is finite), `n_finite`, and `members`,
    every value (None where not finite). The one definition behind summaries, metrics rows,
    progress lines, tables, plots and claims."""
    vals = np.array([math.nan if v is None else v for v in values], dtype=float) if isinstance(values, list) \
        else np.asarray(torch.as_tensor(values).detach().cpu().double(), dtype=float)
    vals = vals.reshape(-1)
    finite = vals[np.isfinite(vals)]
    stats: dict = dict.fromkeys(STATS)
    if finite.size:
        stats = {"mean": float(finite.mean()), "std": float(finite.std()), "median": float(np.median(finite)),
                 "min": float(finite.min()), "max": float(finite.max())}
    stats["members"] = [float(v) if math.isfinite(v) else None for v in vals]
    stats["n_finite"] = int(finite.size)
    return stats


# Run statuses of runs that trained to the end: their members' metrics are in the summary (run_status).
# `completed`: every member ok;
# `partly_learned` / `not_learned`: every member finished finite and within blowup_factor, but some /
#   all of them ended no better than predicting zero;
# `partly_diverged` / `diverged`: some / all members went non-finite or blew up (the rest, if any,
#   ok or no better than zero: member_status says which fate each one met).
COMPLETED = "completed"
FINISHED = (COMPLETED, "partly_learned", "not_learned", "partly_diverged", "diverged")

# Member fates other than `ok`, in the order member_status tests them: the member failed.
FAILED_FATES = ("diverged", "blown_up", "no_better_than_zero")
DIVERGED_FATES = ("diverged", "blown_up")  # the fates a run's `diverged` and `partly_diverged` count


def member_status(final: torch.Tensor, initial: torch.Tensor, zero_output: torch.Tensor,
                  blowup_factor: float) -> list[str]:
    """Per member, the first fate that applies:
    - `diverged`: the final loss is not finite;
    - `blown_up`: finite, but more than blowup_factor x the smaller of its initial loss and the
      loss of the zero function (it ended far worse than where it started, or than predicting nothing);
    - `no_better_than_zero`: its final loss is at least the zero function's loss (the task's loss
      with the output layer zeroed): it learned nothing a constant zero output does not give;
    - `ok`.
    A reference that is not finite (NaN) is not used."""
    final, initial, zero_output = (torch.as_tensor(v).double().cpu() for v in (final, initial, zero_output))
    reference = torch.fmin(initial, zero_output)  # fmin: a NaN reference gives way to the other
    out = []
    for f, r, z in zip(final.tolist(), reference.tolist(), zero_output.tolist()):
        if not math.isfinite(f):
            out.append("diverged")
        elif math.isfinite(r) and f > blowup_factor * r:
            out.append("blown_up")
        elif math.isfinite(z) and f >= z:
            out.append("no_better_than_zero")
        else:
            out.append("ok")
    return out


def run_status(members: list[str]) -> str:
    """The status of a run that trained to the end, from its members' fates (FINISHED):
    `diverged` when every member went non-finite or blew up, `partly_diverged` when some did;
    otherwise `completed` when every member is ok, `not_learned` when none is (all no better than
    zero), else `partly_learned`."""
    diverged = sum(m in DIVERGED_FATES for m in members)
    if diverged:
        return "diverged" if diverged == len(members) else "partly_diverged"
    ok = sum(m == "ok" for m in members)
    return COMPLETED if ok == len(members) else "not_learned" if not ok else "partly_learned"


# A member's convergence is judged on its training loss at the logged epochs (metrics.csv rows).
MIN_CONVERGENCE_POINTS = 5  # fewer logged epochs than this: too short to judge


def member_convergence(losses: list[float | None], tail: float = 0.2,
                       tol: float = 0.05) -> tuple[bool, float | None, str]:
    """(converged, improvement, reason) of one member from its training loss at the logged epochs,
    in order (None or non-finite where the loss was not finite).

    The last `tail` share of the logged epochs (ceil(tail x n) of them, at least one, leaving at
    least one before) is the tail; improvement = (best loss before the tail - best loss in the
    tail) / best loss before it. The member converged when improvement < tol: over the tail it
    found less than a tol fraction of further decrease. Not converged: fewer than
    MIN_CONVERGENCE_POINTS logged epochs ("too short to judge"; improvement None) or a non-finite
    loss anywhere (a diverged member; improvement None)."""
    n = len(losses)
    if n < MIN_CONVERGENCE_POINTS:
        return False, None, f"too short to judge ({n} logged epochs, fewer than {MIN_CONVERGENCE_POINTS})"
    values = np.array([math.nan if v is None else float(v) for v in losses])
    if not np.isfinite(values).all():
        return False, None, "non-finite loss"
    k = min(max(1, math.ceil(tail * n)), n - 1)
    before, within = float(values[:-k].min()), float(values[-k:].min())
    improvement = (before - within) / abs(before) if before != 0 else 0.0
    if improvement < tol:
        return True, improvement, f"improved {improvement:.1%} over the last {k} of {n} logged epochs"
    return False, improvement, f"still improving: {improvement:.1%} over the last {k} of {n} logged epochs"


def convergence(history: dict, tail: float = 0.2, tol: float = 0.05) -> tuple[list[bool], list[float | None]]:
    """Per member, whether it converged and its improvement (member_convergence), from a run's
    `loss_history` ({"epochs": [...], "members": [[loss per logged epoch] per member]})."""
    judged = [member_convergence(losses, tail, tol) for losses in history["members"]]
    return [c for c, _, _ in judged], [i for _, i, _ in judged]


def median_member(values, ok=None) -> int:
    """The member with the median of `values` (one per member, e.g. its test error) among the
    members that are ok (all when `ok` is None or none is) and finite; the lower one of the
    middle two for an even count. The one choice of the member a plot shows for an ensemble."""
    values = np.asarray(values, dtype=float).reshape(-1)
    if ok is not None and len(ok) == len(values) and any(ok):
        values = np.where(np.asarray(ok, dtype=bool), values, np.inf)
    values = np.where(np.isfinite(values), values, np.inf)
    finite = int(np.isfinite(values).sum())
    return int(np.argsort(values, kind="stable")[(finite - 1) // 2 if finite else 0])
