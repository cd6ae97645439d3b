"""The discrete branch of the data half: categorical lattices on a discrete path.

data.kind=lattice and a discrete path (path.name=masked | uniform) require each other
(`resolve_discrete`). Training reuses the loop of `generative.train` (its generator,
checkpoints, resume and EMA) with the path's own loss; sampling goes through the path's sampler
(`paths.masked.MaskedPath`: a fixed site order, `sample.order` of the run — raster,
sublattice or a seeded random permutation — used by `sample` and `estimate` alike, so every
exact log q refers to the same autoregressive model; `paths.uniform.UniformPath`: Euler
steps of a CTMC, no log q, but an unbiased estimate of its continuous-time ELBO, an upper
bound on −log q). A model
trained at one L×M samples (and, masked, scores) any other (`shape`, evaluation data of
another size): its periodic convolutional network runs on any lattice.
"""

from __future__ import annotations

import math

import torch

from heatbath.core.checks import choice
from heatbath.core.errors import UserError
from heatbath.core.estimate import mean_estimate
from heatbath.core.runs import DTYPES
from heatbath.generative.config import RunConfig
from heatbath.nets import fits, fitting, resolved_net
from heatbath.paths import PATHS
from heatbath.paths.masked import ORDERS, order_steps, sublattice_steps

# how each order of the masked sampler reveals the sites (the .npz's log_q_density, estimate's
# conventions)
ORDER_MEANING = {
    "raster": "one site per step in raster order",
    "random": "one site per step in a fixed random permutation of the sites, drawn from "
              "sample.order_seed (the same for every lattice)",
    "sublattice": "every site of one sublattice per step, its spacing beyond the network's "
                  "reach so that no site of a step reads another: exact at S_L*S_M steps",
}


def exact_log_q_meaning(order: str) -> str:
    return ("exact log-probability of each sample under the fixed-order masked sampler: "
            "sum over steps of log p(sites revealed | sites before), " + ORDER_MEANING[order])


# path.loss of each lattice path, its default first (masked: its ELBO is its only loss)
PATH_LOSSES = {"uniform": ("cross_entropy", "elbo"), "masked": ("elbo",)}


def resolve_path_loss(config: RunConfig) -> None:
    """Fill path.loss=auto with the path's default; refuse, in one line naming the fix, a loss
    the path does not have (continuous paths have their own regression objective), and a
    sample.order the path does not have (every resolution comes through here)."""
    resolve_sample_order(config)
    p = config.path
    losses = PATH_LOSSES.get(p.name)
    if losses is None:
        if p.loss != "auto":
            raise UserError(f"path.loss={p.loss} applies to the lattice paths (path.name=uniform "
                            f"or masked); path.name={p.name} has its own objective: leave "
                            f"path.loss=auto")
        return
    p.loss = losses[0] if p.loss == "auto" else p.loss
    choice(p.loss, PATH_LOSSES["uniform"], "path.loss")
    if p.loss not in losses:
        raise UserError(f"path.loss={p.loss} does not apply to path.name={p.name}, which trains "
                        f"its ELBO only; use path.loss=elbo or path.name=uniform")


def resolve_sample_order(config: RunConfig) -> None:
    """sample.order names a site order of the masked path; every other path (continuous ones
    included) refuses all but the default, which it would silently ignore."""
    order, name = config.sample.order, config.path.name
    if name == "masked":
        choice(order, ORDERS, "sample.order")
    elif order != "raster":
        raise UserError(f"sample.order={order} orders the sites of path.name=masked; "
                        f"path.name={name} has no site order: leave sample.order=raster")


