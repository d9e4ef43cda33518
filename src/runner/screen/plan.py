"""The screen's plan: conf/screen/<scale>.yaml, the candidate activation, the panel as sweeps of
the plan shared with reproduce.py (runner.sweeps.SweepPlan), the theory card's runs, and the
command that reruns it."""


from __future__ import annotations

import re
import shlex
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from hydra import compose as hydra_compose
from hydra import initialize_config_dir
from omegaconf import OmegaConf

from runner.checks import ConfigError
from runner.config import CONF_DIR, EXPRESSION_KEYS, compose, instantiate, quote_expressions
from runner.results.record import RunRecord
from runner.run import run
from runner.sweeps import SweepPlan
from runner.theory.activations import Activation


def load_screen(scale: str, config_dir: Path | None = None) -> dict:
    """conf/screen/<scale>.yaml (with its defaults), or <config_dir>/screen/<scale>.yaml, as plain data."""
    # Hydra finds a primary config in the directory it starts from; the other one is searched for defaults
    mine = config_dir is not None and (Path(config_dir) / "screen" / f"{scale}.yaml").exists()
    first, other = (Path(config_dir).resolve(), CONF_DIR) if mine else (CONF_DIR, config_dir)
    extra = [f"hydra.searchpath=[file://{Path(other).resolve()}]"] if other else []
    with initialize_config_dir(config_dir=str(first), version_base="1.3"):
        return OmegaConf.to_container(hydra_compose(config_name=f"screen/{scale}", overrides=extra).screen, resolve=True)


def scales(config_dir: Path | None = None) -> list[str]:
    """The screen's scales: conf/screen/*.yaml, and a user's own under <config_dir>/screen/."""
    folders = [Path(CONF_DIR) / "screen", *([Path(config_dir) / "screen"] if config_dir else [])]
    return sorted({path.stem for folder in folders for path in folder.glob("*.yaml")})


class Screen:
    """One screen: the candidate (its overrides and Activation), the plan of a scale, where it goes."""

    def __init__(self, overrides: list[str], scale: str, out: Path | None, config_dir: Path | None,
                 launcher: list[str] | None):
        self.typed = list(overrides)  # as the user typed them, for the command that reruns the screen
        self.overrides = quote_expressions(overrides)
        self.config_dir = config_dir.resolve() if config_dir else None
        self.activation: Activation = instantiate(compose(*self.overrides, config_dir=self.config_dir).activation,
                                                  "activation")
        if scale not in scales(self.config_dir):
            raise ConfigError("--scale", f"={scale!r} is invalid: must be one of {', '.join(scales(self.config_dir))}")
        self.scale, self.plan = scale, load_screen(scale, self.config_dir)
        self.name = self.activation.name
        if self.name in self.plan["baselines"]:
            raise ConfigError("activation.name", f"={self.name!r} is one of the baselines "
                              f"({', '.join(self.plan['baselines'])}): screen another, or give it its own name")
        self.alpha = float(self.plan["verdicts"]["alpha"])
        self.launcher = self.plan["launcher"] if launcher is None else launcher
        self.out = (out or Path("outputs") / "screen" / self.activation.label / scale).resolve()
        self.cwd = Path.cwd()

    # ---- the sweeps -----------------------------------------------------------------------------
    def command(self) -> str:
        """The command that reruns this screen, as a person would type it in a shell from the
        directory it ran in: the scale, the config directory and the output folder given (paths
        relative to that directory where they lie in it), and the overrides as typed."""
        def path(p: Path) -> str:
            return str(p.relative_to(self.cwd)) if p.is_relative_to(self.cwd) else str(p)
        words = ["python", "-m", "runner.screen", "--scale", self.scale,
                 *(["--config-dir", path(self.config_dir)] if self.config_dir else []), "--out", path(self.out),
                 *self.typed]
        return " ".join(shell_word(word) for word in words)

    def sweep_plan(self) -> SweepPlan:
        """The panel as sweeps of the shared plan (runner.sweeps.SweepPlan): per group, the
        candidate's sweep and the baselines', each with the screen's members, run from where the
        screen was started with the user's config directory."""
        size = f"ensemble.size={self.plan['members']}"
        sweeps = {}
        for group, spec in self.plan["panel"].items():
            sweeps[f"{group}-candidate"] = {"experiment": spec["experiment"],
                                            "overrides": [*spec["overrides"], *self.overrides, size]}
            sweeps[f"{group}-baselines"] = {"experiment": spec["experiment"], "overrides": [
                *spec["overrides"], f"activation={','.join(self.plan['baselines'])}", size]}
        return SweepPlan(sweeps, self.launcher, cwd=self.cwd, config_dir=self.config_dir)

    def estimate(self) -> Iterator[str]:
        """The screen's projected wall time here, each line as soon as it is known: the theory
        card (its tasks run here, into a throwaway folder), then the panel's sweeps as the shared
        plan probes them (SweepPlan.estimate), and the total."""
        def theory_card() -> dict[str, float]:
            with tempfile.TemporaryDirectory() as tmp:
                start = time.perf_counter()
                for name, preset in self.plan["theory"].items():
                    run(compose(*preset, *self.overrides, "logger=none", config_dir=self.config_dir), Path(tmp) / name)
                return {"theory card": time.perf_counter() - start}
        return self.sweep_plan().estimate(counted=theory_card)

    def run_panel(self) -> dict[str, dict]:
        return self.sweep_plan().run(self.out / "runs")

    # ---- the theory card ------------------------------------------------------------------------
    def theory_runs(self) -> dict[str, RunRecord]:
        """The susceptibility and phase-diagram tasks on the activation, in this process."""
        records = {}
        for name, preset in self.plan["theory"].items():
            cfg = compose(*preset, *self.overrides, "logger=none", config_dir=self.config_dir)
            records[name] = RunRecord.from_json(run(cfg, self.out / "theory" / name))
        return records

    def theory_records(self) -> dict[str, RunRecord]:
        """The records theory_runs left in the output folder (for --report-only); FileNotFoundError
        where one is missing."""
        records = {name: RunRecord.read(self.out / "theory" / name) for name in self.plan["theory"]}
        for name, record in records.items():
            if record is None:
                raise FileNotFoundError(f"{self.out / 'theory' / name / 'summary.json'}: the card's runs are not there")
        return records

SHELL_SAFE = re.compile(r"[\w@%+=:,./-]+")


def shell_word(word: str) -> str:
    """One argument as a person types it in a POSIX shell: bare when nothing in it is special;
    `key='value'` for an override whose value needs quotes (the shell drops them, and the runner
    quotes an expression for Hydra itself); else the whole word in single quotes, or in double
    quotes when it holds a single quote and nothing double quotes would expand."""
    if SHELL_SAFE.fullmatch(word):
        return word
    key, sep, value = word.partition("=")
    if key.lstrip("+~") in EXPRESSION_KEYS and len(value) > 1 and value[0] == value[-1] == "'" \
            and "'" not in value[1:-1]:
        value = value[1:-1]  # Hydra's quotes around an expression: the runner adds them back (quote_expressions)
    if sep and SHELL_SAFE.fullmatch(key) and "'" not in value:
        return f"{key}='{value}'"
    if "'" not in word:
        return f"'{word}'"
    if not re.search(r'["$`\\!]', word):
        return f'"{word}"'
    return shlex.quote(word)


