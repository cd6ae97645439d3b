"""Fréchet distance against NFE on digits: heatbath's ODE samplers and diffusers' DPM-Solver++
driving one model trained once in this script.

    .venv/bin/python benchmarks/bench_fd_nfe.py            # ~65 min on one core
    .venv/bin/python benchmarks/bench_fd_nfe.py --quick    # smoke run, ~10 min

Models: heatbath's U-Net on builtin:digits (all 1797 images, 8×8), trained with heatbath's own
loop and EMA for the same number of steps on three paths: VP with ε-prediction (the
continuous-time limit of DDPM's linear β schedule), and the phase-space paths CLD and PSLD
(hybrid score matching, the U-Net sees (x, v) as 2 channels). The diffusers contender is
DPMSolverMultistepScheduler(dpmsolver++, order 2) on the VP network, through the
discrete-timestep mapping of `bench_sampler_quality.py` (which states it).

Metric: FD² (the FID convention, squared) between Gaussian fits of 32 features of heatbath's
own digits classifier (`generative.features`, seeded, cached; held-out accuracy in the table's
header) for N samples against N of the 1797 images; the floor is the same FD² between two
disjoint halves of the images (N each). FD² is biased upward at finite N: read it beside the
floor. Each row is the mean FD² over SAMPLE_SEEDS independent draws of N samples (the sample
seed sets the starting noise and the injected noise; one seed moved a row's FD² by up to 2.5x,
e.g. 3.4 to 9.8 for one sampler at 20 NFE), ± the standard error of that mean across seeds;
the reference half is the same for every row. Samplers share each seed's starting noise
(common random numbers).

The phase-space rows sample the CLD and PSLD models with two integrators of the reverse SDE,
splitting (SSCS) and the exponential integrator around the Gaussian model (`exponential-sde`,
second order in the network's residual), and with the conjugate integrator of the
probability-flow ODE around the same Gaussian model;
λ-DDIM rows are the ordinary-diffusion conjugate integrator on the VP model.
"""

from __future__ import annotations

import argparse
import statistics
import time

from common import log, markdown_table, pin_threads, trained_field, write_report

THREADS = pin_threads()

import torch  # noqa: E402

from bench_sampler_quality import diffusers_samples  # noqa: E402
from heatbath.datasets.images import digits  # noqa: E402
from heatbath.estimators.frechet import frechet_squared  # noqa: E402
from heatbath.generative.config import RunConfig  # noqa: E402
from heatbath.generative.features import feature_map  # noqa: E402
from heatbath.samplers import SamplerSettings, draw_samples  # noqa: E402

NFES = (5, 10, 20, 50)
SAMPLE_SEEDS = (7, 8, 9, 10)
OURS = (("heatbath heun (karras grid, EDM)", SamplerSettings("heun", grid="karras")),
        ("heatbath dpm++2m", SamplerSettings("dpm++2m")),
        ("heatbath ddim", SamplerSettings("ddim")),
        ("heatbath conjugate λ = −1", SamplerSettings("conjugate", conjugate_lambda=-1.0)),
        ("heatbath conjugate λ = +1", SamplerSettings("conjugate", conjugate_lambda=1.0)))


# Trials on the PSLD model of this script (3000 steps), FD² at 20 NFE, mean of the 4 seeds:
# exponential-sde at churn 0 (the probability-flow ODE, 2M) 8.8, churn 0.3 7.4, 0.6 7.1, 1 6.1
# (the row); on equal t steps 10.5, 15.7, 25.2, 43.2. Grids with s = 1 − t spaced as EDM's
# σ-grid, s_i^(1/ρ) equally spaced: ρ = 3, 5, 7 gave 6.1, 6.5, 5.9 (churn 1) and splitting
# 9.8, 8.7, 8.7; s falling as (1 − i/N)³: 6.5. No grid or churn closes the gap to EDM-Heun at
# 50 NFE (3.96), so the rows keep the quadratic grid.
PHASE = (("splitting", SamplerSettings("splitting")),
         ("exponential-sde", SamplerSettings("exponential-sde")),
         ("conjugate", SamplerSettings("conjugate")))


