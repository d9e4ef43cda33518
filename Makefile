# Two commands take a fresh clone to results: `make run` and `make test`.
# TORCH is pinned so a CPU machine gets the CPU wheel; override on a GPU box, e.g.
#   make run TORCH="torch==2.13.0 --index-url https://download.pytorch.org/whl/cu124"
# Everything else installs at the versions the suite passed with (constraints.txt, written by
# `make constraints`). WHEELS=<folder> installs from wheels there, without network access.
PYTHON ?= python3
TORCH ?= torch==2.13.0
WHEELS ?=
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PIP := $(PY) -m pip install --quiet $(if $(WHEELS),--no-index --find-links $(WHEELS))

.PHONY: install run test test-numerics bench reproduce test-slurm constraints clean
SCALE ?= smoke

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(if $(WHEELS),,$(PY) -m pip install --quiet --upgrade pip)
	$(PIP) $(TORCH)
	$(PIP) -c constraints.txt -e ".[test]"
	touch $(STAMP)

# Rewrite constraints.txt from the environment the suite just passed in (torch stays with TORCH).
constraints: install
	$(PY) -m pip freeze --exclude-editable | grep -v '^torch==' > constraints.txt
	touch $(STAMP)

run: install
	$(PY) -m runner

# Tests run in parallel processes (pytest-xdist), each with its share of the cores (tests/conftest.py).
TEST_WORKERS ?= auto
test: install
	$(PY) -m pytest -q -n $(TEST_WORKERS) --maxprocesses=4

# The tests that compare numbers across code paths or with references, again under another CPU
# kernel set and one thread: what a machine with other vector units computes (CI runs it).
test-numerics: install
	ATEN_CPU_CAPABILITY=default OMP_NUM_THREADS=1 $(PY) -m pytest -q -m numerics -n $(TEST_WORKERS) --maxprocesses=4

bench: install
	$(PY) -m benchmarks.bench_ensemble

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
