"""Screen any activation: its theory card and its standing against ReLU, GELU and tanh, in one command.

    python -m runner.screen activation=formula activation.formula='z*sigmoid(z)' activation.name=swish
    python -m runner.screen --config-dir myconf activation=swish --scale medium
    python -m runner.screen activation=mrepu --estimate          # the time it takes here, nothing else trains
    python -m runner.screen activation=python activation.fn=mish.mish --wandb

Paper B's method as a command. conf/screen/<scale>.yaml says what runs (smoke about 10 minutes on
a 2-core CPU, medium about an hour, paper on a cluster):

1. **The theory card** (runner.theory.card): σ(0), σ'(0), how often σ is differentiable and where
   it is not, its universality class and critical C_W (or none, with χ∥/χ⊥ at small and large K),
   all measured from the function; the runner's own `susceptibility` and `phase_diagram` tasks run
   on it (the stable window in C_W x input scale); and for each test network the init that
   `init.C_W=auto` picks, with the kernel through depth there and at the preset's C_W.
2. **The training panel**: the activation at `init.C_W=auto` against each baseline on Table 4/5's
   one-input targets (train loss, derivative error), three PINN equations (rel_l2), each comparison
   paired by seed and judged by the claims' own code (runner.results.claims.versus_check: sign
   tests, the convergence gate, Holm): better, worse or cannot tell, with the reason; and on Paper
   A's x² and x³, the extrapolation shape every activation takes (the per-member rules of claims
   A1-A3, runner.tasks.extrapolation.SHAPES).

Every panel sweep is an ordinary multirun of `python -m runner` (the candidate and the baselines
apart), into <out>/runs/ with skip_completed and resume, so a second call finishes what a first
left. Writes <out>/SCREEN.md (default outputs/screen/<activation>/<scale>/), its figures, screen.json
(the card's and the panel's numbers) and, with --wandb, one W&B run with the card in its summary.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import platform
import re
import shlex
import shutil
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch
from hydra import compose as hydra_compose
from hydra import initialize_config_dir
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import OmegaConf

from runner.checks import ConfigError
from runner.config import CONF_DIR, EXPRESSION_KEYS, compose, expand, instantiate, quote_expressions
from runner.faults import Interrupted
from runner.results.claims import members, select, versus_check
from runner.results.files import json_safe, pyplot, save_figure, write_bytes_atomic, write_csv, write_json_atomic
from runner.results.jobs import collect
from runner.results.plots import forest_rows, improvement_rows, plot_forest, plot_improvement
from runner.results.record import RunRecord
from runner.results.tables import cell, evidence, test_table
from runner.results.tracking import summary_run
from runner.results.verdicts import CONTRADICTED, REPRODUCED, decisions, share
from runner.run import build, run
from runner.sweeps import duration, launcher_workers, probe_sweep, process_start, run_sweep, sweep_wall
from runner.tasks.extrapolation import PRECEDENCE, SHAPES, member_shapes
from runner.theory.activations import Activation
from runner.theory.card import Card, card
from runner.training.callbacks import StopOnSignal
from runner.training.loggers import wandb_mode

log = logging.getLogger("runner")
WORDS = {REPRODUCED: "better", CONTRADICTED: "worse"}  # a comparison's verdict, read for a screen


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

    def sweeps(self) -> dict[str, tuple[dict, list[str]]]:
        """name -> (spec, extra overrides): per panel group, the candidate's sweep and the baselines'."""
        size = f"ensemble.size={self.plan['members']}"
        out = {}
        for group, spec in self.plan["panel"].items():
            out[f"{group}-candidate"] = (spec, [*self.overrides, size])
            out[f"{group}-baselines"] = (spec, [f"activation={','.join(self.plan['baselines'])}", size])
        return out

    def estimate(self) -> list[str]:
        """The screen's projected wall time here, each line printed as soon as it is known: the
        theory card (its tasks run here, into a throwaway folder), then per panel sweep its jobs'
        projected times (runner.sweeps.probe_sweep) with its process starts and job checks
        (runner.sweeps.sweep_wall), and the total."""
        workers = launcher_workers(self.launcher)
        job_overrides = [o for o in self.launcher if not o.startswith("hydra") and "=" in o]
        startup = process_start()
        lines = [f"  process start {startup:.1f} s (once per sweep, once more for its parallel workers)"]
        print(lines[-1], flush=True)
        with tempfile.TemporaryDirectory() as tmp:
            start = time.perf_counter()
            for name, preset in self.plan["theory"].items():
                run(compose(*preset, *self.overrides, "logger=none", config_dir=self.config_dir), Path(tmp) / name)
            total = time.perf_counter() - start
        lines.append(f"  {'theory card':24s} ~{duration(total)} (run here)")
        print(lines[-1], flush=True)
        for name, (spec, extra) in self.sweeps().items():
            probe = probe_sweep({"experiment": spec["experiment"], "overrides": [*spec["overrides"], *extra]},
                                job_overrides)
            wall = sweep_wall(probe.times, workers, startup, probe.check)
            total += wall
            lines.append(f"  {name:24s} {len(probe.times):3d} jobs: ~{duration(wall)} on {workers} workers "
                         f"({probe.note})")
            print(lines[-1], flush=True)
        return lines + [f"  total ~{duration(total)}, measured on this machine now: a loaded machine projects longer"]

    def run_panel(self) -> dict[str, dict]:
        runs = self.out / "runs"
        return {name: run_sweep(name, spec, self.launcher, extra, runs, cwd=self.cwd, config_dir=self.config_dir)
                for name, (spec, extra) in self.sweeps().items()}

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

    def networks(self) -> list[dict]:
        """Per panel group, its first job's network: the init `init.C_W=auto` picks for its inputs
        and the kernel forecast there, and at the preset's own init (the paper's C_W)."""
        rows = []
        for group, spec in self.plan["panel"].items():
            first = expand(OverridesParser.create().parse_overrides(spec["overrides"]))[0]  # the sweep's first job
            base = [f"experiment={spec['experiment']}", *(o for o in first if not o.startswith(("init=", "init.C_W="))),
                    *self.overrides]
            auto = build(compose(*base, "init=critical", "init.C_W=auto", config_dir=self.config_dir))
            preset = build(compose(*base, config_dir=self.config_dir))
            (init, fc), (p_init, p_fc) = auto.resolve_init(), preset.resolve_init()
            rows.append({"group": group, "task": auto.task.name, "network": f"{auto.model.depth}x{auto.model.width}",
                         "auto": init.as_dict(), "forecast": fc.as_dict(), "preset": p_init.as_dict(),
                         "preset_forecast": p_fc.as_dict()})
        return rows

    # ---- the training panel ---------------------------------------------------------------------
    def comparisons(self) -> list[dict]:
        """Per group and metric, the candidate against each baseline (versus_check): the verdict
        read as better / worse / cannot tell, the evidence, and the tests."""
        out = []
        for group, spec in self.plan["panel"].items():
            jobs = self.jobs(group)
            for metric, what in (spec.get("metrics") or {}).items():
                for baseline in self.plan["baselines"]:
                    outcome = versus_check(metric, baseline, spec["key"], candidates=(self.name,))(jobs, self.alpha)
                    decided = decisions(list(outcome.tests), self.alpha)
                    out.append({"group": group, "metric": metric, "what": what, "baseline": baseline,
                                "verdict": WORDS.get(outcome.verdict, "cannot tell"), "outcome": outcome,
                                "decided": decided, "evidence": evidence(outcome, decided, self.alpha)})
        return out

    def jobs(self, group: str) -> list:
        runs = self.out / "runs"
        return [job for side in ("candidate", "baselines") if (runs / f"{group}-{side}").is_dir()
                for job in collect([runs / f"{group}-{side}"])]

    def shapes(self) -> list[dict]:
        """Per group with `shapes`, activation and target: how many trained members take each shape
        (one shape per member: runner.tasks.extrapolation.member_shapes) and the shape a majority
        takes (one-sided Clopper-Pearson above 0.5), if any."""
        rows = []
        for group, spec in self.plan["panel"].items():
            if not spec.get("shapes"):
                continue
            jobs = self.jobs(group)
            for act in [self.name, *self.plan["baselines"]]:
                for column in dict.fromkeys(j.value(spec["key"]) for j in select(jobs)):
                    chosen = select(jobs, activation=act, **{spec["key"].replace(".", "__"): column})
                    shapes = member_shapes({shape.metric: members(chosen, shape.metric) for shape in SHAPES})
                    trained = [x for x in shapes if isinstance(x, str)]  # one shape per trained member
                    counts = {shape.name: (trained.count(shape.name), len(trained)) for shape in SHAPES}
                    taken = [name for name, (k, n) in counts.items()
                             if n and share(name, k, n, 0.5, self.alpha).p < self.alpha]
                    rows.append({"activation": act, "target": column, "shape": ", ".join(taken) or "none clear",
                                 **{f"{name} members": f"{k}/{n}" for name, (k, n) in counts.items()}})
        return rows


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


def kernel_figure(networks: list[dict], path: Path) -> None:
    """The median input's kernel through depth per test network, at auto's init (solid) and at the
    preset's C_W (dashed)."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 4))
    for i, net in enumerate(networks):
        for key, style in (("forecast", "-"), ("preset_forecast", "--")):
            K = [float(v) for v in net[key]["K"][1]]  # the median input
            ax.plot(range(1, len(K) + 1), K, style, color=f"C{i}", marker="o", ms=3,
                    label=f"{net['group']} ({net['network']}): " + (
                        "init.C_W=auto" if key == "forecast" else f"preset C_W {net['preset']['C_W']:.3g}"))
    ax.set(yscale="log", xlabel="layer", ylabel="kernel K(l) of the median input",
           title="kernel through depth: auto's init (solid) and the preset's C_W (dashed)")
    ax.title.set_fontsize(9)
    ax.legend(fontsize=6)
    fig.tight_layout()
    save_figure(fig, path)


