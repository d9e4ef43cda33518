"""The screen written out: SCREEN.md (the theory card, then the training panel), its figures,
screen.json (the card's and the panel's numbers) and panel.csv."""

from __future__ import annotations

import json
import platform
import shutil
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch

from runner.results.files import json_safe, pyplot, save_figure, write_bytes_atomic, write_csv, write_json_atomic
from runner.results.plots import forest_rows, improvement_rows, plot_forest, plot_improvement
from runner.results.record import RunRecord
from runner.results.tables import cell, test_table
from runner.screen import panel
from runner.screen.plan import Screen
from runner.sweeps import duration
from runner.tasks.extrapolation import PRECEDENCE, SHAPES
from runner.theory.card import Card, card


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
    """The theory card's Markdown: the card's facts, the theory tasks' numbers and the test networks."""
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


def panel_section(screen: Screen, comparisons: list[dict], shapes: list[dict]) -> list[str]:
    """The training panel's Markdown: one row per comparison, the extrapolation shapes, every test."""
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
    window = panel.pd_window(out / "theory" / "phase_diagram")
    comparisons, shapes = panel.comparisons(screen), panel.shapes(screen)
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
