#!/usr/bin/env bash
# README command 2 (and CI): set up the environment with test extras and run the test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh test
# Two workers (CI has 2 cores; each test runs torch on 1 thread): 6.5 min instead of 11-18.
# loadfile keeps a file's tests on one worker, so module fixtures (trained models) build once.
.venv/bin/python -m pytest -n 2 --dist loadfile "$@"
