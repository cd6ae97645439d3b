#!/usr/bin/env bash
# README command 2 (and CI): set up the environment with test extras and run the test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh test
.venv/bin/python -m pytest "$@"
