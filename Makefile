# The two commands a newcomer runs: `make demo` and `make test`.
# Both set themselves up on a fresh machine (Debian packages, venv, editable install).
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DEB_STAMP := .deb-installed
DEB_PACKAGES := srt-tools chromium ffmpeg prometheus

.PHONY: test demo setup deb postgres bench clean whep-player

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

# The third-party WHEP player the browser tests run (npm package, bundled with esbuild).
whep-player: setup
	@$(PY) -m tests.browser.whep_player_setup >/dev/null

test: setup postgres whep-player
	@$(VENV)/bin/pytest -q $(PYTEST_ARGS)

demo: setup
	@$(VENV)/bin/python -m demo

bench: setup
	@PYTHON=$(PY) bash scripts/bench-all.sh $(BENCH_ARGS)

clean:
	rm -rf $(VENV) $(DEB_STAMP) .pytest_cache build *.egg-info
