"""The runs of a sweep as jobs: each run directory with its summary and overrides, and the one rule
of which members count (Job.members), for every table, plot, claim, screen and export."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from runner.results.summary import summary_status

NAMED = ("activation", "task")  # the groups whose object's own name summary.json records


@dataclass
class Job:
    """One run directory and what its summary says (status `missing` when it has none; a finished
    run's status by today's rule: runner.results.summary.summary_status)."""

    path: Path
    status: str
    summary: dict = field(default_factory=dict)
    overrides: dict = field(default_factory=dict)

    def value(self, dotted: str):
        """`activation` and `task`: the name the run recorded for them (an activation written as a
        formula is named by activation.name, not by the option `formula`); any other key: an override
        as typed, else a config value by dotted key, e.g. 'optimizer.lr', else `<key>.name`; None
        when absent."""
        if dotted in NAMED and self.summary.get(dotted):
            return self.summary[dotted]
        if dotted in self.overrides:
            return self.overrides[dotted]
        for key in (dotted, f"{dotted}.name"):
            node = self.summary.get("config", {})
            for part in key.split("."):
                if not isinstance(node, dict) or part not in node:
                    node = None
                    break
                node = node[part]
            if node is not None and not isinstance(node, dict):
                return node
        return None

    def fates(self, metric: str) -> list[str]:
        """Each member's fate, one per value of `metric`: the run's member_status
        (runner.results.summary.member_status); for a run without one (a task that trains nothing, or a
        metric with one value per run) `ok` where the value is finite, else `diverged`."""
        values = self.summary.get("metrics", {}).get(metric, {}).get("members", [])
        status = self.summary.get("member_status")
        if status and len(status) == len(values):
            return list(status)
        return ["ok" if v is not None else "diverged" for v in values]

    def members(self, metric: str) -> list[float | None]:
        """Every member's value of `metric`; None where it is not finite, or where the member
        diverged, blew up or ended no better than the zero function (Job.fates). The one rule of
        which members count, for every table, plot and claim."""
        values = self.summary.get("metrics", {}).get(metric, {}).get("members", [])
        return [v if fate == "ok" else None for v, fate in zip(values, self.fates(metric))]


def _job_number(path: Path):
    return (0, int(path.name)) if path.name.isdigit() else (1, path.name)


def collect(dirs: list[Path]) -> list[Job]:
    """Every job under the given directories (a run directory itself, or a sweep of them)."""
    jobs = []
    for root in map(Path, dirs):
        candidates = [root] if (root / "summary.json").exists() or (root / ".hydra").exists() else sorted(
            (p for p in root.iterdir() if p.is_dir() and ((p / "summary.json").exists() or (p / ".hydra").exists())),
            key=_job_number)
        for path in candidates:
            overrides = read_overrides(path)
            summary_path = path / "summary.json"
            if not summary_path.exists():
                jobs.append(Job(path, "missing", overrides=overrides))
                continue
            summary = json.loads(summary_path.read_text())
            jobs.append(Job(path, summary_status(summary), summary, overrides))
    return jobs


def read_overrides(path: Path) -> dict[str, str]:
    """{key: value} from a job's .hydra/overrides.yaml (group choices and key=value alike)."""
    import yaml

    file = path / ".hydra" / "overrides.yaml"
    items = yaml.safe_load(file.read_text()) if file.exists() else []
    pairs = (item.lstrip("+~").split("=", 1) for item in items or [] if "=" in item)
    return {key: value for key, value in pairs}
