"""2-D Ising 16×16 at β_c: free energy per site against Kaufman's exact value.

AIS (heat-bath moves, from β = 0), thermodynamic integration over β with heat-bath sweeps, and
TI with Wolff cluster updates, each given the same budget of energy evaluations (one sweep or
one cluster update of one configuration, or one energy of one configuration, counts as one),
repeated over seeds. Prints mean |error| of βF/N, the mean reported standard error, the mean
|z| and the wall time per estimate.

    .venv/bin/python benchmarks/bench_ising_free_energy.py [--quick]
"""

from __future__ import annotations

import argparse
import statistics
import time

from common import add_ratio_column, markdown_table, pin_threads, write_report
from heatbath.energy.config import EnergyRunConfig
from heatbath.energy.estimate import estimate_energy_result
from heatbath.energy.fit import sample_arrays, result_record, run_method
from heatbath.targets.registry import build_target

SPEC = "ising2d:L=16,beta=0.4406867935"
# βF/N = −ln Z/N, from the target's exact (Kaufman) log Z per site.
EXACT_PER_SITE = -build_target(SPEC).exact.extra["log_z_per_site"]


def configs(budget: int) -> dict[str, EnergyRunConfig]:
    """Method settings that each spend about `budget` energy evaluations."""
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
    for config in out.values():
        config.target.spec = SPEC
    return out


def run(budget: int, seeds: int) -> list[dict]:
    rows = []
    for label, config in configs(budget).items():
        errors, stderrs, zs, evals, seconds = [], [], [], [], []
        for seed in range(seeds):
            config.method.seed = seed
            start = time.perf_counter()
            result, problem = run_method(config)
            report = estimate_energy_result(problem.target, result.x, result.log_w,
                                            result.energy, sample_arrays(result),
                                            result_record(result), None)
            seconds.append(time.perf_counter() - start)
            f = report["free_energy_per_site"]
            errors.append(abs(f["value"] - EXACT_PER_SITE))
            stderrs.append(f["stderr"])
            zs.append(abs(f["value"] - EXACT_PER_SITE) / f["stderr"])
            evals.append(report["energy_evals"])
        rows.append({"method": label, "energy evals": f"{statistics.mean(evals):,.0f}",
                     "mean abs error": f"{statistics.mean(errors):.2e}",
                     "mean stderr": f"{statistics.mean(stderrs):.2e}",
                     "mean |z|": f"{statistics.mean(zs):.2f}",
                     "seconds / estimate": f"{statistics.mean(seconds):.1f}"})
    add_ratio_column(rows, "mean abs error", "error / best")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--budget", type=int, default=400_000)
    parser.add_argument("--seeds", type=int, default=5)
    args = parser.parse_args()
    threads = pin_threads()
    budget, seeds = (40_000, 2) if args.quick else (args.budget, args.seeds)
    rows = run(budget, seeds)
    title = (f"Ising 16x16 at beta_c, free energy per site vs exact {EXACT_PER_SITE:.8f} "
             f"(budget {budget:,} evaluations, {seeds} seeds, 1 thread)")
    table = markdown_table(list(rows[0]), [list(row.values()) for row in rows])
    if args.quick:   # a smoke run: print only, keep the committed results
        print(f"{title}\n\n{table}")
    else:
        write_report("bench_ising_free_energy", title, threads, [table])


if __name__ == "__main__":
    main()
