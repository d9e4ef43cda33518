"""Read back the `.wandb` file an offline W&B run writes, for tests (wandb ships no reader).

The file is a 7-byte header (":W&B", magic 0xBEE1 little-endian, version 0) followed by a
LevelDB-style log: 32 KiB blocks of records, each a 7-byte header (CRC-32 of the type byte and
the data, little-endian uint16 length, type FULL=1 / FIRST=2 / MIDDLE=3 / LAST=4) and its data;
a block's last < 7 bytes are zero padding. A FIRST..LAST run of fragments is one entry, and each
entry is a serialized `wandb.proto.wandb_internal_pb2.Record`.
"""

from __future__ import annotations

import json
import struct
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from wandb.proto import wandb_internal_pb2 as pb

FILE_HEADER = b":W&B" + struct.pack("<HB", 0xBEE1, 0)
BLOCK = 32 * 1024
RECORD_HEADER = 7
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4


def records(path: Path) -> Iterator[pb.Record]:
    """Every Record in a .wandb file, in order; a bad header, checksum or framing is an error."""
    data = Path(path).read_bytes()
    if data[:len(FILE_HEADER)] != FILE_HEADER:
        raise ValueError(f"{path}: not a .wandb file (header {data[:7]!r})")
    pos, fragments = len(FILE_HEADER), None
    while pos < len(data):
        left = BLOCK - pos % BLOCK
        if left < RECORD_HEADER:  # the block's zero padding
            pos += left
            continue
        if pos + RECORD_HEADER > len(data):
            raise ValueError(f"{path}: truncated record header at byte {pos}")
        crc, length, kind = struct.unpack("<IHB", data[pos:pos + RECORD_HEADER])
        body = data[pos + RECORD_HEADER:pos + RECORD_HEADER + length]
        if len(body) != length or RECORD_HEADER + length > left:
            raise ValueError(f"{path}: record at byte {pos} runs past its block or the file")
        if zlib.crc32(bytes([kind]) + body) != crc:
            raise ValueError(f"{path}: checksum mismatch at byte {pos}")
        pos += RECORD_HEADER + length
        if kind == FULL and fragments is None:
            entry = body
        elif kind == FIRST and fragments is None:
            fragments = [body]
            continue
        elif kind == MIDDLE and fragments is not None:
            fragments.append(body)
            continue
        elif kind == LAST and fragments is not None:
            entry, fragments = b"".join(fragments + [body]), None
        else:
            raise ValueError(f"{path}: record type {kind} out of order at byte {pos}")
        record = pb.Record()
        record.ParseFromString(entry)
        yield record
    if fragments is not None:
        raise ValueError(f"{path}: ends inside a fragmented record")


def _apply(target: dict, items) -> None:
    """Apply ConfigItem/SummaryItem/HistoryItem updates: `key`, or `nested_key` as a path of dicts."""
    for item in items:
        *path, last = list(item.nested_key) or [item.key]
        node = target
        for part in path:
            node = node.setdefault(part, {})
        node[last] = json.loads(item.value_json)


def _remove(target: dict, items) -> None:
    for item in items:
        *path, last = list(item.nested_key) or [item.key]
        node = target
        for part in path:
            node = node.get(part, {})
        node.pop(last, None)


@dataclass
class OfflineRun:
    """What a .wandb file says about its run: config, summary (every update applied in order),
    history rows, tags, group, and whether it holds the exit record of a finished run."""

    path: Path
    config: dict = field(default_factory=dict)
    summary: dict = field(default_factory=dict)
    history: list[dict] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    group: str = ""
    name: str = ""
    job_type: str = ""
    finished: bool = False

    @property
    def files_dir(self) -> Path:
        return self.path.parent / "files"


def replay(path: Path) -> OfflineRun:
    """A .wandb file's records, replayed into an OfflineRun."""
    run = OfflineRun(Path(path))
    for record in records(path):
        kind = record.WhichOneof("record_type")
        if kind == "run":
            r = record.run
            run.group, run.name, run.job_type = r.run_group, r.display_name, r.job_type
            run.tags = list(r.tags)
            _apply(run.config, r.config.update)
            _apply(run.summary, r.summary.update)
        elif kind in ("config", "summary"):
            _apply(getattr(run, kind), getattr(record, kind).update)
            _remove(getattr(run, kind), getattr(record, kind).remove)
        elif kind == "history":
            row: dict = {}
            _apply(row, record.history.item)
            run.history.append(row)
        elif kind == "exit":
            run.finished = True
    return run


def read_run(path: Path, timeout: float = 30.0) -> OfflineRun:
    """The finished run of a .wandb file. W&B's service process writes the file and may still be
    flushing it when `run.finish()` returns, so this waits (up to `timeout` s) for its exit record."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            run = replay(path)
            if run.finished:
                return run
            problem = "no exit record"
        except ValueError as exc:  # a record still being written
            problem = str(exc)
        if time.monotonic() > deadline:
            raise AssertionError(f"{path}: {problem} after {timeout:g} s: the run did not finish")
        time.sleep(0.1)


def offline_runs(root: Path) -> list[OfflineRun]:
    """Every offline run under `root` (its wandb/offline-run-*/run-*.wandb files), oldest first."""
    return [read_run(p) for p in sorted(Path(root).glob("**/offline-run-*/run-*.wandb"))]
