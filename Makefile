# rlq-book: the two commands are `make book` and `make test`; each sets up what it needs on first use.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PRESET ?= cpu
SEED ?= 0
DEVICE ?= cpu
DATASET ?= synthcc
# SynthCC scale per experiment preset (the paper preset trains at 384x192 on SynthCC-large).
SYNTH_PRESET := $(if $(filter paper,$(PRESET)),large,$(if $(filter cpu%,$(PRESET)),cpu,$(PRESET)))
DATA_ROOT ?= data/synthcc-$(SYNTH_PRESET)
# SEEDS=0,1,2 overrides every notebook's seed list (default: 3 seeds for Tables 2 and 8, 1 elsewhere).
SEEDS ?=
RUNS_DIR ?= runs
# book: JOBS>1 first trains the planned runs (make plan's list) JOBS at a time, one thread each (DEVICE=cuda: one GPU
# each); JOBS=1 lets the pages train them one after another.
GPUS = $(shell nvidia-smi -L 2>/dev/null | wc -l)
# The smoke preset defaults to 1: its pages would re-run the smoke book the plan is read from.
JOBS ?= $(if $(filter smoke,$(PRESET)),1,$(if $(filter cuda%,$(DEVICE)),$(if $(filter-out 0,$(GPUS)),$(GPUS),1),$(shell nproc)))
# book: pages executed at a time once the runs are trained (each kernel with cores/PAGE_JOBS threads; the claims page
# last); the long ones start first, by the smoke book's minutes. DEVICE=cuda or JOBS=1: one at a time.
PAGE_JOBS ?= $(if $(filter cuda%,$(DEVICE)),1,$(if $(filter local,$(EXECUTOR)),$(JOBS),$(shell nproc)))
# Where the planned runs train: local (JOBS processes here) or slurm (one SLURM job per run, JOBS in the queue at a
# time, each with its preset's GPUs/CPUs/memory/time: rlqlib.engine.resources) on SLURM_PARTITION (default: the
# cluster's). Either way the pages then run here, against the warm run cache (a filesystem the nodes share).
EXECUTOR ?= local
SLURM_PARTITION ?=
comma := ,
# The smoke book behind make plan (and make book JOBS>1): every page executed once at the smoke preset, its runs here.
SMOKE_RUNS := runs-smoke$(if $(SEEDS),-seeds-$(subst $(comma),-,$(SEEDS)))
# book: ONLY=<chapter> runs one notebook; BOOKFLAGS=-W makes Sphinx warnings errors.
ONLY ?=
BOOKFLAGS ?=
CHROMIUM := /usr/bin/chromium
CHROMEDRIVER := /usr/bin/chromedriver
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# papermill/tqdm/OpenMP: one BLAS pool per process; t-SNE is 3-6x slower with 2 OpenMP threads here.
export PYTHONUNBUFFERED := 1
# Decoded images and clothes masks at model size, one tensor file per list (rlqlib.data.images; each run would
# otherwise decode its ~4,800 SynthCC-cpu images again, ~3 s, and a Base Model run its ~6,600 masks, ~2.5 s). For the
# book's targets only; empty: no cache.
IMAGE_CACHE ?= $(CURDIR)/data/.image-cache
book smoke-book pretrain plan: export RLQ_IMAGE_CACHE := $(IMAGE_CACHE)

.PHONY: help setup assets browser book plan pretrain smoke-book test synth lock clean distclean

help:
	@echo "make book   - generate SynthCC if absent, run every notebook (papermill), build the HTML book"
	@echo "make test   - the test suite (sets up the environment first)"
	@echo "make plan   - the runs make book trains at PRESET, which are done, and the time left"
	@echo "make book JOBS=N - first train the planned runs N at a time (default: the cores; DEVICE=cuda: the GPUs)"
	@echo "make book EXECUTOR=slurm JOBS=N SLURM_PARTITION=gpu - ... as SLURM jobs, N at a time (submitit)"
	@echo "make pose-env - optional MediaPipe pose estimator environment (.venv-pose)"
	@echo "variables: PRESET=smoke|cpu|cpu-long|cpu-scratch|paper DATASET=$(DATASET) DATA_ROOT=$(DATA_ROOT) DEVICE=$(DEVICE) SEEDS=0,1,2 RUNS_DIR=$(RUNS_DIR) ONLY=<notebook> JOBS=$(JOBS) PAGE_JOBS=$(PAGE_JOBS) EXECUTOR=local|slurm SLURM_PARTITION=<partition> IMAGE_CACHE=$(IMAGE_CACHE)"

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

# SynthCC is generated when absent; a real dataset (DATASET=ltcc, prcc, ...) must already be at DATA_ROOT.
synth: setup
ifeq ($(DATASET),synthcc)
	$(VENV)/bin/rlq synth --preset $(SYNTH_PRESET) --out $(DATA_ROOT) --seed $(SEED) --if-absent
else
	@test -d "$(DATA_ROOT)" || { echo "error: DATA_ROOT=$(DATA_ROOT) does not exist; DATASET=$(DATASET) is read from there (see README, Real datasets)" >&2; exit 1; }
endif

