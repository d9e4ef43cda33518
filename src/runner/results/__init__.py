"""What runs leave behind and what is made of it: files written atomically, the summary.json
contract, jobs of a sweep, tables, plots, trackers, verdicts and claims, and `load`: a sweep's
members as a pandas DataFrame (runner.results.members)."""

from runner.results.members import load

__all__ = ["load"]
