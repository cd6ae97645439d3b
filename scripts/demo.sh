#!/usr/bin/env bash
# README command 1: set up the environment and run the main job on the built-in default.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh data,ot   # POT: the demo's minibatch-OT coupling
.venv/bin/heatbath demo "$@"
