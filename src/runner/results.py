"""Run outputs: atomic file writes and the summary.json contract."""

from __future__ import annotations

import io
import json
import math
import os
import tempfile
from pathlib import Path

import numpy as np
import torch

from runner.faults import naming_full_disk

# A run that Ctrl-C or SIGTERM stopped (summary.json also holds `signal` and `epoch`): not done,
# so skip_completed runs it again and resume=true continues it; tables list it, never drop it.
INTERRUPTED = "interrupted"


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Write to a temporary file beside `path`, fsync, then rename: a kill never truncates, and a
    full disk (DiskFull) leaves the old file as it was."""
    path = Path(path)
    with naming_full_disk(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise


def write_json_atomic(path: Path, obj) -> None:
    write_bytes_atomic(path, (json.dumps(obj, indent=2, allow_nan=False) + "\n").encode())


def save_npz_atomic(path: Path, **arrays: np.ndarray) -> None:
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    write_bytes_atomic(path, buf.getvalue())


def _finite_or_none(x: float) -> float | None:
    return x if math.isfinite(x) else None


def member_stats(values: torch.Tensor | np.ndarray | list[float]) -> dict:
    """mean/std/median/min/max over the finite members, and every member (null where non-finite)."""
    vals = np.asarray(torch.as_tensor(values).detach().cpu().double(), dtype=float).reshape(-1)
    finite = vals[np.isfinite(vals)]
    stats = {"mean": None, "std": None, "median": None, "min": None, "max": None}
    if finite.size:
        stats = {"mean": float(finite.mean()), "std": float(finite.std()), "median": float(np.median(finite)),
                 "min": float(finite.min()), "max": float(finite.max())}
    stats["members"] = [_finite_or_none(float(v)) for v in vals]
    stats["n_finite"] = int(finite.size)
    return stats


# Run statuses of runs that trained to the end: their members' metrics are in the summary.
FINISHED = ("completed", "partly_diverged", "diverged")


def member_status(final: torch.Tensor, initial: torch.Tensor, zero_output: torch.Tensor,
                  blowup_factor: float) -> list[str]:
    """Per member: `diverged` (final loss not finite), `blown_up` (finite, but more than
    blowup_factor x the smaller of its initial loss and the loss of the zero function: it ended
    far worse than where it started, or than predicting nothing), else `ok`."""
    final, initial, zero_output = (torch.as_tensor(v).double().cpu() for v in (final, initial, zero_output))
    reference = torch.fmin(initial, zero_output)  # fmin: a NaN reference gives way to the other
    out = []
    for f, r in zip(final.tolist(), reference.tolist()):
        if not math.isfinite(f):
            out.append("diverged")
        elif math.isfinite(r) and f > blowup_factor * r:
            out.append("blown_up")
        else:
            out.append("ok")
    return out


def run_status(members: list[str]) -> str:
    """completed (every member ok), diverged (none ok) or partly_diverged."""
    bad = sum(m != "ok" for m in members)
    return "completed" if not bad else "diverged" if bad == len(members) else "partly_diverged"


def read_summary(run_dir: Path) -> dict | None:
    """The summary of a run directory, or None if it has none (yet)."""
    path = Path(run_dir) / "summary.json"
    if not path.exists():
        return None
    return json.loads(path.read_text())


def save_figure(fig, path: Path, dpi: int = 110) -> None:
    """Save a matplotlib figure as PNG atomically and close it."""
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    plt.close(fig)
    write_bytes_atomic(path, buf.getvalue())
