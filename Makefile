# Two commands take a fresh clone to results: `make run` and `make test`.
# TORCH is pinned so a CPU machine gets the CPU wheel; override on a GPU box, e.g.
#   make run TORCH="torch==2.13.0 --index-url https://download.pytorch.org/whl/cu124"
PYTHON ?= python3
TORCH ?= torch==2.13.0
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install run test bench reproduce test-slurm clean
SCALE ?= smoke

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet $(TORCH)
	$(PY) -m pip install --quiet -e ".[test]"
	touch $(STAMP)

run: install
	$(PY) -m runner

test: install
	$(PY) -m pytest -q

bench: install
	$(PY) scripts/bench_ensemble.py

# Every paper preset as multirun sweeps, every claim checked: reports/$(SCALE)/REPORT.md.
# SCALE=smoke takes ~10 min here; SCALE=medium (8 paired seeds, designed to decide) at most 75 min,
# `scripts/reproduce.py --scale medium --estimate` times it here first; SCALE=paper prints its
# estimate first (days on this CPU). docs/reproducing.md: the verdict rules and the scales.
reproduce: install
	$(PY) scripts/reproduce.py --scale $(SCALE)

# A real single-node SLURM on localhost (root; Debian packages): sweeps go through sbatch,
# one job is preempted and must resume to the uninterrupted result.
export SLURM_CONF ?= /tmp/runner-slurm/slurm.conf
test-slurm: install
	scripts/slurm_local.sh up
	RUNNER_REQUIRE_SLURM=1 $(PY) -m pytest -q tests/test_slurm.py; status=$$?; \
	scripts/slurm_local.sh down; exit $$status

clean:
	rm -rf outputs/multirun outputs/x2 outputs/x3 .pytest_cache
