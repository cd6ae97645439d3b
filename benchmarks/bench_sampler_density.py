"""Exact densities of what a few-step sampler returned, against the probability-flow ODE's.

    .venv/bin/python benchmarks/bench_sampler_density.py            # ~20 min on one core
    .venv/bin/python benchmarks/bench_sampler_density.py --quick    # smoke run, < 1 min

Self-normalised importance sampling of E_p[f] with weights w = p(x)/q(x) is only unbiased when
q is the density of the law the samples were drawn from. heatbath's `--log-q` gives that law's
density for deterministic samplers (the map's log|det J|) and a path log-weight for
stochastic ones (`samplers/returned.py`); the alternative is the ODE density at the returned
points, which is the density of another law at 2–10 NFE.

Two models, both with a known data density p:
  1. the exact Gaussian field of N(μ, Σ) in 3-D (VP path): its ODE density is p itself, so the
     ODE weights are all 1 and the estimate is the plain average; the map samplers' true
     output law is Gaussian (the map is affine) and its exact mean log-density is shown;
  2. an MLP trained by flow matching on builtin:8gaussians (FFJORD scale, p known in closed
     form): the ODE density is dopri5 with exact divergence (rtol = atol = 1e-5).

f(x) = |x|² (truth: tr Σ + |μ|², and radius² + 2σ² = 8.25 for 8gaussians). Columns: the
estimate's error in units of its own standard error (delta method: √Σ w̄²(f − f̂)²), Kish ESS
as a fraction of n, the PSIS Pareto k̂ of the weights (> 0.7: the error bar is unreliable).
"""

from __future__ import annotations

import argparse
import math
import time

from common import log, markdown_table, pin_threads, trained_field, write_report

THREADS = pin_threads()

import torch  # noqa: E402

from heatbath.datasets.toys import eight_gaussians_log_density  # noqa: E402
from heatbath.estimators.tail import weight_tail_diagnostic  # noqa: E402
from heatbath.generative.analytic_field import (GaussianDataField,  # noqa: E402
                                                sampler_output_law)
from heatbath.generative.config import RunConfig  # noqa: E402
from heatbath.generative.field import Field  # noqa: E402
from heatbath.paths import build_path  # noqa: E402
from heatbath.samplers import SamplerSettings, draw_samples  # noqa: E402
from heatbath.samplers.likelihood import log_likelihood  # noqa: E402

SAMPLERS = (SamplerSettings("euler"), SamplerSettings("heun"), SamplerSettings("dpm++2m"),
            SamplerSettings("ddpm"), SamplerSettings("euler-maruyama"))
NFES = (2, 5, 10)
MEAN = torch.tensor([0.5, -1.0, 0.25], dtype=torch.float64)
A = torch.tensor([[1.0, 0.3, 0.0], [0.0, 0.7, -0.2], [0.1, 0.0, 0.5]], dtype=torch.float64)
COV = A @ A.T + 0.1 * torch.eye(3, dtype=torch.float64)
SEED = 11


def snis(log_w: torch.Tensor, f: torch.Tensor, truth: float) -> dict:
    log_w, f = log_w.double(), f.double()
    w = torch.softmax(log_w, 0)
    estimate = float((w * f).sum())
    stderr = float((w ** 2 * (f - estimate) ** 2).sum().sqrt())
    ess = float(1.0 / (w ** 2).sum()) / len(w)
    k_hat = weight_tail_diagnostic(log_w).k_hat
    return {"z": (estimate - truth) / stderr if stderr > 0 else math.nan, "ess": ess,
            "k": k_hat, "estimate": estimate}


def z_cell(result: dict) -> str:
    """The z-score; flagged where the weights' tail makes its error bar meaningless (Pareto
    k̂ > 0.7), and a dash where one sample carries all the weight."""
    z, k_hat = result["z"], result["k"]
    if math.isnan(z):
        return "— (one weight)"
    if k_hat > 0.7:
        return f"{z:+.2g} (k̂ > 0.7)"
    return f"{z:+.1f}"


def with_nfe(settings: SamplerSettings, nfe: int) -> SamplerSettings:
    return SamplerSettings(settings.name, nfe=nfe, eta=settings.eta, churn=settings.churn)


