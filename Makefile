# The two commands a newcomer runs: `make demo` and `make test`.
# Both set themselves up on a fresh machine (Debian packages, venv, editable install).
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DEB_STAMP := .deb-installed
DEB_PACKAGES := srt-tools chromium ffmpeg prometheus

.PHONY: test demo setup deb postgres bench clean

$(DEB_STAMP):
	@bash scripts/ensure-debian.sh $(DEB_PACKAGES)
	@touch $(DEB_STAMP)

deb: $(DEB_STAMP)

$(STAMP): pyproject.toml setup.py
	@test -x $(PY) || python3 -m venv $(VENV)
	@$(PY) -m pip install --quiet --upgrade pip
	@$(PY) -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

setup: deb $(STAMP)

postgres:
	@bash scripts/ensure-postgres.sh

test: setup postgres
	@$(VENV)/bin/pytest -q $(PYTEST_ARGS)

demo: setup
	@$(VENV)/bin/python -m demo

bench: setup
	@PYTHON=$(PY) bash scripts/bench-all.sh $(BENCH_ARGS)

clean:
	rm -rf $(VENV) $(DEB_STAMP) .pytest_cache build *.egg-info
