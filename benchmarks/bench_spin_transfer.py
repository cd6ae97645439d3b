"""Ising transfer: one β-conditioned autoregressive model, trained once on a small lattice, drawn
at other sizes and temperatures; ESS(L, β) and βF/N against Kaufman, beside AIS.

The model (`--method autoregressive`, method.beta_range, z2 symmetry) is trained on L×L at
β ∈ [0.3, 0.5] (--beta-range; issue 9's range bench trains on [0.2, 0.8]); then, at each
L ∈ {8, 16, 32} and β ∈ {0.3, β_c, 0.5} (--sizes, --betas), n weighted lattices are
drawn from it — what `heatbath sample RUN --target ising2d:L=,beta= --out NEW` does — and βF/N
is estimated by importance weights. AIS (heat-bath moves from β = 0, the settings of
bench_ising_free_energy.py) estimates the same βF/N at two budgets: the draw's own evaluations
(the marginal cost of a transfer) and the draw's plus the whole training's (the model's cost
charged to every cell). One energy of one configuration, or one sweep of one, counts as one
evaluation, whatever the lattice size.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_spin_transfer.py [--quick]
        [--train-L 16] [--beta-range 0.2,0.8] [--betas 0.2,0.3,c,0.6] [--sizes 16]

Issue 9's range bench (one model within 1e-4 at every β of [0.2, 0.8]; 59 min on one core):
    --train-L 8 --steps 12000 --warm-start 300 --beta-range 0.2,0.8 --sizes 8
    --betas 0.2,0.3,0.4,c,0.5,0.6,0.7,0.8 --samples 100000 --translations 2
"""

from __future__ import annotations

import argparse
import time

import torch

from common import log, markdown_table, pin_threads, write_report
from heatbath.energy.config import EnergyRunConfig
from heatbath.energy.estimate import estimate_energy, estimate_energy_result
from heatbath.energy.fit import result_record, run_method, sample_arrays
from heatbath.energy.methods.spin_models import weighted_draw
from heatbath.estimators.tail import weight_tail_diagnostic
from heatbath.energy.results import EnergyResult
from heatbath.targets.ising import K_CRITICAL, Ising2D

BETA_RANGE = (0.3, 0.5)
BETAS = (0.3, K_CRITICAL, 0.5)


def training_config(L: int, steps: int, warm_start: int = 0,
                    beta_range: tuple[float, float] = BETA_RANGE,
                    translations: int = 1) -> EnergyRunConfig:
    config = EnergyRunConfig()
    config.target.spec = f"ising2d:L={L},beta=0.4"
    config.method.name, config.method.samples = "autoregressive", 100
    config.method.beta_range = list(beta_range)
    config.autoregressive.steps, config.autoregressive.z2 = steps, True
    config.autoregressive.warm_start = warm_start
    config.autoregressive.translations = translations
    return config


def train(config: EnergyRunConfig, L: int):
    steps = config.autoregressive.steps
    started = time.perf_counter()
    result, _ = run_method(config)
    seconds = time.perf_counter() - started
    d = result.diagnostics
    log(f"trained on {L}x{L}: {steps} steps, {seconds:.0f} s, training ESS "
        f"{d['final_training_ess']:.3f}")
    warm = d.get("warm_start", {}).get("energy_evals", 0)
    return result.model, {"seconds": seconds, "evals": d["training_energy_evals"] + warm,
                          "final_ess": d["final_training_ess"]}


def transferred(model, lattice: Ising2D, n: int, seed: int) -> dict:
    """βF/N of `lattice` from n weighted draws of the model (what a transfer run estimates)."""
    lattice.reset_counters()
    drawn = weighted_draw(model, lattice, n, torch.Generator().manual_seed(seed), torch.float64)
    result = EnergyResult(drawn["x"], drawn["log_w"], drawn["energy"], True,
                          diagnostics={"energy_evals": lattice.energy_evals})
    found = estimate_energy(lattice, result.x, result.log_w, result.energy,
                            sample_arrays(result), result_record(result))
    tail = weight_tail_diagnostic(drawn["log_w"])
    return {"f": found.free_energy_per_site, "ess": found.ess.value, "evals": found.energy_evals,
            "k_hat": tail.k_hat}


