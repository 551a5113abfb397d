# rlq-book: the two commands are `make book` and `make test`; each sets up what it needs on first use.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PRESET ?= cpu
SEED ?= 0
DEVICE ?= cpu
DATA_ROOT ?= data/synthcc-$(PRESET)
DATASET ?= synthcc
# papermill/tqdm/OpenMP: one BLAS pool per process; t-SNE is 3-6x slower with 2 OpenMP threads here.
export PYTHONUNBUFFERED := 1

.PHONY: help setup book test synth lock clean distclean

help:
	@echo "make book   - generate SynthCC if absent, run every notebook (papermill), build the HTML book"
	@echo "make test   - the test suite (sets up the environment first)"
	@echo "variables: PRESET=smoke|cpu|paper DATASET=$(DATASET) DATA_ROOT=$(DATA_ROOT) DEVICE=$(DEVICE)"

# The virtual environment, from the pinned lock. Re-created when the lock or pyproject changes.
$(VENV)/.stamp: requirements-lock.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -r requirements-lock.txt
	$(PY) -m pip install -q --disable-pip-version-check --no-deps -e .
	touch $@

setup: $(VENV)/.stamp

# Regenerate the lock from requirements.in (only when changing versions on purpose).
lock:
	rm -rf .venv-lock && $(PYTHON) -m venv .venv-lock
	.venv-lock/bin/pip install -q -r requirements.in
	.venv-lock/bin/pip freeze --exclude-editable | sed 's/+cpu$$//' > requirements-lock.txt
	rm -rf .venv-lock

synth: setup
	$(VENV)/bin/rlq synth --preset $(PRESET) --out $(DATA_ROOT) --seed $(SEED) --if-absent

test: setup
	$(PY) -m pytest -q

clean:
	rm -rf _build book/experiments

distclean: clean
	rm -rf $(VENV) _widgets data runs
