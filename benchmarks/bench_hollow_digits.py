"""Dense vs hollow MLP on a real 64-dimensional data set: scikit-learn digits (8×8, flattened).

    .venv/bin/python benchmarks/bench_hollow_digits.py           # ~12 min on one core
    .venv/bin/python benchmarks/bench_hollow_digits.py --quick   # smoke run, ~1 min

For each training seed, `heatbath fit --data builtin:digits` trains `model.net=mlp` and
`model.net=hollow` with the same settings (flow matching, class-conditional, `--steps`), then
on the same 180 held-out images:

  exact held-out likelihood time   `heatbath.generative.estimate.held_out_likelihood` (dopri5, the run's
                                   tolerances): the dense MLP through heatbath's vmapped exact
                                   trace and through the per-dimension autograd loop swapped in
                                   (the textbook baseline); the hollow MLP through its
                                   one-backward-pass trace.
  quality                          dequantised bits/dim (exact, no estimator noise; ± is the
                                   spread over held-out images) and the energy distance of 2000
                                   samples to the held-out images, next to its data-vs-data floor.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from common import log, markdown_table, pin_threads, write_report

THREADS = pin_threads()

from bench_likelihood import divergence_swapped, loop_divergence  # noqa: E402

import heatbath.samplers.likelihood as likelihood  # noqa: E402
from heatbath.cli import main as heatbath  # noqa: E402
from heatbath.generative.estimate import estimate_data_run, held_out_likelihood  # noqa: E402
from heatbath.generative.run import load_run  # noqa: E402


def fit(net: str, seed: int, steps: int, out: Path) -> float:
    started = time.perf_counter()
    code = heatbath(["fit", "--data", "builtin:digits", "--set", f"model.net={net}",
                     "--steps", str(steps), "--seed", str(seed), "--out", str(out), "--quiet"])
    assert code == 0, f"fit {net} seed {seed} failed"
    return time.perf_counter() - started


def timed_likelihood(run, x, loop: bool = False) -> tuple[float, int, dict]:
    """(seconds, field evaluations per batch, result) of the held-out likelihood."""
    divergence = loop_divergence if loop else likelihood.exact_divergence
    calls = [0]

    def counted(*args):
        calls[0] += 1
        return divergence(*args)

    started = time.perf_counter()
    with divergence_swapped(counted):
        result = held_out_likelihood(run, x, seed=0)
    return time.perf_counter() - started, calls[0], result


def evaluate(net: str, run_dir: Path, train_s: float, seed: int, with_loop: bool) -> list[list]:
    """[network, seed, train s, route, NFE, seconds, bits/dim, energy distance, floor] rows,
    numbers unformatted (bits/dim an Estimate, distances dicts); `table_cells` formats them."""
    run = load_run(run_dir)
    x = run.heldout()[0]
    seconds, nfe, result = timed_likelihood(run, x)
    timings = {f"heatbath exact ({'one backward pass' if net == 'hollow' else 'vmapped'})":
               (seconds, nfe)}
    if with_loop:
        *timings["per-dimension loop"], looped = timed_likelihood(run, x, loop=True)
        gap = abs(looped["bits_per_dim"].value - result["bits_per_dim"].value)
        assert gap < 1e-3, f"loop and vmapped bits/dim differ by {gap}"
    quality = estimate_data_run(run, seed=0)
    bpd, distance = result["bits_per_dim"], quality["energy_distance"]
    log(f"  {net} seed {seed}: {bpd.value:.3f} bits/dim, " + ", ".join(
        f"{name} {s:.1f} s" for name, (s, _) in timings.items()))
    return [[net, seed, train_s, name, nfe, s, bpd, distance, distance["floor"]]
            for name, (s, nfe) in timings.items()]


def table_cells(row: list) -> list:
    net, seed, train_s, name, nfe, seconds, bpd, distance, floor = row
    return [net, seed, f"{train_s:.0f}", name, nfe, f"{seconds:.2f}",
            f"{bpd.value:.3f} ± {bpd.stderr:.3f}",
            f"{distance['value']:.4f} ± {distance['stderr']:.4f}", f"{floor['value']:.4f}"]


def speedup_lines(rows: list[list]) -> list[str]:
    lines = []
    for seed in sorted({r[1] for r in rows}):
        by_name = {(r[0], r[3]): r[5] for r in rows if r[1] == seed}
        loop = by_name[("mlp", "per-dimension loop")]
        hollow = next(s for (net, _), s in by_name.items() if net == "hollow")
        vmapped = next(s for (net, name), s in by_name.items()
                       if net == "mlp" and name != "per-dimension loop")
        lines.append(f"Seed {seed}: exact held-out likelihood, hollow vs dense loop "
                     f"{loop / hollow:.1f}×, hollow vs dense vmapped {vmapped / hollow:.1f}× "
                     f"(wall clock; the two models need different dopri5 NFE, see the table).")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke run (~1 min)")
    parser.add_argument("--steps", type=int, default=2000)
    args = parser.parse_args()
    steps, seeds = (50, (0,)) if args.quick else (args.steps, (0, 1))
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        for seed in seeds:
            for net in ("mlp", "hollow"):
                out = Path(scratch) / f"{net}{seed}"
                train_s = fit(net, seed, steps, out)
                rows += evaluate(net, out, train_s, seed, with_loop=net == "mlp")
    table = markdown_table(["network", "seed", "train s", "held-out likelihood via", "NFE",
                            "seconds", "bits/dim", "energy distance", "floor"],
                           [table_cells(row) for row in rows])
    setup = (f"builtin:digits (1617 train / 180 held-out, 64 dims, 17 grey levels), flow "
             f"matching on the linear path, class-conditional, {steps} steps, batch 256, both "
             f"networks hidden 256 depth 4 (hollow: features 32); likelihoods unconditional "
             f"(null label), dopri5 at the run's tolerances, float32, one thread.")
    write_report("bench_hollow_digits", "Dense vs hollow MLP on digits (64 dims)", THREADS,
                 [setup, table, *speedup_lines(rows)])


if __name__ == "__main__":
    main()
