"""Observations for coupled runs (path.base): from held-out data or a user's file, and the
quality of what the model restored from them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from heatbath.core.errors import UserError
from heatbath.generative.corruptions import Observation, observed_array, psnr
from heatbath.generative.run import LoadedRun

# Stream of the held-out corruptions (random holes), apart from every sampler's noise.
OBSERVE_STREAM = 7_000_003


@dataclass
class Observed:
    """Observations to restore, one row per sample, and the clean points when known."""

    observation: Observation
    truth: torch.Tensor | None = None


def observe(run: LoadedRun, x: torch.Tensor, sources: torch.Tensor | None,
            seed: int) -> Observed:
    """Corrupt clean points x the way the run was trained to undo (seeded: the same holes for
    the same seed)."""
    generator = torch.Generator().manual_seed(seed * 7919 + OBSERVE_STREAM)
    obs = run.corruption.observe(x.to(run.dtype), generator,
                                 None if sources is None else sources.to(run.dtype))
    return Observed(obs, x.to(run.dtype))


def cycled(observed: Observed, n: int) -> Observed:
    """Rows i mod len: n restorations, several per observation when n exceeds them."""
    index = torch.arange(n) % len(observed.observation)
    truth = None if observed.truth is None else observed.truth[index]
    return Observed(observed.observation.rows(index), truth)


def heldout_observed(run: LoadedRun, seed: int) -> Observed:
    """The run's held-out points, corrupted."""
    x, _ = run.heldout()
    return observe(run, x, run.heldout_sources(), seed)


def read_observed(run: LoadedRun, path: Path, seed: int) -> Observed:
    """`sample --from FILE`: a .npz with clean points `x` (corrupted here as in training; the
    output then reports PSNR against them, and paired runs need their sources `x0`) or
    observations `c` (in-painting: the image, with `missing` for random holes;
    super-resolution: the low-resolution image; paired: the source)."""
    arrays = _read_arrays(path)
    shape = run.event_shape
    if "x" in arrays:
        x = observed_array(arrays, "x", shape)
        sources = observed_array(arrays, "x0", shape) if "x0" in arrays else None
        if run.config.path.base == "paired" and sources is None:
            raise UserError(f"{path} has clean targets x but no sources x0: a paired model "
                            f"restores x from x0 (or give the sources alone as c)")
        return observe(run, x, sources, seed)
    if "c" not in arrays:
        raise UserError(f"{path} has neither 'x' (clean points to corrupt) nor 'c' "
                        f"(observations); it has: {', '.join(arrays) or 'nothing'}")
    return Observed(run.corruption.from_file(arrays, shape).to(run.dtype))


def _read_arrays(path: Path) -> dict:
    if path.suffix != ".npz" or not path.is_file():
        raise UserError(f"--from needs an existing .npz file, got {path}")
    from heatbath.datasets.sources import _READ_ERRORS, _unreadable

    try:
        with np.load(path, allow_pickle=False) as archive:
            return {key: archive[key] for key in archive.files}
    except _READ_ERRORS as exc:   # the data loader's list: a corrupt zip is one line too
        raise _unreadable(f"'{path}'", exc) from None


def restoration_quality(run: LoadedRun, restored: torch.Tensor,
                        observed: Observed) -> dict | None:
    """Per-point PSNR (dB) of the restorations and, as the baseline, of the base b(c) itself,
    against the clean points, w the width of the data's range (images: the range their levels
    span); None when the clean points are unknown."""
    if observed.truth is None:
        return None
    data = run.info.data
    low, high = data.data_range if data.data_range else run.context_range
    data_range = high - low
    truth = observed.truth.to(restored.dtype)
    return {"psnr": psnr(restored, truth, data_range),
            "psnr_base": psnr(observed.observation.base.to(restored.dtype), truth, data_range)}
