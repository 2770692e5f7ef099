#!/usr/bin/env bash
# `make bench`: every benchmark at quick settings, then a table of their JSON lines.
set -euo pipefail
cd "$(dirname "$0")/.."
exec "${PYTHON:-.venv/bin/python}" scripts/bench_all.py "$@"
