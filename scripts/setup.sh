#!/usr/bin/env bash
# Create .venv and install heatbath with the given extras, pinning torch to the 2.13.0 CPU build.
# Usage: bash scripts/setup.sh [EXTRAS]   (e.g. "test" or "test,bench")
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-}"
python3 -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip >/dev/null 2>&1 || true
spec="."
if [ -n "$extras" ]; then spec=".[$extras]"; fi
# The constraint keeps every install on torch 2.13.0 (a CPU wheel is on the machine); without it
# pip may pull a multi-GB CUDA build.
.venv/bin/python -m pip install --quiet -c constraints.txt -e "$spec"
.venv/bin/python - <<'PY'
import importlib.util, sys
import torch
problems = []
if not torch.__version__.startswith("2.13.0"):
    problems.append(f"torch is {torch.__version__}, expected 2.13.0")
if torch.version.cuda is not None:
    problems.append(f"torch is a CUDA build ({torch.version.cuda}); expected the CPU build")
for name in ("torchvision", "torchaudio"):
    if importlib.util.find_spec(name) is not None:
        problems.append(f"{name} is installed; it must not be (no CPU build, breaks imports)")
if problems:
    sys.exit("setup check failed: " + "; ".join(problems))
print(f"environment ok: torch {torch.__version__}")
PY
