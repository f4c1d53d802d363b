# quarry — the targets mirror CI exactly: `.ci/run` is `make test`.
SHELL := /bin/bash
CARGO ?= cargo
# Empty: the alphanode pipeline built into quarry (the same text as pipelines/alphanode.toml).
PIPELINE ?=
PIPELINE_ARG = $(if $(PIPELINE),--pipeline $(PIPELINE))
DUMP ?= samples
WAREHOUSE ?= warehouse
# `make import PROFILE=release` for big dumps (a release build with polars takes ~14 min once).
PROFILE ?= dev
PYTHON ?= python3
VENV := .venv
VENV_STAMP := $(VENV)/.installed
DUCK14 := .venv-duckdb14
DUCK14_STAMP := $(DUCK14)/.installed

.PHONY: import test check build lint fmt-check unit py venv clean bench bench-stages nightly report fuzz

import:
	$(CARGO) run --quiet --profile $(PROFILE) --bin quarry -- import $(PIPELINE_ARG) --output $(WAREHOUSE) $(DUMP)

check:
	$(CARGO) run --quiet --bin quarry -- check $(PIPELINE_ARG)

build:
	$(CARGO) build --bins

fmt-check:
	$(CARGO) fmt --check

lint:
	$(CARGO) clippy --all-targets -- -D warnings

# INSTA_UPDATE=no as under CI=true: a snapshot mismatch fails and nothing is written.
unit:
	INSTA_UPDATE=no $(CARGO) test

$(VENV_STAMP): tests/py/requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r tests/py/requirements.txt
	touch $@

$(DUCK14_STAMP): tests/py/requirements-duckdb14.txt
	$(PYTHON) -m venv $(DUCK14)
	$(DUCK14)/bin/pip install --quiet --disable-pip-version-check -r tests/py/requirements-duckdb14.txt
	touch $@

venv: $(VENV_STAMP) $(DUCK14_STAMP)

py: build $(VENV_STAMP) $(DUCK14_STAMP)
	tests/browser/ensure-chromium.sh >/dev/null
	QUARRY_BIN=$(CURDIR)/target/debug/quarry QUARRY_DUCKDB14_PYTHON=$(CURDIR)/$(DUCK14)/bin/python \
	$(VENV)/bin/python -m pytest -q tests/py

test: fmt-check lint unit py

QUARRY_EXE = target/$(if $(filter dev,$(PROFILE)),debug,$(PROFILE))/quarry
REPORT ?= $(WAREHOUSE)/report.html

# One nightly import as the scheduler runs it (deploy/nightly.sh: lock, log, report, exit codes).
nightly:
	$(CARGO) build --quiet --profile $(PROFILE) --bin quarry
	QUARRY_ENV_FILE=/nonexistent QUARRY_BIN=$(CURDIR)/$(QUARRY_EXE) QUARRY_PIPELINE=$(if $(PIPELINE),$(abspath $(PIPELINE))) \
	QUARRY_WAREHOUSE=$(WAREHOUSE) QUARRY_DUMPS="$(DUMP)" QUARRY_REPORT_HTML=$(REPORT) deploy/nightly.sh

report:
	$(CARGO) run --quiet --bin quarry -- report $(WAREHOUSE) --html $(REPORT)

# Release build, corpora from `quarry gen`, quarry against a Python script and a DuckDB statement.
bench/.venv/.installed: bench/requirements.txt
	$(PYTHON) -m venv bench/.venv
	bench/.venv/bin/pip install --quiet --disable-pip-version-check -r bench/requirements.txt
	touch $@

# BENCH_ARGS: options of bench/run.py, e.g. "--scale-max 10000000" leaves out the 100M-post warehouse.
BENCH_ARGS ?=
bench: bench/.venv/.installed
	$(CARGO) build --release --bin quarry
	bench/.venv/bin/python bench/run.py --quarry target/release/quarry --workdir target/bench $(BENCH_ARGS)

FUZZ_SECONDS ?= 300
# Fuzz the extractor for FUZZ_SECONDS on one core, seeded from samples/ (cargo fuzz; findings in fuzz/artifacts/).
fuzz:
	fuzz/run.sh $(FUZZ_SECONDS)

# Per-stage throughput (divan): split, extract, transform, write, one thread each.
bench-stages:
	$(CARGO) bench --bench stages

clean:
	rm -rf $(WAREHOUSE) $(VENV) $(DUCK14)
	$(CARGO) clean
