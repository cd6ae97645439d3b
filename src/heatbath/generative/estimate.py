"""`heatbath estimate` for data runs: held-out likelihood and sample-quality distances.

Every stochastic figure is an Estimate. The negative log-likelihood's standard error is the
spread over held-out points, which already contains the Hutchinson noise of each point when the
trace is estimated. Distances come with a floor: the same distance between two halves of the
held-out data, i.e. what a perfect model would score at that sample size.
"""

from __future__ import annotations

import math

import torch

from heatbath.datasets import load_source
from heatbath.core.errors import UserError
from heatbath.core.estimate import mean_estimate
from heatbath.estimators.distances import distance_with_floor
from heatbath.generative.sample import sample_run
from heatbath.samplers.likelihood import dequantize, dequantized_bits_per_dim
from heatbath.generative.run import LoadedRun


def evaluation_data(run: LoadedRun, source: str | None) -> torch.Tensor:
    if source is None:
        return run.heldout()[0]
    data = load_source(source)
    if tuple(data.event_shape) != run.event_shape:
        raise UserError(f"--data has samples of shape {tuple(data.event_shape)}, but the model "
                        f"was trained on {run.event_shape}")
    return data.x.to(run.dtype)


def held_out_likelihood(run: LoadedRun, x: torch.Tensor, seed: int) -> dict:
    info = run.info.data
    dim = x[0].numel()
    images = info.levels is not None and info.data_range is not None
    if images:
        x = dequantize(x, info.levels, tuple(info.data_range),
                       torch.Generator().manual_seed(seed))
    log_q = run.log_likelihood(x, seed=seed).log_q.double()
    out = {"nll_per_dim": mean_estimate((-log_q / dim).numpy())}
    if images:
        bpd = dequantized_bits_per_dim(log_q, dim, info.levels, tuple(info.data_range))
        out["bits_per_dim"] = mean_estimate(bpd.numpy())
    return out


def estimate_data_run(run: LoadedRun, *, source: str | None = None, n: int | None = None,
                      seed: int = 0, progress=None) -> dict:
    """The JSON-ready dictionary of `heatbath estimate --json` for a data run."""
    heldout = evaluation_data(run, source)
    if len(heldout) < 4:
        raise UserError(f"need at least 4 evaluation samples, got {len(heldout)}")
    cfg = run.config
    limit = n or cfg.eval.likelihood_max or len(heldout)
    scored = heldout[:limit]
    result = held_out_likelihood(run, scored, seed)
    # Distances compare as many model samples as evaluation points (eval.samples at most).
    n_samples = n or min(len(heldout), cfg.eval.samples)
    s = cfg.sample
    samples = sample_run(run, n_samples, s.settings(), seed=seed + 1, clip=s.clip,
                         progress=progress)
    report = {key: est.to_json() for key, est in result.items()}
    for key, metric in (("energy_distance", "energy"), ("sliced_wasserstein", "sliced_w2")):
        score, floor = distance_with_floor(metric, samples.x, heldout, seed=seed)
        report[key] = {**score.to_json(), "floor": floor.to_json()}
    report.update(nfe=samples.nfe, n=len(scored), n_samples=n_samples,
                  sampler=s.sampler, dim=int(math.prod(run.event_shape)))
    return report