def resolve_discrete(config: RunConfig, kind: str) -> RunConfig:
    """The resolution of a lattice run; refuses continuous paths on lattices and the masked
    path on continuous data, each in one line naming the fix."""
    p = config.path
    if kind != "lattice":
        raise UserError(f"path.name={p.name} models categorical lattices; {kind} data need a "
                        f"continuous path (e.g. path.name=linear), or give integer lattices "
                        f"with data.kind=lattice")
    if not PATHS[p.name].discrete:
        raise UserError(f"path.name={p.name} is continuous, but data.kind=lattice holds "
                        f"categorical states; use path.name=masked or path.name=uniform")
    for key, value, fix in (("path.base", p.base, "noise"),
                            ("train.coupling", config.train.coupling, "independent"),
                            ("sample.clip", config.sample.clip, False)):
        if value != fix:
            raise UserError(f"{key}={value} does not apply to lattice data (path.name={p.name}); "
                            f"use {key}={str(fix).lower()}")
    path_kind = PATHS[p.name]
    p.prediction = path_kind.prediction if p.prediction == "auto" else p.prediction
    p.time_sampling = path_kind.time_sampling if p.time_sampling == "auto" else p.time_sampling
    if (p.prediction, p.time_sampling) != (path_kind.prediction, path_kind.time_sampling):
        raise UserError(f"path.name={p.name} predicts {path_kind.prediction} with its own "
                        f"corruption schedule; leave path.prediction and path.time_sampling auto")
    config.model.net = resolved_net(config.model.net, kind)
    if not fits(config.model.net, kind):
        raise UserError(f"model.net={config.model.net} does not fit lattice data; use "
                        f"model.net={' or '.join(fitting(kind))}")
    resolve_path_loss(config)
    choice(config.train.dtype, DTYPES, "train.dtype")
    choice(config.train.lr_schedule, ("constant", "cosine"), "train.lr_schedule")
    return config


def lattice_job(config: RunConfig, run_dir, train_set):
    """(TrainingJob, network options) of a lattice run: no scale, mean or noise, the path's
    own loss (masked: its ELBO; uniform: path.loss, the posterior's cross-entropy or the
    CTMC's ELBO)."""
    from heatbath.generative.resolve import make_net, make_path, net_options
    from heatbath.generative.train import TrainingJob

    if train_set.cond_kind is not None:
        raise UserError("lattice models are unconditional; drop the conditions c")
    options = net_options(config, train_set.event_shape, None, None, None,
                          num_states=train_set.num_states)
    path = make_path(config, 1.0, None, "lattice", train_set.event_shape)
    if not path.exact_log_q:   # the uniform path's posterior depends on t: a timed network
        options["time_conditioned"] = True
    net = make_net(options, seed=config.train.seed, dtype=DTYPES[config.train.dtype])
    # auto is the path's default: runs recorded before path.loss existed resume unchanged
    use_elbo = config.path.loss == "elbo" and not path.exact_log_q
    job = TrainingJob(config, run_dir, train_set.x, None, None, path, net,
                      loss_fn=path.elbo if use_elbo else path.loss)
    return job, options


def num_states(run) -> int:
    return int(run.info.net["num_states"])


def lattice_shape(run, shape: tuple[int, int] | None) -> tuple[int, int]:
    """The trained L×M, or another one (the periodic network runs at any size)."""
    if shape is None:
        return tuple(run.event_shape)
    if len(shape) != 2 or min(shape) < 1:
        raise UserError(f"--shape needs two positive sizes L,M, got {','.join(map(str, shape))}")
    return tuple(int(s) for s in shape)


def sampler_name(run) -> str:
    """What a lattice run's samples and estimates name as their sampler."""
    return "masked" if run.path.exact_log_q else "uniform-ctmc"


def masked_order(run, order: str | None) -> str:
    """The masked sampler's order: an override (sample --order), else the run's sample.order,
    the order `estimate` scores in."""
    order = run.config.sample.order if order is None else order
    choice(order, ORDERS, "--order")
    return order