def ais(lattice: Ising2D, budget: int, seed: int) -> dict:
    """AIS with heat-bath sweeps from β = 0, 256 walkers, about `budget` evaluations."""
    config = EnergyRunConfig()
    config.target.spec = f"ising2d:L={lattice.L},beta={lattice.beta!r}"
    config.method.name, config.method.kernel, config.method.schedule = "ais", "heatbath", "linear"
    config.method.samples, config.method.seed = 256, seed
    config.method.steps = max(10, budget // (2 * config.method.samples))
    result, problem = run_method(config)
    report = estimate_energy_result(problem.target, result.x, result.log_w, result.energy,
                                    sample_arrays(result), result_record(result), None)
    f = report["free_energy_per_site"]
    return {"value": f["value"], "stderr": f["stderr"], "evals": report["energy_evals"]}


def exact_free_energy(lattice: Ising2D) -> float:
    return -lattice.exact.log_z / lattice.sites


def cell(model, L: int, beta: float, n: int, training_evals: int, seed: int) -> dict:
    lattice = Ising2D(L=L, beta=beta)
    exact = exact_free_energy(lattice)
    started = time.perf_counter()
    ar = transferred(model, lattice, n, seed)
    seconds = time.perf_counter() - started
    cheap = ais(lattice, ar["evals"], seed)
    charged = ais(lattice, ar["evals"] + training_evals, seed)
    f = ar["f"]
    log(f"L={L} beta={beta:.4f}: AR error {f.value - exact:+.2e} +- {f.stderr:.1e} "
        f"(ESS {ar['ess']:.3f}, {seconds:.0f} s); AIS {cheap['value'] - exact:+.2e}, "
        f"{charged['value'] - exact:+.2e}")
    return {"L": L, "beta": beta, "exact": exact, "error": f.value - exact, "stderr": f.stderr,
            "z": (f.value - exact) / f.stderr, "ess": ar["ess"], "evals": ar["evals"],
            "k_hat": ar["k_hat"],
            "seconds": seconds, "ais": cheap, "ais_charged": charged}


def comparison_table(cells: list[dict]) -> str:
    headers = ["L", "beta", "exact beta F/N", "AR error", "AR stderr", "AR z", "AR ESS", "AR k̂",
               "AR evals", "AR draw s", "AIS error (same evals)", "AIS stderr",
               "AIS error (+ training evals)", "AIS stderr ", "AIS evals"]
    rows = [[c["L"], f"{c['beta']:.4f}", f"{c['exact']:.8f}", f"{c['error']:+.2e}",
             f"{c['stderr']:.2e}", f"{c['z']:+.2f}", f"{c['ess']:.4f}", f"{c['k_hat']:.2f}",
             f"{c['evals']:,}",
             f"{c['seconds']:.0f}", f"{c['ais']['value'] - c['exact']:+.2e}",
             f"{c['ais']['stderr']:.2e}", f"{c['ais_charged']['value'] - c['exact']:+.2e}",
             f"{c['ais_charged']['stderr']:.2e}", f"{c['ais_charged']['evals']:,}"]
            for c in cells]
    return markdown_table(headers, rows)


def ess_table(cells: list[dict], sizes, betas) -> str:
    """ESS fraction, rows L, columns β."""
    by_cell = {(c["L"], c["beta"]): c["ess"] for c in cells}
    rows = [[f"{L}x{L}"] + [f"{by_cell[L, b]:.4f}" for b in betas] for L in sizes]
    return markdown_table(["L \\ beta"] + [f"{b:.4f}" for b in betas], rows)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--train-L", type=int, default=8)
    parser.add_argument("--steps", type=int, help="training steps (default 3000; quick 50)")
    parser.add_argument("--samples", type=int, help="draws per cell (default 10000; quick 500)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--warm-start", type=int, default=0,
                        help="autoregressive.warm_start steps on heat-bath chains' lattices")
    parser.add_argument("--beta-range", default=f"{BETA_RANGE[0]},{BETA_RANGE[1]}",
                        help="the trained range LO,HI (method.beta_range)")
    parser.add_argument("--betas", help="comma-separated betas to draw at (default 0.3, "
                                        "beta_c, 0.5); 'c' stands for beta_c")
    parser.add_argument("--sizes", help="comma-separated L to draw at (default 8,16,32)")
    parser.add_argument("--translations", type=int, default=1,
                        help="autoregressive.translations (k: q averaged over k×k shifts)")
    args = parser.parse_args()
    beta_range = tuple(float(b) for b in args.beta_range.split(","))
    betas = (tuple(K_CRITICAL if b == "c" else float(b) for b in args.betas.split(","))
             if args.betas else BETAS)
    threads = pin_threads()
    sizes = (tuple(int(L) for L in args.sizes.split(",")) if args.sizes
             else (8, 16) if args.quick else (8, 16, 32))
    steps = args.steps or (50 if args.quick else 3000)
    n = args.samples or (500 if args.quick else 10000)
    started = time.perf_counter()
    config = training_config(args.train_L, steps, args.warm_start, beta_range,
                             args.translations)
    model, training = train(config, args.train_L)
    net = config.autoregressive
    cells = [cell(model, L, beta, n, training["evals"], args.seed)
             for L in sizes for beta in betas]
    total = time.perf_counter() - started
    title = (f"Ising transfer: one beta-conditioned autoregressive model trained on "
             f"{args.train_L}x{args.train_L}, drawn at L = {', '.join(map(str, sizes))} "
             f"(1 thread)")
    header = (f"Trained once: `--method autoregressive` on ising2d L={args.train_L} with "
              f"method.beta_range={beta_range[0]},{beta_range[1]}, autoregressive.z2=true, "
              f"autoregressive.translations={net.translations}, net of {net.layers} layers, "
              f"{net.channels} channels, kernel {net.kernel}, {steps} steps of 256 lattices, "
              f"lr 1e-3, warm start {args.warm_start} steps (method.temperatures chains' "
              f"lattices; 0: none) — {training['evals']:,} energy evaluations of "
              f"{args.train_L}x{args.train_L} lattices in {training['seconds']:.0f} s; final "
              f"training ESS {training['final_ess']:.3f}. Then {n:,} weighted draws per cell "
              f"(seed {args.seed}; one estimate per cell, its stderr from the weights). AIS: "
              f"256 walkers, heat-bath sweeps, linear beta grid from 0, at the draw's "
              f"evaluations and at the draw's plus the training's. Errors are estimate − "
              f"Kaufman's exact beta F/N; z = error / stderr (with a tiny ESS the stderr itself "
              f"is unreliable). AR k̂: Pareto shape of the largest importance weights (PSIS, "
              f"Vehtari et al. 2024; `estimators.tail`): above 0.7 the weights' variance is "
              f"effectively infinite and neither the estimate nor its stderr can be trusted. "
              f"Whole script: {total / 60:.1f} min.")
    sections = [header, "## ESS fraction of the transferred draws, ESS(L, beta)",
                ess_table(cells, sizes, betas), "## beta F/N against Kaufman, beside AIS",
                comparison_table(cells)]
    if args.quick:   # a smoke run: print only, keep the committed results
        print("\n\n".join([title, *sections]))
    else:
        suffix = "" if args.train_L == 8 else f"_train{args.train_L}"
        if beta_range != BETA_RANGE:
            suffix += f"_range{beta_range[0]:g}-{beta_range[1]:g}"
        if args.translations > 1:
            suffix += f"_translations{args.translations}"
        write_report(f"bench_spin_transfer{suffix}", title, threads, sections)


if __name__ == "__main__":
    main()