def card_section(c: Card, theory: dict[str, RunRecord], window: dict, networks: list[dict], label: str) -> list[str]:
    sus = theory["susceptibility"].metrics
    pd = theory["phase_diagram"].metrics
    one = lambda name: (sus.get(f"{label}/{name}") or {}).get("mean")  # noqa: E731
    lines = ["## Theory card", "",
             "| | |", "|---|---|",
             f"| σ(0), σ'(0) | {c.sigma_0:.4g}, {c.derivative_0:.4g} |",
             f"| differentiable | {c.smoothness}" + (f"; not declared as kinks: {c.undeclared_kinks} (declare them "
                                                        "for exact quadrature)" if c.undeclared_kinks else "") + " |",
             f"| universality class (measured) | {c.universality}" + (f", a1 = {c.a1:.3g}" if c.a1 is not None else "")
             + " |",
             f"| critical initialization | {c.critical}" + ("" if c.universality != "none" or c.C_W is not None
                                                          else f": {cell(c.reason)}") + " |",
             f"| χ∥/χ⊥ | {c.ratio_small_K:.4g} at K = {c.K_small:g}, {c.ratio_large_K:.4g} at K = {c.K_large:g} |",
             f"| neural tangent kernel (NTK parameterization, runner.theory.ntk) | {c.ntk} |",
             f"| susceptibility task | critical C_W {fmt_or_none(one('critical_C_W'))}; a nonzero fixed point up to "
             f"C_W = {fmt_or_none(one('max_C_W_with_fixed_point'))} (K* of C_W = 0.01 … 10) |",
             f"| stable window (phase diagram, depth {window['depth']}) | {window['text']}; stable cells: theory "
             f"{pd['theory_share_stable']['mean']:.0%}, measured {pd['measured_share_stable']['mean']:.0%}; theory "
             f"and measurement agree in {pd['agreement']['mean']:.0%} of the cells away from the boundary |",
             "", "![phase diagram](figures/phase_diagram.png)", "", "![susceptibility](figures/ratio_vs_K.png)", "",
             "### The test networks at `init.C_W=auto`", "",
             "| group | task | network | auto picks (C_W_first, C_W, C_b) | forecast | at the preset's C_W |",
             "|---|---|---|---|---|---|"]
    for net in networks:
        a, f, p, pf = net["auto"], net["forecast"], net["preset"], net["preset_forecast"]
        fate = lambda fc: fc["verdict"] + (f" at layer {fc['leaves_at']}" if fc["leaves_at"] else "")  # noqa: E731
        lines.append(f"| {net['group']} | {net['task']} | {net['network']} | {a['C_W_first']:.3g}, {a['C_W']:.3g}, "
                     f"{a['C_b']:.3g} | {fate(f)} | C_W {p['C_W']:.3g}: {fate(pf)} |")
    return lines + ["", "![kernel through depth](figures/kernel_through_depth.png)", ""]