def gaussian_rows(n: int) -> list[list[object]]:
    field = GaussianDataField(build_path("vp", sigma_data=1.0, data_mean=MEAN), MEAN, COV)
    p = torch.distributions.MultivariateNormal(MEAN, COV)
    truth = float(torch.trace(COV) + MEAN.pow(2).sum())
    rows = []
    for base in SAMPLERS:
        for nfe in NFES:
            settings = with_nfe(base, nfe)
            kind = settings.sampler.density(settings)
            drawn = draw_samples(field, n, (3,), settings, seed=SEED, dtype=torch.float64,
                                 with_log_q=True)
            log_p = p.log_prob(drawn.x)
            f = drawn.x.pow(2).sum(1)
            ours = snis(log_p - drawn.log_q, f, truth)
            ode = snis(torch.zeros_like(log_p), f, truth)   # ODE density = p: w = 1
            true_law = sampler_output_law(field, settings) if kind == "map" else None
            true_log_q = ("—" if true_law is None
                          else f"{float(true_law.log_prob(drawn.x).mean()):.3f}")
            rows.append([settings.name, nfe, kind, f"{float(log_p.mean()):.3f}",
                         f"{float(drawn.log_q.mean()):.3f}" if kind == "map" else "—",
                         true_log_q, z_cell(ode), z_cell(ours),
                         f"{ours['ess']:.3f}", f"{ours['k']:.2f}"])
            log(f"gaussian {settings.name} {nfe}: {rows[-1]}")
    return rows


def train_eight_gaussians(steps: int) -> Field:
    config = RunConfig()
    config.data.source = "builtin:8gaussians:n=20000"
    config.model.net, config.model.hidden, config.model.depth = "mlp", 128, 3
    config.train.steps, config.train.seed = steps, 0
    return trained_field(config)


def trained_rows(n: int, steps: int) -> list[list[object]]:
    started = time.perf_counter()
    field = train_eight_gaussians(steps)
    log(f"trained 8gaussians model in {time.perf_counter() - started:.0f} s")
    truth = 8.0 + 2 * 0.125
    rows = []
    for base in SAMPLERS:
        for nfe in NFES:
            settings = with_nfe(base, nfe)
            kind = settings.sampler.density(settings)
            started = time.perf_counter()
            drawn = draw_samples(field, n, (2,), settings, seed=SEED, with_log_q=True)
            ours_s = time.perf_counter() - started
            started = time.perf_counter()
            with torch.no_grad():
                ode_log_q = log_likelihood(field, drawn.x, method="exact").log_q
            ode_s = time.perf_counter() - started
            log_p = eight_gaussians_log_density(drawn.x.double())
            f = drawn.x.double().pow(2).sum(1)
            ours = snis(log_p - drawn.log_q, f, truth)
            ode = snis(log_p - ode_log_q.double(), f, truth)
            rows.append([settings.name, nfe, kind, z_cell(ode), f"{ode['ess']:.3f}",
                         f"{ode['k']:.2f}", z_cell(ours), f"{ours['ess']:.3f}",
                         f"{ours['k']:.2f}", f"{ode_s:.1f}", f"{ours_s:.1f}"])
            log(f"8gaussians {settings.name} {nfe}: {rows[-1]}")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small n and a short training")
    args = parser.parse_args()
    n, n_trained, steps = (2000, 1000, 200) if args.quick else (20000, 4000, 4000)
    gaussian = markdown_table(
        ["sampler", "NFE", "--log-q", "mean log q: ODE (= log p)", "mean log q: ours",
         "mean log q: true law", "z (ODE weights)", "z (ours)", "ESS ours", "k̂ ours"],
        gaussian_rows(n))
    trained = markdown_table(
        ["sampler", "NFE", "--log-q", "z (ODE)", "ESS (ODE)", "k̂ (ODE)", "z (ours)",
         "ESS (ours)", "k̂ (ours)", "s: ODE log q", "s: draw + ours"],
        trained_rows(n_trained, steps))
    sections = [
        f"## Exact Gaussian field, 3-D, VP path (n = {n:,} per row, ESS over those n)\n\n"
        "z: (SNIS estimate of E|x|² − truth) / its standard error; ODE weights are 1 here "
        "(the exact field's ODE density is p), so that column is the plain average's bias. "
        "'ours' is the exact density for map samplers, the path log-weight for ddpm and "
        "euler-maruyama (no mean log q: it is not a density of x).\n\n" + gaussian,
        f"## Flow matching MLP on builtin:8gaussians ({steps} steps; n = {n_trained:,} per "
        "row)\n\nz as above against E|x|² = 8.25; 'ODE': weights p/q with q the "
        "probability-flow ODE's density at the returned samples (dopri5, exact "
        "divergence).\n\n" + trained]
    write_report("bench_sampler_density" + ("_quick" if args.quick else ""),
                 "Densities of what few-step samplers return: SNIS bias and ESS, ours against "
                 "the ODE density", THREADS, sections)


if __name__ == "__main__":
    main()
