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
from heatbath.generative.restore import observe, restoration_quality
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
    "psnr": "coupled runs (path.base): mean over held-out points of 10*log10(w^2/MSE) in dB, "
            "MSE over every pixel (coordinate) between one restoration and the clean point, w "
            "the data range's width; psnr_base: the same for the base b(c) itself (hole "
            "filled by the data mean, or the up-sampled low-resolution image)",
    "conditional": "coupled runs: q is log q(x | c), the density of the unknown part given the "
                   "observation c, on the unknown subspace (D = its dimension: the missing "
                   "pixels, or D(1 - 1/f^2) for super-resolution); bits_per_dim only where "
                   "that subspace is a set of coordinates (not super-resolution)",
    "likelihood": "exact: q is the model's density of x; bound: a phase-space model (cld, "
                  "psld), whose nll_per_dim and bits_per_dim are -(log q(x, v0) - log "
                  "N(v0; 0, gamma*M)) per point with one v0 drawn each, q the joint "
                  "probability-flow ODE density of (x, v): upper bounds on the exact "
                  "values in expectation (Jensen), as CLD and PSLD report them",
    "n": "held-out points scored for the likelihood",
    "n_samples": "model samples drawn for the distances",
}


def evaluation_data(run: LoadedRun, source: str | None) -> tuple[torch.Tensor,
                                                                 torch.Tensor | None]:
    """The points to score and, for paired data, their sources x0."""
    if source is None:
        return run.heldout()[0], run.heldout_sources()
    data = load_source(source, kind=run.info.data.kind)
    if tuple(data.event_shape) != run.event_shape:
        raise UserError(f"--data has samples of shape {tuple(data.event_shape)}, but the model "
                        f"was trained on {run.event_shape}")
    return data.x.to(run.dtype), None if data.x0 is None else data.x0.to(run.dtype)


def held_out_likelihood(run: LoadedRun, x: torch.Tensor, seed: int,
                        sources: torch.Tensor | None = None) -> dict:
    info = run.info.data
    dim = run.path.noise.dim(x)    # particles: (P-1)·d, the subspace the density lives on
    images = info.levels is not None and info.data_range is not None
    if images:
        x = dequantize(x, info.levels, tuple(info.data_range),
                       torch.Generator().manual_seed(seed))
    observation = None
    if run.config.path.base != "noise":
        # log q(x | c) on the unknown subspace, c observed from the dequantised point.
        observation = observe(run, x, sources, seed).observation
        dim = observation.dims().double()
        images = images and observation.factor == 1
    log_q = run.log_likelihood(x, seed=seed, observation=observation).log_q.double()
    out = {"nll_per_dim": mean_estimate((-log_q / dim).numpy())}
    if images:
        bpd = dequantized_bits_per_dim(log_q, dim, info.levels, tuple(info.data_range))
        out["bits_per_dim"] = mean_estimate(bpd.numpy())
    return out


def estimate_data_run(run: LoadedRun, *, source: str | None = None, n: int | None = None,
                      seed: int = 0, progress=None) -> dict:
    """The JSON-ready dictionary of `heatbath estimate --json` for a data run."""
    if run.is_discrete:   # exact probabilities of lattices, possibly of another size
        from heatbath.generative.lattice import estimate_lattice_run

        return estimate_lattice_run(run, source=source, n=n, seed=seed, progress=progress)
    heldout, sources = evaluation_data(run, source)
    if len(heldout) < 4:
        raise UserError(f"need at least 4 evaluation samples, got {len(heldout)}")
    cfg = run.config
    if n is not None and n > len(heldout):
        raise UserError(f"-n {n} is more than the {len(heldout)} evaluation samples; "
                        f"use -n {len(heldout)} or fewer")
    limit = n or cfg.eval.likelihood_max or len(heldout)
    scored = heldout[:limit]
    result = held_out_likelihood(run, scored, seed, None if sources is None else sources[:limit])
    # Distances compare as many model samples as evaluation points (eval.samples at most).
    n_samples = n or min(len(heldout), cfg.eval.samples)
    s = cfg.sample
    observed = None
    if cfg.path.base != "noise":   # one restoration of each of n_samples held-out points
        observed = observe(run, heldout[:n_samples],
                           None if sources is None else sources[:n_samples], seed + 1)
    samples = sample_run(run, n_samples, s.settings(), seed=seed + 1, clip=s.clip,
                         progress=progress,
                         observation=None if observed is None else observed.observation)
    report = {key: est.to_json() for key, est in result.items()}
    if observed is not None:
        report.update(restoration_report(run, samples.x, observed))
    for key, metric in (("energy_distance", "energy"), ("sliced_wasserstein", "sliced_w2")):
        score, floor = distance_with_floor(metric, samples.x, heldout, seed=seed)
        report[key] = {**score.to_json(), "floor": floor.to_json()}
    frechet = frechet_report(run, samples.x, heldout, seed)
    if frechet is not None:
        report["frechet_distance"] = frechet
    if observed is not None:
        report["conditional"] = f"log q(x | c), path.base={cfg.path.base}"
    report.update(likelihood="bound" if run.path.is_phase_space else "exact",
                  nfe=samples.nfe, n=len(scored), n_samples=n_samples,
                  sampler=s.sampler, dim=int(math.prod(run.event_shape)))
    report["conventions"] = {k: v for k, v in DATA_CONVENTIONS.items() if k in report}
    return report


def restoration_report(run: LoadedRun, restored: torch.Tensor, observed) -> dict:
    """PSNR of the restorations and of their bases against the clean held-out points."""
    quality = restoration_quality(run, restored, observed)
    return {key: mean_estimate(values.numpy()).to_json() for key, values in quality.items()}


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