def fmt_or_none(v) -> str:
    return "none" if v is None or (isinstance(v, float) and not np.isfinite(v)) else f"{v:.4g}"


def pd_window(run_dir: Path) -> dict:
    """The theory's stable C_W range at the input scale nearest K0 = 1 (phase_diagram.csv)."""
    with open(run_dir / "phase_diagram.csv") as f:
        rows = [{k: float(v) if k != "theory_fate" else v for k, v in r.items()} for r in csv.DictReader(f)]
    depth = RunRecord.read(run_dir).setting("model.depth")
    K0 = min({r["K0"] for r in rows}, key=lambda k: abs(np.log(k)))
    stable = sorted(r["C_W"] for r in rows if r["K0"] == K0 and r["theory_fate"] == "stable")
    text = (f"C_W {stable[0]:.3g} to {stable[-1]:.3g} at K0 = {K0:.3g}" if stable
            else f"no stable C_W at K0 = {K0:.3g}")
    return {"depth": depth, "K0": K0, "C_W": stable, "text": text}


def panel_section(screen: Screen, comparisons: list[dict], shapes: list[dict]) -> list[str]:
    baselines = screen.plan["baselines"]
    lines = ["## Training panel", "",
             f"{screen.name} at `init.C_W=auto` against each baseline (also at auto), member k against member k "
             f"({screen.plan['members']} pairs per column), sign tests with the convergence gate and Holm at α = "
             f"{screen.alpha:g}: **better** when it wins every column, **worse** when it loses one (Holm), else "
             "**cannot tell**, with the reason.", "",
             "| comparison | " + " | ".join(f"vs {b}" for b in baselines) + " |", "|---" * (len(baselines) + 1) + "|"]
    keys = list(dict.fromkeys((c["group"], c["metric"], c["what"]) for c in comparisons))
    for group, metric, what in keys:
        cells = []
        for b in baselines:
            c = next(c for c in comparisons if (c["group"], c["metric"], c["baseline"]) == (group, metric, b))
            cells.append(f"**{c['verdict']}**: {cell(c['evidence'])}")
        lines.append(f"| {group}: {what} (`{metric}`) | " + " | ".join(cells) + " |")
    if shapes:
        names = [s.name for s in SHAPES]
        lines += ["", "**Extrapolation shapes** (Paper A's x² and x³; the per-member rules of claims A1-A3: "
                  + "; ".join(f"{s.name}: {s.rule}" for s in SHAPES) + "; one shape per member, the first of "
                  + ", ".join(PRECEDENCE) + " whose rule it meets): the shape more than half of the trained "
                  "members take (one-sided Clopper-Pearson bound above 0.5).", "",
                  "| activation | target | shape | " + " | ".join(f"{n} members" for n in names) + " |",
                  "|---" * (3 + len(names)) + "|"]
        lines += [f"| {r['activation']} | {r['target']} | {r['shape']} | "
                  + " | ".join(r[f"{n} members"] for n in names) + " |" for r in shapes]
    lines += ["", "![every comparison's effect](figures/forest.png)", "",
              "![probability of improvement](figures/improvement.png)", "", "<details><summary>every test</summary>", ""]
    for c in comparisons:
        lines += [f"**{c['group']}: {c['what']} against {c['baseline']}**: {c['verdict']}", "",
                  *(test_table(c["decided"], screen.alpha) if c["decided"] else [c["outcome"].measured]), ""]
    return lines + ["</details>", ""]