def masked_steps(run, shape: tuple[int, int], nfe: int | None, order: str | None,
                 with_log_q: bool = False) -> list:
    """The masked sampler's steps on an L×M lattice; one-line refusals of an --nfe the order
    cannot take, and of --log-q where the steps draw sites jointly without an exact log q."""
    order = masked_order(run, order)
    sites = math.prod(shape)
    if order == "sublattice" and nfe is not None:
        fixed = len(sublattice_steps(shape, run.net.reach))
        if nfe != fixed:
            raise UserError(f"--nfe {nfe}: the sublattice order reveals a {shape[0]}x{shape[1]} "
                            f"lattice in its {fixed} exact steps (the network reads "
                            f"{run.net.reach} sites away); drop --nfe or use --order raster")
    steps, exact = order_steps(order, shape, reach=run.net.reach,
                               seed=run.config.sample.order_seed, nfe=nfe)
    if with_log_q and not exact:
        raise UserError(f"--log-q needs one site per step: --nfe {nfe} < {sites} sites draws "
                        f"several sites at once, whose joint draw has no exact log q; drop "
                        f"--nfe or --log-q (or use --order sublattice, exact at fewer steps)")
    return steps


def _check_sampling(run, shape, sites: int, n: int, nfe: int | None, with_log_q: bool,
                    order: str | None) -> None:
    """One-line refusals of -n, --nfe, --log-q and --order, each saying why."""
    if n < 1:
        raise UserError(f"-n must be at least 1, got {n}")
    top = run.path.max_nfe(sites)
    if nfe is not None and top is not None and not 1 <= nfe <= top:
        raise UserError(f"--nfe {nfe}: a {shape[0]}x{shape[1]} lattice reveals its {sites} "
                        f"sites in 1..{sites} steps")
    if nfe is not None and nfe < 1:
        raise UserError(f"--nfe must be at least 1 CTMC step, got {nfe}")
    if with_log_q and not run.path.exact_log_q:
        raise UserError("--log-q: path.name=uniform has no exact log q (its CTMC sampler's law "
                        "sums over every jump path); path.name=masked gives one")
    if order is not None and not run.path.exact_log_q:
        raise UserError(f"--order {order} orders the sites of path.name=masked; the uniform "
                        f"path's CTMC updates every site at every step")


def _draw(run, uniforms, shape, nfe: int, steps):
    """One batch from the run's sampler: masked along `steps`, uniform in nfe CTMC steps."""
    if steps is None:
        return run.path.sample(run.net, uniforms, shape, nfe)
    return run.path.sample(run.net, uniforms, shape, steps=steps)


