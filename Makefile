# quarry — the targets mirror CI exactly: `.ci/run` is `make test`.
SHELL := /bin/bash
CARGO ?= cargo
PIPELINE ?= pipelines/alphanode.toml
DUMP ?= samples
WAREHOUSE ?= warehouse
# `make import PROFILE=release` for big dumps (a release build with polars takes ~14 min once).
PROFILE ?= dev
PYTHON ?= python3
VENV := .venv
VENV_STAMP := $(VENV)/.installed

.PHONY: import test check build lint fmt-check unit py venv clean

import:
	$(CARGO) run --quiet --profile $(PROFILE) --bin quarry -- import --pipeline $(PIPELINE) --output $(WAREHOUSE) $(DUMP)

check:
	$(CARGO) run --quiet --bin quarry -- check --pipeline $(PIPELINE)

build:
	$(CARGO) build --bins

fmt-check:
	$(CARGO) fmt --check

lint:
	$(CARGO) clippy --all-targets -- -D warnings

unit:
	$(CARGO) test

$(VENV_STAMP): tests/py/requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r tests/py/requirements.txt
	touch $@

venv: $(VENV_STAMP)

py: build $(VENV_STAMP)
	QUARRY_BIN=$(CURDIR)/target/debug/quarry $(VENV)/bin/python -m pytest -q tests/py

test: fmt-check lint unit py

clean:
	rm -rf $(WAREHOUSE) $(VENV)
	$(CARGO) clean