def write_screen(screen: Screen, theory: dict[str, RunRecord], networks: list[dict], seconds: float | None) -> Path:
    """SCREEN.md, its figures and screen.json in screen.out."""
    out, figs = screen.out, screen.out / "figures"
    c = card(screen.activation)
    window = pd_window(out / "theory" / "phase_diagram")
    comparisons, shapes = screen.comparisons(), screen.shapes()
    groups = [(f"{x['what']} vs {x['baseline']}", x["decided"]) for x in comparisons]
    plot_forest(forest_rows(groups), figs / "forest.png", f"{screen.name} against the baselines: left of 0 is better")
    plot_improvement(improvement_rows(groups), figs / "improvement.png", f"P({screen.name} beats its paired baseline)")
    kernel_figure(networks, figs / "kernel_through_depth.png")
    for name, src in (("phase_diagram.png", "phase_diagram/plots/phase_diagram.png"),
                      ("ratio_vs_K.png", "susceptibility/plots/ratio_vs_K.png")):
        if (out / "theory" / src).exists():
            figs.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(out / "theory" / src, figs / name)
    record_path = out / "screen.json"
    previous = json.loads(record_path.read_text()) if record_path.exists() else {}
    seconds = seconds if seconds is not None else previous.get("seconds")
    command = screen.command()
    lines = [f"# Screen of `{screen.activation!r}`: scale `{screen.scale}`", "",
             f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, {platform.node()}, {platform.machine()}, "
             f"{torch.get_num_threads()} CPU threads, torch {torch.__version__}; "
             + (f"ran for {duration(seconds)}" if seconds else "rewritten from earlier runs") + f": `{command}`.", "",
             *card_section(c, theory, window, networks, screen.activation.label),
             *panel_section(screen, comparisons, shapes),
             "## Rerun", "", f"From `{screen.cwd}`:", "", "```bash", command,
             f"{command} --report-only    # SCREEN.md again from the runs", "```",
             "", f"Runs: `{out / 'runs'}` (the panel's sweeps), `{out / 'theory'}` (the card's tasks); numbers: "
             "`screen.json`; how it works: docs/screening.md.", ""]
    text = "\n".join(lines)
    write_bytes_atomic(out / "SCREEN.md", text.encode())
    record = {"activation": repr(screen.activation), "scale": screen.scale, "seconds": seconds, "command": command,
              "card": c.as_dict(), "networks": networks,
              "susceptibility": {k: v["mean"] for k, v in theory["susceptibility"].metrics.items()},
              "phase_diagram": {k: v["mean"] for k, v in theory["phase_diagram"].metrics.items()},
              "window": window,
              "panel": [{k: v for k, v in x.items() if k not in ("outcome", "decided")} for x in comparisons],
              "shapes": shapes}
    write_json_atomic(record_path, json_safe(record))
    if comparisons:
        write_csv(out / "panel.csv", [{k: v for k, v in x.items() if k not in ("outcome", "decided")}
                                      for x in comparisons])
    return out / "SCREEN.md"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m runner.screen", description=__doc__.splitlines()[0])
    parser.add_argument("overrides", nargs="+", help="activation=... and activation.<key>=... (as for python -m runner)")
    parser.add_argument("--scale", default="smoke", help="conf/screen/<scale>.yaml: smoke, medium, paper, or "
                        "your own under <config-dir>/screen/")
    parser.add_argument("--config-dir", type=Path, default=None, help="your own conf/ (an activation of yours)")
    parser.add_argument("--out", type=Path, default=None, help="default: outputs/screen/<activation>/<scale>")
    parser.add_argument("--launcher", nargs="*", default=None, help="Hydra launcher overrides replacing the plan's")
    parser.add_argument("--estimate", action="store_true", help="print the time it takes here and stop")
    parser.add_argument("--report-only", action="store_true", help="rewrite SCREEN.md from the runs there")
    parser.add_argument("--wandb", action="store_true", help="also one W&B run with the card in its summary")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    try:
        screen = Screen(args.overrides, args.scale, args.out, args.config_dir, args.launcher)
    except ConfigError as exc:
        print(f"runner.screen: error: {exc}", file=sys.stderr)
        return 2
    missing = [d for d in ("theory", "runs") if not (screen.out / d).is_dir()]
    if args.report_only and missing:
        print(f"runner.screen: error: {screen.out / missing[0]} does not exist: --report-only rewrites SCREEN.md "
              "from a screen's runs; run the screen without it first", file=sys.stderr)
        return 2
    try:
        with StopOnSignal():
            if args.estimate:
                print(f"screen of {screen.activation!r} at scale {args.scale}: timing probe (nothing else runs):",
                      flush=True)
                print(screen.estimate()[-1])
                return 0
            start = time.perf_counter()
            print(f"screen of {screen.activation!r} at scale {args.scale} into {screen.out}", flush=True)
            theory = screen.theory_records() if args.report_only else screen.theory_runs()
            networks = screen.networks()
            print(f"  theory card: {duration(time.perf_counter() - start)}", flush=True)
            if not args.report_only:
                for name, result in screen.run_panel().items():
                    status = "ok" if result["rc"] == 0 else f"exit {result['rc']} (see runs/{name}.log)"
                    print(f"  {name:24s} {duration(result['seconds']):>7s}  {status}", flush=True)
            path = write_screen(screen, theory, networks, None if args.report_only else time.perf_counter() - start)
    except Interrupted as exc:
        print(f"runner.screen: stopped by {exc.signal_name}; the same command resumes it", file=sys.stderr)
        return exc.exit_code
    print(f"wrote {path}")
    if args.wandb:
        record = json.loads((screen.out / "screen.json").read_text())
        flat = {f"card/{k}": v for k, v in record["card"].items() if isinstance(v, (int, float, str, type(None)))}
        flat.update({f"panel/{p['group']}/{p['metric']}/vs_{p['baseline']}": p["verdict"] for p in record["panel"]})
        run_dir = summary_run(f"screen-{screen.activation.label}-{args.scale}", "screen", flat,
                              plot_paths=sorted((screen.out / "figures").glob("*.png")), project="runner", entity=None,
                              group=f"screen-{screen.activation.label}", mode=wandb_mode("auto"), save_dir=screen.out)
        print(f"W&B run in {run_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
