"""Fréchet distance against NFE on digits: heatbath's ODE samplers and diffusers' DPM-Solver++
driving one model trained once in this script.

    .venv/bin/python benchmarks/bench_fd_nfe.py            # ~45 min on one core
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
floor. Samples share their starting noise across samplers (common random numbers).

The phase-space rows sample the CLD and PSLD models with the splitting integrator (the reverse
SDE) and the conjugate integrator (the probability-flow ODE around the Gaussian model);
λ-DDIM rows are the ordinary-diffusion conjugate integrator on the VP model.
"""

from __future__ import annotations

import argparse
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
SAMPLE_SEED = 7
OURS = (("heatbath heun (karras grid, EDM)", SamplerSettings("heun", grid="karras")),
        ("heatbath dpm++2m", SamplerSettings("dpm++2m")),
        ("heatbath ddim", SamplerSettings("ddim")),
        ("heatbath conjugate λ = −1", SamplerSettings("conjugate", conjugate_lambda=-1.0)),
        ("heatbath conjugate λ = +1", SamplerSettings("conjugate", conjugate_lambda=1.0)))


PHASE = (("splitting", SamplerSettings("splitting")), ("conjugate", SamplerSettings("conjugate")))


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
    data = digits()
    features = feature_map("digits", data.x, data.c, data.num_classes)
    order = torch.randperm(len(data.x), generator=torch.Generator().manual_seed(0))
    half_a, half_b = data.x[order[:n]], data.x[order[n:2 * n]]
    reference = features(half_b)
    floor = frechet_squared(features(half_a), reference, seed=0)
    started = time.perf_counter()
    field = train_digits(steps)
    log(f"trained the digits model ({steps} steps) in {time.perf_counter() - started:.0f} s")
    rows = [["data vs data (floor)", "–", "–", f"{floor.value:.2f} ± {floor.stderr:.2f}", "–"]]
    runs = [(label, nfe, lambda s=settings, k=nfe: _ours(field, with_nfe(s, k), n))
            for label, settings in OURS for nfe in NFES]
    runs += [("diffusers DPMSolver++ 2M", nfe,
              lambda k=nfe: diffusers_samples(field, "dpm", k, n, (1, 8, 8))) for nfe in NFES]
    for path in ("cld", "psld"):
        started = time.perf_counter()
        phase_field = train_digits(steps, path)
        log(f"trained the {path} model ({steps} steps) in {time.perf_counter() - started:.0f} s")
        runs += [(f"heatbath {path} {label}", nfe,
                  lambda s=settings, k=nfe, f=phase_field: _ours(f, with_nfe(s, k), n))
                 for label, settings in PHASE for nfe in NFES]
    for label, nfe, run in runs:
        started = time.perf_counter()
        x, used = run()
        seconds = time.perf_counter() - started
        fd = frechet_squared(features(x.clamp(-1, 1)), reference, seed=0)
        rows.append([label, nfe, used, f"{fd.value:.2f} ± {fd.stderr:.2f}",
                     f"{fd.value / floor.value:.1f}x"])
        log(f"{label} NFE {used}: FD² {fd.value:.2f} ({seconds:.1f} s)")
    table = markdown_table(["sampler", "NFE asked", "NFE", "FD² (bootstrap ±)",
                            "FD² / floor"], rows)
    header = (f"n = {n} samples against {n} digits; features: "
              f"{features.description['network']}, held-out accuracy "
              f"{features.description['held_out_accuracy']:.3f}; samples clamped to the data "
              f"range [-1, 1] before the classifier sees them.")
    write_report("bench_fd_nfe" + ("_quick" if args.quick else ""),
                 f"Fréchet distance (FD², squared) vs NFE on digits, VP/ε, CLD and PSLD U-Nets "
                 f"({steps} steps each)", THREADS, [header + "\n\n" + table])


def _ours(field, settings: SamplerSettings, n: int):
    result = draw_samples(field, n, (1, 8, 8), settings, seed=SAMPLE_SEED, batch_size=n)
    return result.x, result.nfe


if __name__ == "__main__":
    main()
