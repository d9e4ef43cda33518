"""The one rule for a kernel's fate at initialization: it explodes, vanishes, or keeps its scale.

A kernel K(l) keeps its scale ("stable") while it stays within a factor BAND of its first-layer
value K(1): K(1)/BAND <= K(l) <= BAND·K(1). Above the band it explodes, below it vanishes; a
kernel that is not finite (overflowed, or NaN from ∞ − ∞) explodes. Paper B's Fig. 5 claim is
that MRePU's kernel "maintains a consistent scale", i.e. stays within an order of magnitude, and
PDLT's criticality asks the same of a finite-depth network: the kernel neither grows nor decays
geometrically. One order of magnitude is the line where an exponential trend becomes visible on a
log plot over a network's depth, and where a network's starting outputs or gradients are off by
more than a learning-rate tuning absorbs. The forecast (and `init.C_W=auto`), the phase diagram,
the ensembles' measured fates (runner.theory.measurements) and Paper B's claims all use this rule.
"""

from __future__ import annotations

import math

import numpy as np

BAND = 10.0                                   # the band: a factor of 10 either way of K(1)
FATES = ("vanishes", "stable", "explodes")    # the codes 0, 1, 2 of `kernel_fate`
VANISHES, STABLE, EXPLODES = range(3)


def kernel_fate(ratio: float | np.ndarray, band: float = BAND) -> np.ndarray:
    """0 vanishes, 1 stable, 2 explodes, from K(l)/K(1) elementwise (non-finite or NaN: explodes)."""
    ratio = np.asarray(ratio, dtype=float)
    ratio = np.where(np.isfinite(ratio), ratio, np.inf)
    return np.where(ratio > band, EXPLODES, np.where(ratio < 1 / band, VANISHES, STABLE))


def fate_of_log_ratio(log_ratio: float, band: float = BAND) -> str:
    """The fate's name from log K(l)/K(1) (inf explodes, -inf vanishes, NaN explodes)."""
    if math.isnan(log_ratio) or log_ratio > math.log(band):
        return FATES[EXPLODES]
    return FATES[VANISHES] if log_ratio < -math.log(band) else FATES[STABLE]
