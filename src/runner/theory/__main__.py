"""What the theory measures of activations: `python -m runner.theory [--config-dir DIR] [activation=...]`.

Without an activation override, one line per built-in (conf/activation/*.yaml): its universality
class, its critical (C_b, C_W) or why there is none, and χ∥/χ⊥ at small and large K, all measured
from the function (runner.theory.criticality), and its neural tangent kernel through 10 layers
(runner.theory.ntk). With one (`activation=formula
activation.formula='z*tanh(softplus(z))'`, or your own YAML under --config-dir), that activation.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from runner.checks import ConfigError
from runner.config import CONF_DIR, compose, instantiate
from runner.theory.activations import Activation
from runner.theory.card import card_ntk
from runner.theory.criticality import criticality

USER_FUNCTION = ("formula", "python")  # conf/activation options that need the user's function


def line(act: Activation) -> str:
    c = criticality(act)
    ratios = f"χ∥/χ⊥ {c.ratio_small_K:.4g} at K={c.K_small:g}, {c.ratio_large_K:.4g} at K={c.K_large:g}"
    return f"{act!r:<28} {c.line():<52} {ratios:<48} NTK {card_ntk(act)[0]}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m runner.theory", description=__doc__.splitlines()[0])
    parser.add_argument("--config-dir", type=Path, default=None, help="your own conf/ beside the runner's")
    parser.add_argument("overrides", nargs="*", help="activation=... and activation.<key>=... overrides")
    args = parser.parse_args(argv)
    try:
        if any(o.startswith("activation=") for o in args.overrides):
            names = [None]
        else:
            names = sorted(p.stem for p in (Path(CONF_DIR) / "activation").glob("*.yaml") if p.stem not in USER_FUNCTION)
        for name in names:
            overrides = [*args.overrides] if name is None else [f"activation={name}", *args.overrides]
            act = instantiate(compose(*overrides, config_dir=args.config_dir).activation, "activation")
            print(line(act), flush=True)
    except ConfigError as exc:
        print(f"runner.theory: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