def train_digits(steps: int, path: str = "vp"):
    config = RunConfig()
    config.data.source = "builtin:digits"
    config.path.name, config.path.prediction = path, "eps"
    config.sample.sampler = "conjugate" if path in ("cld", "psld") else "heun"
    config.train.steps, config.train.seed = steps, 0
    return trained_field(config)


def with_nfe(settings: SamplerSettings, nfe: int) -> SamplerSettings:
    return SamplerSettings(settings.name, nfe=nfe, grid=settings.grid,
                           conjugate_lambda=settings.conjugate_lambda)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short training, fewer samples")
    args = parser.parse_args()
    steps, n = (300, 400) if args.quick else (3000, 898)
    seeds = SAMPLE_SEEDS[:1] if args.quick else SAMPLE_SEEDS
    data = digits()
    features = feature_map("digits", data.x, data.c, data.num_classes)
    order = torch.randperm(len(data.x), generator=torch.Generator().manual_seed(0))
    half_a, half_b = data.x[order[:n]], data.x[order[n:2 * n]]
    reference = features(half_b)
    floor = frechet_squared(features(half_a), reference, seed=0)
    started = time.perf_counter()
    field = train_digits(steps)
    log(f"trained the digits model ({steps} steps) in {time.perf_counter() - started:.0f} s")
    rows = [["data vs data (floor, bootstrap ±)", "–", "–",
             f"{floor.value:.2f} ± {floor.stderr:.2f}", "–", "–"]]
    runs = [(label, nfe, lambda seed, s=settings, k=nfe: _ours(field, with_nfe(s, k), n, seed))
            for label, settings in OURS for nfe in NFES]
    runs += [("diffusers DPMSolver++ 2M", nfe,
              lambda seed, k=nfe: diffusers_samples(field, "dpm", k, n, (1, 8, 8), seed))
             for nfe in NFES]
    for path in ("cld", "psld"):
        started = time.perf_counter()
        phase_field = train_digits(steps, path)
        log(f"trained the {path} model ({steps} steps) in {time.perf_counter() - started:.0f} s")
        runs += [(f"heatbath {path} {label}", nfe,
                  lambda seed, s=settings, k=nfe, f=phase_field: _ours(f, with_nfe(s, k), n, seed))
                 for label, settings in PHASE for nfe in NFES]
    for label, nfe, run in runs:
        rows.append(_row(label, nfe, run, seeds, lambda x: frechet_squared(
            features(x.clamp(-1, 1)), reference, seed=0).value, floor.value))
    table = markdown_table(["sampler", "NFE asked", "NFE", f"FD², mean of {len(seeds)} seeds (± s.e.)",
                            "FD² per seed", "FD² / floor"], rows)
    header = (f"n = {n} samples per seed against {n} digits; features: "
              f"{features.description['network']}, held-out accuracy "
              f"{features.description['held_out_accuracy']:.3f}; samples clamped to the data "
              f"range [-1, 1] before the classifier sees them.")
    write_report("bench_fd_nfe" + ("_quick" if args.quick else ""),
                 f"Fréchet distance (FD², squared) vs NFE on digits, VP/ε, CLD and PSLD U-Nets "
                 f"({steps} steps each)", THREADS, [header + "\n\n" + table])


def _ours(field, settings: SamplerSettings, n: int, seed: int):
    result = draw_samples(field, n, (1, 8, 8), settings, seed=seed, batch_size=n)
    return result.x, result.nfe


def _row(label: str, nfe: int, run, seeds, fd_of, floor: float) -> list:
    """One table row: FD² of `run(seed)`'s samples for each sample seed, their mean and its
    standard error across seeds."""
    values = []
    for seed in seeds:
        started = time.perf_counter()
        x, used = run(seed)
        values.append(fd_of(x))
        log(f"{label} NFE {used} seed {seed}: FD² {values[-1]:.2f} "
            f"({time.perf_counter() - started:.1f} s)")
    mean = statistics.mean(values)
    spread = (f" ± {statistics.stdev(values) / len(values) ** 0.5:.2f}" if len(values) > 1
              else "")
    return [label, nfe, used, f"{mean:.2f}{spread}",
            " ".join(f"{v:.1f}" for v in values), f"{mean / floor:.1f}x"]


if __name__ == "__main__":
    main()
