"""Where heatbath keeps what it can rebuild: $HEATBATH_CACHE, else $XDG_CACHE_HOME/heatbath,
else ~/.cache/heatbath. Nothing in it is ever downloaded; deleting it only costs recomputation.
"""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir(*parts: str) -> Path:
    """The cache directory (or a folder in it), created on first use."""
    root = os.environ.get("HEATBATH_CACHE")
    if not root:
        base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
        root = str(Path(base) / "heatbath")
    folder = Path(root).joinpath(*parts)
    folder.mkdir(parents=True, exist_ok=True)
    return folder
