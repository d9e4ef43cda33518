"""The runs of a sweep as jobs: each run directory with its record (summary.json) and overrides,
for every table, plot, claim, screen and export. Which members count is the record's one rule
(runner.results.record.RunRecord.members)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import yaml

from runner.results.record import FILE, MISSING, RunRecord

NAMED = ("activation", "task")  # the groups whose object's own name summary.json records


@dataclass
class Job:
    """One run directory and its record; a directory without summary.json holds an empty record
    of status `missing`."""

    path: Path
    record: RunRecord = field(default_factory=lambda: RunRecord(MISSING))
    overrides: dict = field(default_factory=dict)

    @property
    def status(self) -> str:
        """The run's status by today's rule (RunRecord.current_status); `missing` without a summary."""
        return self.record.current_status()

    def value(self, dotted: str):
        """`activation` and `task`: the name the run recorded for them (an activation written as a
        formula is named by activation.name, not by the option `formula`); any other key: an override
        as typed, else a config value by dotted key, e.g. 'optimizer.lr', else `<key>.name`; None
        when absent."""
        named = getattr(self.record, dotted) if dotted in NAMED else None
        if named:
            return named
        if dotted in self.overrides:
            return self.overrides[dotted]
        for key in (dotted, f"{dotted}.name"):
            node = self.record.setting(key)
            if node is not None and not isinstance(node, dict):
                return node
        return None

    def fates(self, metric: str) -> list[str]:
        """Each member's fate, one per value of `metric` (RunRecord.fates)."""
        return self.record.fates(metric)

    def members(self, metric: str) -> list[float | None]:
        """Every member's value of `metric`, None where the member does not count (RunRecord.members)."""
        return self.record.members(metric)


def _job_number(path: Path):
    return (0, int(path.name)) if path.name.isdigit() else (1, path.name)


def collect(dirs: list[Path]) -> list[Job]:
    """Every job under the given directories (a run directory itself, or a sweep of them)."""
    jobs = []
    for root in map(Path, dirs):
        candidates = [root] if (root / FILE).exists() or (root / ".hydra").exists() else sorted(
            (p for p in root.iterdir() if p.is_dir() and ((p / FILE).exists() or (p / ".hydra").exists())),
            key=_job_number)
        for path in candidates:
            jobs.append(Job(path, RunRecord.read(path) or RunRecord(MISSING), read_overrides(path)))
    return jobs


def read_overrides(path: Path) -> dict[str, str]:
    """{key: value} from a job's .hydra/overrides.yaml (group choices and key=value alike)."""
    file = path / ".hydra" / "overrides.yaml"
    items = yaml.safe_load(file.read_text()) if file.exists() else []
    pairs = (item.lstrip("+~").split("=", 1) for item in items or [] if "=" in item)
    return {key: value for key, value in pairs}
