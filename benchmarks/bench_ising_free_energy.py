"""2-D Ising L×L: free energy per site against Kaufman's exact value, at equal evaluation budget.

Rows: AIS (heat-bath moves, from β = 0), thermodynamic integration over β with heat-bath sweeps
and with Wolff cluster updates — each repeated over seeds — and the spin Boltzmann generators
with an exact log q (issue 9): `autoregressive` (masked convolutions; q averaged over s → −s
and the 2×2 half-lattice translations; warm started from heatbath's own heat-bath chains) and, with --masked, `masked` (the data half's
masked lattice model). A learned row spends the same budget as the others: warm-start sweeps,
training batches and the final weighted draw are all counted (one sweep or one cluster update
of one configuration, or one energy of one configuration, counts as one evaluation).
Prints mean |error| of βF/N, the mean reported standard error, the mean |z|, the ESS and the
Pareto k̂ of the weights (importance-weighted rows) and the wall time per estimate.

    .venv/bin/python benchmarks/bench_ising_free_energy.py [--beta B] [--L 16] [--budget N]
        [--models] [--masked] [--model-seeds N] [--set autoregressive.layers=4 ...]
        [--no-baselines] [--quick]

--set and --no-baselines are for exploration: the table is printed, not written.
"""

from __future__ import annotations

import argparse
import statistics
import time

from common import add_ratio_column, log, markdown_table, pin_threads, write_report
from heatbath.core.settings import apply_overrides
from heatbath.energy.config import EnergyRunConfig
from heatbath.energy.estimate import estimate_energy_result
from heatbath.energy.fit import sample_arrays, result_record, run_method
from heatbath.targets.ising_exact import K_CRITICAL
from heatbath.targets.registry import build_target

WARM_START_SAMPLES = 4096
# the learned rows' q is averaged over the 2×2 half-lattice translations (SECTION.translations):
# at 10⁶ evaluations it took the autoregressive row from ESS 0.014 to 0.12 (one seed each)
TRANSLATIONS = 2
# the learned rows' final weighted draw: its share of the budget
DRAW_SHARE = 0.15


