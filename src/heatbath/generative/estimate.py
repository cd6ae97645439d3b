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
from heatbath.datasets.images import IMAGES
from heatbath.estimators.distances import distance_with_floor
from heatbath.estimators.frechet import frechet_squared
from heatbath.generative.features import feature_map
from heatbath.generative.sample import sample_run
from heatbath.samplers.likelihood import dequantize, dequantized_bits_per_dim
from heatbath.generative.run import LoadedRun


# The unit and definition of every key `estimate --json` prints for a data run.
DATA_CONVENTIONS = {
    "nll_per_dim": "mean over held-out points of -log q(x) / D, nats per dimension (particles: "
                   "D = (P-1)*d and q a density on the zero-centre-of-mass subspace), q the "
                   "probability-flow ODE density (exact trace up to 128 dims or with a hollow "
                   "net, else Hutchinson)",
    "bits_per_dim": "dequantised: -(log q(x + u) + D log w) / (D ln 2), u uniform over each "
                    "quantisation bin of width w (Theis et al. 2016), bits per dimension",
    "energy_distance": "2E|X-Y| - E|X-X'| - E|Y-Y'| (unbiased U-statistic, Euclidean norm of "
                       "the flattened event), model samples vs held-out data; floor: the same "
                       "between two halves of the held-out data",
    "sliced_wasserstein": "mean over 256 random unit directions of the 1-D W2 (not squared) "
                          "between projected samples; sw2_rms is the root mean square",
    "frechet_distance": "squared Frechet distance (the FID convention, not its root) between "
                        "Gaussian fits (unbiased covariances) of model samples and held-out "
                        "data in the 32 features of heatbath's own seeded classifier of the "
                        "built-in image set (`features`: which, and its held-out accuracy); "
                        "stderr and ci95 by bootstrap; biased upward at finite n: read it "
                        "beside its floor (two halves of the held-out data, same n)",
    "nfe": "network evaluations per sample of the sampler",
    "likelihood": "exact: q is the model's density of x; bound: a phase-space model (cld, "
                  "psld), whose nll_per_dim and bits_per_dim are -(log q(x, v0) - log "
                  "N(v0; 0, gamma*M)) per point with one v0 drawn each, q the joint "
                  "probability-flow ODE density of (x, v): upper bounds on the exact "
                  "values in expectation (Jensen), as CLD and PSLD report them",
    "n": "held-out points scored for the likelihood",
    "n_samples": "model samples drawn for the distances",
}


def evaluation_data(run: LoadedRun, source: str | None) -> torch.Tensor:
    if source is None:
        return run.heldout()[0]
    data = load_source(source, kind=run.info.data.kind)
    if tuple(data.event_shape) != run.event_shape:
        raise UserError(f"--data has samples of shape {tuple(data.event_shape)}, but the model "
                        f"was trained on {run.event_shape}")
    return data.x.to(run.dtype)


def held_out_likelihood(run: LoadedRun, x: torch.Tensor, seed: int) -> dict:
    info = run.info.data
    dim = run.path.noise.dim(x)    # particles: (P-1)·d, the subspace the density lives on
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
    if n is not None and n > len(heldout):
        raise UserError(f"-n {n} is more than the {len(heldout)} evaluation samples; "
                        f"use -n {len(heldout)} or fewer")
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
    frechet = frechet_report(run, samples.x, heldout, seed)
    if frechet is not None:
        report["frechet_distance"] = frechet
    report.update(likelihood="bound" if run.path.is_phase_space else "exact",
                  nfe=samples.nfe, n=len(scored), n_samples=n_samples,
                  sampler=s.sampler, dim=int(math.prod(run.event_shape)))
    report["conventions"] = {k: v for k, v in DATA_CONVENTIONS.items() if k in report}
    return report


def frechet_report(run: LoadedRun, samples: torch.Tensor, heldout: torch.Tensor,
                   seed: int) -> dict | None:
    """FD² with its floor in the features of the built-in image set's classifier; None for
    data without one (vectors, particles, user images: no labels to train it on)."""
    info = run.info.data
    if info.kind != "image" or info.name not in IMAGES:
        return None
    dataset = IMAGES[info.name][0]()
    if tuple(dataset.x.shape[1:]) != tuple(run.event_shape):
        return None
    features = feature_map(info.name, dataset.x, dataset.c, dataset.num_classes)
    score, floor = distance_with_floor(lambda a, b: frechet_squared(a, b, seed),
                                       features(samples), features(heldout), seed=seed)
    return {**score.to_json(), "floor": floor.to_json(), "features": features.description}
