"""Benchmarks of the runner, apart from it: `python -m benchmarks.<name>` from the repository root
(make bench runs bench_ensemble). per_epoch holds the reference they measure against."""
