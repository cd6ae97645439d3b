"""Point-cloud generation at 256 points per cloud on heatbath's procedural shapes: flow matching
with the E(n)-equivariant EGNN on the zero-centre-of-mass subspace, scored by the PointFlow
metrics next to their data-vs-data floors.

    .venv/bin/python benchmarks/bench_point_clouds.py            # ~21 min on one core
    .venv/bin/python benchmarks/bench_point_clouds.py --families ellipsoids,tori   # twice that
    .venv/bin/python benchmarks/bench_point_clouds.py --quick    # smoke run, < 1 min, no file

Per shape family (`builtin:ellipsoids` by default; `builtin:tori` with `--families`; 256 points,
random orientation):
  training set   `--train` clouds drawn with seed 0, written to a scratch .npy without their
                 shape parameters, so the model is unconditional (the standard 1-NNA setting);
                 `heatbath fit`'s loop (`prepare_job` + `train`, EMA weights) with
                 `model.net=egnn`, the linear path (flow matching), `data.kind=particles`,
                 `train.coupling=equivariant_ot` (Hungarian + Kabsch alignment of each noise
                 cloud to each data cloud, then minibatch OT: 0.63 s a step here against 0.32
                 s for independent pairs, and it moved 1-NNA from 1.00 (600 steps, lr 2e-3,
                 independent coupling) to 0.52 at N = 50 in a trial run with 1200 steps, lr 5e-3).
  reference      2N = `--reference` clouds drawn with seed 1001: a disjoint, independent draw.
                 A fixed random split (seed 0) cuts it into halves R_a and R_b of N clouds.
  samples        N clouds from the model (`--sampler`, `--nfe`, seed 7). The sampler is not
                 what holds 1-NNA up: the 3000-step model of the committed table drawn with
                 Heun at 60 evaluations instead of 20 scored 0.632 against 0.627 (N = 200).

Columns (pinned definitions, `heatbath.estimators.clouds`; every metric on N generated clouds
against R_b, its floor on R_a against R_b: `with_floor` at matched sizes, so the floor is what a
perfect model scores with the same N):
* CD: the Chamfer distance between clouds a, b of P points, SQUARED Euclidean distances and the
  sum (not the average) of the two directional means, (1/P) Σ_i min_j ‖a_i − b_j‖² +
  (1/P) Σ_j min_i ‖a_i − b_j‖² (PointFlow's convention); no normalisation of the clouds, which
  are in the data's own units.
* 1-NNA (CD): leave-one-out 1-nearest-neighbour accuracy over the union of the generated set and
  R_b, labelled by origin, each cloud classified by its nearest other cloud under CD (ties to
  the lowest index, generated first). 0.5 is ideal, 1.0 fully separable; ± is the binomial
  √(a(1−a)/2N), a rough guide only.
* 1-NNA null mean: (N−1)/(2N−1), the exact expectation of 1-NNA between two independent sets
  of N clouds from one law (exchangeability): the value the floor column scatters around.
* MMD (CD): (1/N) Σ_{r ∈ R_b} min_s CD(s, r), each reference cloud's closest sample, averaged;
  lower is better; ± bootstrap (200 replicates over both sets).
* COV (CD): the fraction of R_b that is the nearest reference cloud of some sample; higher is
  better; ± bootstrap over the samples.
* train s / sample s: wall seconds of training and of drawing the N samples; NFE: network
  evaluations per sample of the fixed-step sampler.

Equal 1-NNA and floor means the metric cannot tell the model from the data at this N; CD is not
rotation invariant, so nearest neighbours are found among clouds in random orientations, as in
the data itself.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from common import log, markdown_table, pin_threads, trained_field, write_report

THREADS = pin_threads()

import numpy as np  # noqa: E402
import torch  # noqa: E402

from heatbath.datasets.clouds import CLOUDS  # noqa: E402
from heatbath.estimators.clouds import with_floor  # noqa: E402
from heatbath.generative.config import RunConfig  # noqa: E402
from heatbath.samplers import SamplerSettings, draw_samples  # noqa: E402

POINTS = 256
TRAIN_SEED, REFERENCE_SEED, SAMPLE_SEED, SPLIT_SEED = 0, 1001, 7, 0
SAMPLE_BATCH = 10   # clouds per sampler batch: the EGNN holds (B, 256, 256, hidden) tensors


def train_model(family: str, args, scratch: Path):
    clouds = CLOUDS[family][0](n=args.train, points=POINTS, seed=TRAIN_SEED).x
    data_file = scratch / f"{family}_train.npy"
    np.save(data_file, clouds.numpy())   # positions only: no shape parameters, unconditional
    config = RunConfig()
    config.data.source, config.data.kind = str(data_file), "particles"
    config.data.holdout = 1 / args.train   # one cloud held out (fit needs a held-out part)
    config.model.net, config.model.hidden, config.model.depth = "egnn", args.hidden, args.depth
    config.path.name = "linear"
    config.train.steps, config.train.batch_size = args.steps, args.batch
    config.train.lr, config.train.lr_schedule = args.lr, "cosine"
    config.train.coupling, config.train.seed = args.coupling, TRAIN_SEED
    config.train.log_every = max(1, args.steps // 10)
    started = time.perf_counter()
    field = trained_field(config)
    return field, time.perf_counter() - started


def sample(field, n: int, args) -> tuple[torch.Tensor, int, float]:
    started = time.perf_counter()
    result = draw_samples(field, n, (POINTS, 3), SamplerSettings(args.sampler, args.nfe),
                          seed=SAMPLE_SEED, batch_size=SAMPLE_BATCH)
    return result.x.double(), result.nfe, time.perf_counter() - started


def reference_split(size: int) -> tuple[torch.Tensor, torch.Tensor]:
    order = torch.randperm(size, generator=torch.Generator().manual_seed(SPLIT_SEED))
    return order[:size // 2], order[size // 2:]


def fmt(estimate, digits: int = 3) -> str:
    return f"{estimate.value:.{digits}f} ± {estimate.stderr:.{digits}f}"


def evaluate(family: str, args, scratch: Path) -> dict:
    log(f"{family}: training {args.steps} steps ...")
    field, train_s = train_model(family, args, scratch)
    reference = CLOUDS[family][0](n=args.reference, points=POINTS, seed=REFERENCE_SEED).x.double()
    split = reference_split(len(reference))
    log(f"{family}: trained in {train_s:.0f} s; sampling {len(split[0])} clouds ...")
    generated, nfe, sample_s = sample(field, len(split[0]), args)
    if not torch.isfinite(generated).all():
        raise SystemExit(f"{family}: the sampler returned non-finite clouds")
    log(f"{family}: sampled in {sample_s:.0f} s; metrics ...")
    cells = {}
    for name, metric, digits in (("1-NNA (CD)", "one_nna", 3), ("MMD (CD)", "mmd", 4),
                                 ("COV (CD)", "coverage", 3)):
        value, floor = with_floor(metric, generated, reference, split, distance="chamfer")
        cells[name] = fmt(value, digits)
        cells[f"{name} floor"] = fmt(floor, digits)
        if metric == "one_nna":   # what the floor scores on average: its noise is large
            cells["1-NNA null mean"] = f"{value.extra['null_expectation']:.3f}"
        log(f"  {name}: {cells[name]} (floor {cells[f'{name} floor']})")
    return {"family": family, "N": len(split[0]), **cells, "train s": f"{train_s:.0f}",
            "NFE": nfe, "sample s": f"{sample_s:.0f}"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--families", default="ellipsoids",
                        help="comma-separated: ellipsoids, tori (each ~21 min at the defaults)")
    parser.add_argument("--train", type=int, default=2000, help="training clouds")
    parser.add_argument("--reference", type=int, default=200,
                        help="reference clouds 2N (N are generated)")
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--hidden", type=int, default=16)
    parser.add_argument("--depth", type=int, default=2)
    parser.add_argument("--lr", type=float, default=5e-3)
    parser.add_argument("--coupling", default="equivariant_ot")
    parser.add_argument("--sampler", default="heun")
    parser.add_argument("--nfe", type=int, default=20)
    parser.add_argument("--quick", action="store_true", help="smoke run (< 1 min), writes nothing")
    args = parser.parse_args()
    if args.quick:
        args.families, args.train, args.reference, args.steps, args.nfe = (
            "ellipsoids", 50, 20, 20, 4)
    started = time.perf_counter()
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        for family in args.families.split(","):
            rows.append(evaluate(family, args, Path(scratch)))
    total = time.perf_counter() - started
    title = (f"Point clouds, {POINTS} points: unconditional flow matching with the EGNN (hidden "
             f"{args.hidden}, depth {args.depth}), {args.steps} steps of batch {args.batch}, "
             f"lr {args.lr} cosine, coupling {args.coupling}, on {args.train} training clouds; "
             f"{args.sampler} sampler; N generated vs N of {args.reference} reference clouds; "
             f"{THREADS} thread")
    text = markdown_table(list(rows[0]), [list(r.values()) for r in rows])
    goal = "; ".join(f"{r['family']}: 1-NNA (CD) {r['1-NNA (CD)']} (floor "
                     f"{r['1-NNA (CD) floor']}) → goal ≤ 0.6 "
                     f"{'met' if float(r['1-NNA (CD)'].split()[0]) <= 0.6 else 'NOT met'}"
                     for r in rows)
    footer = f"Goal 1-NNA (CD) ≤ 0.6: {goal}. Whole script: {total:.0f} s."
    if args.quick:
        print(f"{title}\n\n{text}\n\n{footer}")
    else:
        write_report("bench_point_clouds", title, THREADS, [text, footer])


if __name__ == "__main__":
    main()
