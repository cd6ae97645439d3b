"""In-painting and super-resolution with data-dependent couplings: Fréchet distance and PSNR
of the restorations against the data floor and against the observation's own base b(c).

    .venv/bin/python benchmarks/bench_restoration.py            # digits + Fashion-MNIST
    .venv/bin/python benchmarks/bench_restoration.py --quick    # digits only, short training

Models: for each data set, two U-Nets trained with `heatbath fit` (the CLI's own code path:
`generative.fit.fit_data`) on the linear path with path.base=inpaint (path.mask=center: the
middle half of each side is missing) and path.base=superres (path.factor: f×f block means are
observed). Each restores the same N held-out images (one draw per image; their holes and
low-resolution versions are the held-out points themselves, corrupted).

Metrics (one row per model, sampler and NFE; the rows of one data set share the images):
  FD²    squared Fréchet distance (FID convention, not its root) between Gaussian fits of the
         32 features of heatbath's seeded classifier of that data set, restorations against
         held-out images; floor: the same between two disjoint halves of the held-out images
         (`estimators.distances.distance_with_floor`, equal sizes). ± is the bootstrap error.
  PSNR   mean over images of 10·log10(w²/MSE), MSE over all pixels, w = 2 (data in [−1, 1]);
         ± the standard error over images. The PSNR of a posterior *draw* is below that of the
         posterior mean (the blurry minimum-MSE answer): read it with FD² beside it.
The "base b(c)" rows score the observation itself (hole filled by the data mean; the block
means up-sampled) — what the model starts from.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from common import log, markdown_table, pin_threads, write_report

THREADS = pin_threads()

import torch  # noqa: E402

from heatbath.core.estimate import mean_estimate  # noqa: E402
from heatbath.datasets.images import IMAGES  # noqa: E402
from heatbath.estimators.distances import distance_with_floor  # noqa: E402
from heatbath.estimators.frechet import frechet_squared  # noqa: E402
from heatbath.generative.config import RunConfig  # noqa: E402
from heatbath.generative.corruptions import psnr  # noqa: E402
from heatbath.generative.features import feature_map  # noqa: E402
from heatbath.generative.fit import fit_data  # noqa: E402
from heatbath.generative.restore import observe  # noqa: E402
from heatbath.generative.run import load_run  # noqa: E402
from heatbath.generative.sample import sample_run  # noqa: E402
from heatbath.samplers import SamplerSettings  # noqa: E402

SEED = 0
SAMPLERS = (("heun", 10), ("heun", 20), ("dpm++2m", 10))
CASES = {"digits": {"factor": 2, "base": 32, "mults": [1, 2], "batch": 128},
         "fashion_mnist": {"factor": 4, "base": 16, "mults": [1, 2], "batch": 64}}


def train(name: str, base: str, steps: int, folder: Path):
    case = CASES[name]
    config = RunConfig()
    config.data.source = f"builtin:{name}"
    config.path.base, config.path.mask, config.path.factor = base, "center", case["factor"]
    config.model.base, config.model.mults = case["base"], case["mults"]
    config.train.steps, config.train.batch_size, config.train.seed = steps, case["batch"], SEED
    config.train.lr_schedule = "cosine"
    config.eval.samples = 16
    started = time.perf_counter()
    out = fit_data(config, folder / f"{name}-{base}")
    log(f"{name} {base}: {steps} steps in {time.perf_counter() - started:.0f} s")
    return load_run(out), time.perf_counter() - started


def _row(label, restored, truth, features, heldout_features, extra):
    score, floor = distance_with_floor(lambda a, b: frechet_squared(a, b, SEED),
                                       features(restored), heldout_features, seed=SEED)
    quality = mean_estimate(psnr(restored, truth, 2.0).numpy())
    return {"model": label, **extra, "FD²": f"{score.value:.2f} ± {score.stderr:.2f}",
            "FD² floor": f"{floor.value:.2f}", "FD²/floor": f"{score.value / floor.value:.2f}",
            "PSNR (dB)": f"{quality.value:.2f} ± {quality.stderr:.2f}"}


def evaluate(name: str, runs: dict, n: int) -> list[dict]:
    dataset = IMAGES[name][0]()
    features = feature_map(name, dataset.x, dataset.c, dataset.num_classes)
    heldout = runs["inpaint"][0].heldout()[0]
    truth = heldout[:n]
    heldout_features = features(heldout)
    rows = []
    for base, (run, seconds) in runs.items():
        observed = observe(run, truth, None, SEED)
        rows.append(_row(f"{base}: base b(c)", observed.observation.base, truth, features,
                         heldout_features, {"sampler": "-", "NFE": 0, "train s": "-"}))
        for sampler, nfe in SAMPLERS:
            started = time.perf_counter()
            result = sample_run(run, n, SamplerSettings(sampler, nfe=nfe), seed=SEED,
                                observation=observed.observation)
            per_image = 1e3 * (time.perf_counter() - started) / n
            rows.append(_row(f"{base}: heatbath", result.x, truth, features, heldout_features,
                             {"sampler": sampler, "NFE": result.nfe,
                              "train s": f"{seconds:.0f}", "ms/image": f"{per_image:.1f}"}))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--steps", type=int, default=None)
    args = parser.parse_args()
    names = ["digits"] if args.quick else ["digits", "fashion_mnist"]
    steps = args.steps or (300 if args.quick else 2000)
    n = 180 if args.quick else 1000
    sections = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            runs = {base: train(name, base, steps, Path(tmp)) for base in ("inpaint", "superres")}
            rows = evaluate(name, runs, min(n, len(runs["inpaint"][0].heldout()[0])))
            headers = list(dict.fromkeys(k for row in rows for k in row))
            table = markdown_table(headers, [[row.get(h, "-") for h in headers] for row in rows])
            factor = CASES[name]["factor"]
            sections.append(f"## {name}: in-painting (center hole) and super-resolution "
                            f"(×{factor}), {steps} training steps\n\n{table}")
            print(sections[-1], flush=True)
    write_report("bench_restoration", "Restoration with data-dependent couplings", THREADS,
                 sections)


if __name__ == "__main__":
    main()