def baseline_configs(budget: int) -> dict[str, EnergyRunConfig]:
    """AIS and TI settings that each spend about `budget` energy evaluations."""
    out = {}
    ais = EnergyRunConfig()
    ais.method.name, ais.method.kernel, ais.method.schedule = "ais", "heatbath", "linear"
    ais.method.samples = 256
    ais.method.steps = max(10, budget // (2 * ais.method.samples))
    out["AIS (heat bath)"] = ais
    for label, kernel in (("TI (heat bath)", "heatbath"), ("TI (Wolff)", "wolff")):
        ti = EnergyRunConfig()
        ti.method.name, ti.method.kernel = "ti", kernel
        ti.method.chains, ti.method.temperatures, ti.method.burn_in = 16, 21, 20
        per_temperature = budget // (ti.method.chains * ti.method.temperatures)
        ti.method.steps = max(20, per_temperature // 2 - ti.method.burn_in)
        out[label] = ti
    return out


def model_config(name: str, budget: int, batch_size: int) -> EnergyRunConfig:
    """A spin model whose warm start, training and final draw add up to about `budget`."""
    config = EnergyRunConfig()
    config.method.name, config.method.chains, config.method.burn_in = name, 64, 100
    section = getattr(config, name)
    section.z2, section.batch_size, section.translations = True, batch_size, TRANSLATIONS
    section.warm_start, section.warm_start_samples = 300, WARM_START_SAMPLES
    warm = config.method.chains * (config.method.burn_in + WARM_START_SAMPLES // 64)
    config.method.samples = int(DRAW_SHARE * budget)
    section.steps = max(1, (budget - warm - config.method.samples) // batch_size)
    return config


def run_row(label: str, config: EnergyRunConfig, spec: str, exact: float,
            seeds: int) -> dict:
    errors, stderrs, zs, evals, seconds, ess, k_hat = [], [], [], [], [], [], []
    config.target.spec = spec
    for seed in range(seeds):
        config.method.seed = seed
        start = time.perf_counter()
        result, problem = run_method(config)
        report = estimate_energy_result(problem.target, result.x, result.log_w,
                                        result.energy, sample_arrays(result),
                                        result_record(result), None)
        seconds.append(time.perf_counter() - start)
        f = report["free_energy_per_site"]
        errors.append(abs(f["value"] - exact))
        stderrs.append(f["stderr"])
        zs.append(abs(f["value"] - exact) / f["stderr"])
        evals.append(report["energy_evals"])
        if result.weighted and "tail" in report:
            ess.append(report["ess"]["value"])
            k_hat.append(report["tail"]["k_hat"])
        log(f"{label} seed {seed}: error {errors[-1]:.2e} ± {stderrs[-1]:.2e}, "
            f"{seconds[-1]:.0f} s")
    return {"method": label, "seeds": seeds, "energy evals": f"{statistics.mean(evals):,.0f}",
            "mean abs error": f"{statistics.mean(errors):.2e}",
            "mean stderr": f"{statistics.mean(stderrs):.2e}",
            "mean |z|": f"{statistics.mean(zs):.2f}",
            "ESS (fraction)": f"{statistics.mean(ess):.3f}" if ess else "—",
            "Pareto k̂": f"{statistics.mean(k_hat):.2f}" if k_hat else "—",
            "seconds / estimate": f"{statistics.mean(seconds):.0f}"}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--L", type=int, default=16)
    parser.add_argument("--beta", type=float, default=K_CRITICAL)
    parser.add_argument("--budget", type=int, default=1_000_000)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--models", action="store_true", help="add the autoregressive row")
    parser.add_argument("--masked", action="store_true", help="add the masked row")
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--model-seeds", type=int, default=1,
                        help="seeds of each learned row (about 50 min each at 16x16)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="a setting of the learned rows (e.g. autoregressive.layers=4)")
    parser.add_argument("--no-baselines", action="store_true",
                        help="only the learned rows (AIS and TI take about 25 minutes)")
    args = parser.parse_args()
    names = (["autoregressive"] if args.models else []) + (["masked"] if args.masked else [])
    unused = [item for item in args.set if item.split(".")[0] not in names]
    if unused:
        parser.error(f"--set {unused[0]}: only settings of the learned rows run "
                     f"({', '.join(names) or 'none: add --models or --masked'})")
    threads = pin_threads()
    budget, seeds = (40_000, 2) if args.quick else (args.budget, args.seeds)
    spec = f"ising2d:L={args.L},beta={args.beta:.10f}"
    exact = -build_target(spec).exact.extra["log_z_per_site"]   # βF/N = −ln Z / N
    rows = [] if args.no_baselines else [
        run_row(label, config, spec, exact, seeds)
        for label, config in baseline_configs(budget).items()]
    for name in names:
        config = model_config(name, budget, args.batch_size)
        own = [item for item in args.set if item.startswith(name + ".")]
        apply_overrides(config, own)
        extra = "".join(", " + item for item in own)
        label = (f"{name} (z2, translations {getattr(config, name).translations}, warm "
                 f"start, {config.method.samples:,} draws{extra})")
        rows.append(run_row(label, config, spec, exact, args.model_seeds))
    add_ratio_column(rows, "mean abs error", "error / best")
    title = (f"Ising {args.L}x{args.L} at beta={args.beta:.6g}, free energy per site vs "
             f"exact {exact:.8f} (budget {budget:,} evaluations, 1 thread)")
    table = markdown_table(list(rows[0]), [list(row.values()) for row in rows])
    if args.quick or args.set or args.no_baselines:   # print only, keep the committed table
        print(f"{title}\n\n{table}")
        return
    suffix = "" if abs(args.beta - K_CRITICAL) < 1e-9 and args.L == 16 else \
        f"_L{args.L}_beta{args.beta:g}"
    write_report(f"bench_ising_free_energy{suffix}", title, threads, [table])


if __name__ == "__main__":
    main()
