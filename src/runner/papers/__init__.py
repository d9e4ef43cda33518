"""The papers layer: what two papers claim, checked on the generic runner's results, and the
report that renders them (runner.papers.report, written by scripts/reproduce.py).

Each module is one paper, or a study beyond them: its claims (runner.results.claims.Claim) on sweeps
named in conf/reproduce/<scale>.yaml, how the report shows those sweeps, and optionally a report
section of its own (runner.papers.base.Paper). PAPERS lists them in report order; a new study is
one more module here plus its conf/experiment/ presets and its sweeps in conf/reproduce/
(docs/reproducing.md, "Adding a paper or your own study"). Nothing in the generic layer imports
this package.
"""

from __future__ import annotations

from runner.papers import digits, kimkang, pinn_suite, tsvetkova
from runner.papers.base import Paper

PAPERS: list[Paper] = [tsvetkova.PAPER, kimkang.PAPER, digits.PAPER, pinn_suite.PAPER]
