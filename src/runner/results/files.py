"""Files of a run: written atomically (a kill never leaves one truncated), CSV tables, figures."""

from __future__ import annotations

import csv
import io
import json
import math
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import numpy as np

from runner.faults import naming_full_disk


@contextmanager
def atomic_path(path: Path, previous: Path | None = None) -> Iterator[Path]:
    """A temporary path beside `path` to write to; when the block ends, the file there is fsynced
    and renamed over `path` (the file it replaces moved to `previous` first, when given). A kill
    never leaves `path` truncated, and an error (a full disk: DiskFull) removes the temporary
    file and leaves `path` as it was."""
    path = Path(path)
    with naming_full_disk(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        os.close(fd)
        tmp = Path(name)
        try:
            yield tmp
            with open(tmp, "rb") as f:
                os.fsync(f.fileno())
            if previous is not None and path.exists():
                os.replace(path, previous)
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """`data` into `path` through atomic_path."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def json_safe(obj):
    """The same nested lists, tuples and dicts with NaN and inf as None (strict JSON)."""
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def write_json_atomic(path: Path, obj) -> None:
    write_bytes_atomic(path, (json.dumps(obj, indent=2, allow_nan=False) + "\n").encode())


def save_npz_atomic(path: Path, **arrays: np.ndarray) -> None:
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    write_bytes_atomic(path, buf.getvalue())


def csv_bytes(header: list[str], rows: list[dict]) -> bytes:
    """A CSV file's content: the header, then the rows (dicts keyed by the header)."""
    buf = io.StringIO(newline="")
    writer = csv.DictWriter(buf, fieldnames=header)
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue().encode()


def write_csv(path: Path, rows: list[dict]) -> None:
    """Rows of dicts as CSV (the columns of the first row), written atomically."""
    write_bytes_atomic(path, csv_bytes(list(rows[0]), rows))


def pyplot():
    """matplotlib.pyplot on the Agg backend: every figure of the runner goes to a file, never to a
    display (the one place the backend is chosen)."""
    import matplotlib  # startup: matplotlib loads only where a figure is drawn

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path: Path, dpi: int = 110) -> None:
    """Save a matplotlib figure as PNG atomically and close it."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    pyplot().close(fig)
    write_bytes_atomic(path, buf.getvalue())