def sample_lattice(run, n: int, *, seed: int = 0, nfe: int | None = None,
                   with_log_q: bool = False, shape: tuple[int, int] | None = None,
                   batch_size: int = 1000, progress=None, order: str | None = None):
    """n lattices (int64) from the run's sampler. Masked: along `order` (None: the run's
    sample.order; `masked_steps`), `log_q` exact with one site per step or the sublattice
    order, none with nfe < sites strided steps. Uniform: nfe CTMC Euler steps (None: the
    path's default), no log q."""
    from heatbath.generative.sample import GeneratedSamples

    shape = lattice_shape(run, shape)
    sites = math.prod(shape)
    _check_sampling(run, shape, sites, n, nfe, with_log_q, order)
    steps = None
    if run.path.exact_log_q:
        steps = masked_steps(run, shape, nfe, order, with_log_q)
        nfe = len(steps)
    nfe = run.path.default_nfe(sites) if nfe is None else nfe
    # Every uniform the sampler uses, per sample, drawn up front: samples do not depend on
    # batching (masked: one per site; uniform: one per site and step, plus the source).
    uniforms = torch.rand(n, *run.path.draw_shape(sites, nfe),
                          generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    xs, log_qs = [], []
    for start in range(0, n, batch_size):
        part = uniforms[start:start + batch_size].to(run.device)
        x, log_q = _draw(run, part, shape, nfe, steps)
        xs.append(x.cpu())
        if log_q is not None:
            log_qs.append(log_q.cpu())
        if progress is not None:
            progress(len(part))
    return GeneratedSamples(torch.cat(xs), nfe,
                            log_q=torch.cat(log_qs) if with_log_q else None,
                            log_q_kind="exact" if with_log_q else None)


def lattice_log_q(run, x: torch.Tensor, batch_size: int = 500,
                  order: str | None = None) -> torch.Tensor:
    """Exact log q(x) (float64) of lattices of any size under the masked sampler along `order`
    (None: the run's sample.order, as `sample_lattice` draws)."""
    if not run.path.exact_log_q:
        raise UserError("path.name=uniform has no exact log q of a lattice (its CTMC sampler's "
                        "law sums over every jump path); path.name=masked gives one")
    q = num_states(run)
    if x.dtype.is_floating_point or int(x.min()) < 0 or int(x.max()) >= q:
        raise UserError(f"lattices to score need integer states 0..{q - 1} (the model's q)")
    steps = masked_steps(run, tuple(x.shape[1:]), None, order)
    with torch.no_grad():
        return torch.cat([run.path.ordered_log_prob(run.net, x[i:i + batch_size].to(run.device),
                                                    steps).cpu()
                          for i in range(0, len(x), batch_size)])


# (t, x_t) draws per held-out lattice in the uniform path's ELBO estimate
BOUND_TIME_DRAWS = 16


@torch.no_grad()
def lattice_nll_bound(run, x: torch.Tensor, *, seed: int = 0, draws: int = BOUND_TIME_DRAWS,
                      batch_size: int = 500) -> torch.Tensor:
    """Per lattice, the mean of `draws` unbiased estimates of ELBO(x)/D ≥ −log q_θ(x)/D of the
    uniform path's CTMC (`UniformPath.elbo`): independent over lattices, so their mean and
    standard error estimate the held-out bound. Fixed `seed`: the same draws every call."""
    q = num_states(run)
    if x.dtype.is_floating_point or int(x.min()) < 0 or int(x.max()) >= q:
        raise UserError(f"lattices to score need integer states 0..{q - 1} (the model's q)")
    generator = torch.Generator().manual_seed(seed)
    repeated = x.repeat_interleave(draws, 0)
    bounds = torch.cat([run.path.elbo(run.net, repeated[i:i + batch_size].to(run.device),
                                      generator).double().cpu()
                        for i in range(0, len(repeated), batch_size)])
    return bounds.view(len(x), draws).mean(1)


LATTICE_CONVENTIONS = {
    "nll_per_dim": "mean over held-out lattices of -log q(x) / D, nats per site (D = L*M "
                   "sites), q the exact probability of the fixed-order masked sampler along "
                   "`order` (the run's sample.order, the order its samples are drawn in): a "
                   "discrete probability, no dequantisation",
    "order": "the masked sampler's site order (sample.order): raster, one site per step; "
             "random, one site per step in one permutation drawn from order_seed; "
             "sublattice, every site of a sublattice spaced beyond the network's reach per "
             "step, exact at S_L*S_M steps",
    "order_seed": "seed of the random order's permutation (sample.order_seed)",
    "bits_per_dim": "nll_per_dim / ln 2: bits per site",
    "energy_distance": "2E|X-Y| - E|X-X'| - E|Y-Y'| between one-hot encodings of the lattices "
                       "(|X-Y|^2 = 2 x the number of differing sites), model samples vs "
                       "held-out data; floor: the same between two halves of the held-out data",
    "nfe": "network evaluations per sample: one per step of the order (raster, random: one "
           "per site; sublattice: S_L*S_M)",
    "likelihood": "exact: q is the probability of x under the autoregressive model the "
                  "sampler draws from",
    "nfe_uniform": "network evaluations per sample: one per Euler step of the CTMC, uniform "
                   "grid t_k = k/nfe",
    "likelihood_uniform": "bound: nll_bound_per_dim is an upper bound on -log q / D, q the law "
                          "at t = 1 of the model's CTMC integrated exactly (not of the K-step "
                          "Euler sampler, which has no exact log q), whatever path.loss trained "
                          "it; path.name=masked gives an exact log q",
    "nll_bound_per_dim": "an upper bound on -log q(x) / D in nats per site, q the law at t = 1 "
                         "of the CTMC from the uniform source integrated exactly: mean over "
                         "held-out lattices of an unbiased Monte Carlo estimate of its "
                         "continuous-time ELBO / D (the generalised KL of the rates, "
                         "paths.uniform), per lattice "
                         f"{BOUND_TIME_DRAWS} draws of t = 1 - u^2 (importance weight 2/u) "
                         "and x_t ~ p_t(. | x), fixed seed; stderr over lattices. Not tight "
                         "even for the exact posterior (the conditional paths' mixture is not "
                         "Markov)",
    "bits_bound_per_dim": "nll_bound_per_dim / ln 2: bits per site",
    "time_draws": "(t, x_t) draws per held-out lattice in nll_bound_per_dim",
    "n": "held-out lattices scored for the likelihood",
    "n_samples": "model samples drawn for the distances",
}


def estimate_lattice_run(run, *, source: str | None = None, n: int | None = None,
                         seed: int = 0, progress=None) -> dict:
    """`heatbath estimate --json` of a lattice run; `source` may hold another L×M."""
    from heatbath.datasets import load_source
    from heatbath.estimators.distances import distance_with_floor

    heldout = (run.heldout()[0].long() if source is None
               else load_source(source, kind="lattice").x)
    if len(heldout) < 4:
        raise UserError(f"need at least 4 evaluation lattices, got {len(heldout)}")
    if n is not None and n > len(heldout):
        raise UserError(f"-n {n} is more than the {len(heldout)} evaluation samples; "
                        f"use -n {len(heldout)} or fewer")
    cfg = run.config
    scored = heldout[:n or cfg.eval.likelihood_max or len(heldout)]
    shape = tuple(heldout.shape[1:])
    sites = math.prod(shape)
    exact = run.path.exact_log_q
    if exact:
        nll = -lattice_log_q(run, scored) / sites
        report = {"nll_per_dim": mean_estimate(nll.numpy()).to_json(),
                  "bits_per_dim": mean_estimate((nll / math.log(2)).numpy()).to_json()}
    else:
        bound = lattice_nll_bound(run, scored, seed=seed)
        report = {"nll_bound_per_dim": mean_estimate(bound.numpy()).to_json(),
                  "bits_bound_per_dim": mean_estimate((bound / math.log(2)).numpy()).to_json(),
                  "time_draws": BOUND_TIME_DRAWS}
    n_samples = n or min(len(heldout), cfg.eval.samples)
    samples = sample_lattice(run, n_samples, seed=seed + 1, shape=shape, progress=progress)
    q = num_states(run)
    onehot = lambda x: torch.nn.functional.one_hot(x, q).flatten(1).double()   # noqa: E731
    score, floor = distance_with_floor("energy", onehot(samples.x), onehot(heldout), seed=seed)
    report["energy_distance"] = {**score.to_json(), "floor": floor.to_json()}
    report.update(likelihood="exact" if exact else "bound", nfe=samples.nfe,
                  n_samples=n_samples, sampler=sampler_name(run), dim=sites, shape=list(shape),
                  num_states=q, n=len(scored))
    if exact:   # the order both nll_per_dim and the samples refer to
        report["order"] = cfg.sample.order
        if cfg.sample.order == "random":
            report["order_seed"] = cfg.sample.order_seed
    suffix = "" if exact else "_uniform"
    conventions = {k: LATTICE_CONVENTIONS.get(k + suffix, LATTICE_CONVENTIONS.get(k))
                   for k in report}
    report["conventions"] = {k: v for k, v in conventions.items() if v is not None}
    return report