# The widget/MathJax JavaScript the HTML needs offline (npm, and anywidget's front-end from .venv) into the git-ignored
# _widgets/ (idempotent).
assets: setup
	VENDOR_PY=$(PY) scripts/vendor_assets.sh

# Headless Chromium and its WebDriver for the browser tests (Debian packages), only when missing.
browser:
	@if [ -x $(CHROMIUM) ] && [ -x $(CHROMEDRIVER) ]; then echo "browser: $(CHROMIUM) and $(CHROMEDRIVER) present"; else \
	  $(SUDO) apt-get update -q && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium chromium-driver; \
	fi

# papermill runs every _toc.yml notebook into book/experiments/, then Jupyter Book renders _build/html/. With JOBS>1
# (or EXECUTOR=slurm) the runs of make plan's list that are not done are trained first, JOBS at a time (rlq runs:
# rlqlib.book.train_plan); the pages then load them (and train, one at a time, whatever that left: a failed or
# unplanned run).
book: setup assets synth
ifneq ($(JOBS)$(EXECUTOR),1local)
	$(MAKE) --no-print-directory -j2 smoke-book pretrain
	$(VENV)/bin/rlq runs --plan $(SMOKE_RUNS) --preset $(PRESET) --dataset $(DATASET) --root $(DATA_ROOT) \
	  --device $(DEVICE) --runs-dir $(RUNS_DIR) --executor $(EXECUTOR) --jobs $(JOBS) \
	  $(if $(SLURM_PARTITION),--partition $(SLURM_PARTITION)) $(if $(filter cuda%,$(DEVICE)),--gpu-per-worker) \
	  $(foreach page,$(ONLY),--only $(page)) \
	  || echo "make book: some planned runs failed (above); the pages retrain what they need one at a time" >&2
endif
	$(PY) -m rlqlib.book.runner run --preset $(PRESET) --dataset $(DATASET) --root $(DATA_ROOT) --device $(DEVICE) \
	  --seed $(SEED) --runs-dir $(RUNS_DIR) $(if $(SEEDS),--seeds $(SEEDS)) $(foreach page,$(ONLY),--only $(page)) \
	  --jobs $(PAGE_JOBS) --order-from $(SMOKE_RUNS)/pages/build_record.json
	$(PY) -m rlqlib.book.runner build $(BOOKFLAGS)

# The smoke book: every page executed once at the smoke preset into $(SMOKE_RUNS)/ (a few minutes, first time only;
# delete the folder after changing a page's run list). Its ledger is the book's run list (rlqlib.book.plan). One
# thread: make book runs it beside the pretraining run, and two OpenMP threads in its kernels wait on the busy core
# (the severity page's sweep took 62 s instead of 7 s beside a busy core, and slowed the pretraining run too).
smoke-book: setup
	$(VENV)/bin/rlq synth --preset smoke --out data/synthcc-smoke --seed 0 --if-absent
	test -f $(SMOKE_RUNS)/.complete || { OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 \
	  $(PY) -m rlqlib.book.runner run --preset smoke --dataset synthcc \
	  --root data/synthcc-smoke --device cpu --runs-dir $(SMOKE_RUNS) --write-to $(SMOKE_RUNS)/pages --quiet \
	  $(if $(SEEDS),--seeds $(SEEDS)) && touch $(SMOKE_RUNS)/.complete; }

# The shared pretraining run the PRESET's runs start from (cpu: a trunk trained on SynthCC's pretraining group), if
# any; make book trains it beside the smoke book (one thread each), before the planned runs that all wait for it.
pretrain: setup synth
	$(PY) -m rlqlib.book.runner pretrain --preset $(PRESET) --dataset $(DATASET) --root $(DATA_ROOT) --device $(DEVICE) \
	  --runs-dir $(RUNS_DIR) --quiet

# What the book trains at PRESET, which runs are done and the time left: the smoke book's run list replayed at PRESET.
plan: setup synth smoke-book
	$(PY) -m rlqlib.book.runner plan --from $(SMOKE_RUNS) --preset $(PRESET) --dataset $(DATASET) --root $(DATA_ROOT) \
	  --device $(DEVICE) --runs-dir $(RUNS_DIR)

# pose-env (~1 min, once): the MediaPipe estimator test runs on a real photo in CI too.
test: setup assets browser pose-env
	$(PY) -m pytest -q

# Optional: the MediaPipe pose estimator in its own environment (mediapipe 0.10.21 pins numpy<2), for users
# without AlphaPose: `.venv-pose/bin/python -m rlqlib.data.pose.mediapipe --images DIR --out keypoints.json`.
POSE_VENV := .venv-pose
.PHONY: pose-env
pose-env: $(POSE_VENV)/.stamp

$(POSE_VENV)/.stamp: requirements-pose.txt
	test -x $(POSE_VENV)/bin/python || $(PYTHON) -m venv $(POSE_VENV)
	$(POSE_VENV)/bin/pip install -q --disable-pip-version-check -r requirements-pose.txt
	touch $@

clean:
	rm -rf _build book/experiments book/build.md

distclean: clean
	rm -rf $(VENV) $(POSE_VENV) _widgets data runs runs-smoke runs-smoke-seeds-*
