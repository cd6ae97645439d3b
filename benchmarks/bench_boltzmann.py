"""ManyWell-32 and GMM-40: log Z accuracy against energy evaluations, every method in one run.

ManyWell-32 (FAB convention, log Z = 164.6956753): mean absolute log Z error over 10 estimates
of 2000 samples each (FAB reports 0.0316 ± 0.0042). The forward-KL flow row trains on exact
target samples, which a real problem does not have: it shows what mode coverage is worth; the
SMC-particle row gets its forward-KL data from an SMC run on the energy alone (evaluations
included). The FAB rows train the flow on the α = 2 divergence with AIS towards p²/q from the
energy alone (replay buffer; GMM-40 also without). A learned sampler (flow, snf) is trained once
and then draws the 10 estimates; AIS and SMC run 10 times. GMM-40 (log Z = 0): modes recovered
(components whose mean has a sample within 2 std), reverse ESS and log Z error.

    .venv/bin/python benchmarks/bench_boltzmann.py [--target manywell32|gmm40|both] [--quick]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from common import add_ratio_column, markdown_table, pin_threads, write_report
from heatbath.energy.config import EnergyRunConfig
from heatbath.energy.fit import run_method
from heatbath.core.estimate import Estimate
from heatbath.estimators.importance import kish_ess
from heatbath.flows import importance_sample
from heatbath.targets.benchmarks import GMM_STD, fab_gmm_means
from heatbath.targets.registry import build_target

ESTIMATES, SAMPLES = 10, 2000


def method_configs(target: str, quick: bool) -> dict[str, EnergyRunConfig]:
    steps = 40 if quick else 400
    flow_steps = 100 if quick else 3000
    out = {}
    for label, name in (("AIS (HMC)", "ais"), ("SMC (HMC)", "smc")):
        c = EnergyRunConfig()
        c.method.name, c.method.samples, c.method.steps = name, SAMPLES, steps
        c.method.kernel, c.method.n_leapfrog = "hmc", 3
        out[label] = c
    learned = (("flow (reverse KL)", "flow", "reverse_kl"),
               ("flow (forward KL on exact samples)", "flow", "forward_kl"),
               ("flow (forward KL on SMC particles)", "flow", "smc"),
               ("SNF (flow + Langevin)", "snf", "reverse_kl"))
    for label, name, objective in learned:
        c = EnergyRunConfig()
        c.method.name, c.method.samples = name, SAMPLES
        c.flow.steps, c.flow.layers, c.flow.hidden = flow_steps, 8, 128
        c.flow.objective = "forward_kl" if objective == "smc" else objective
        if objective == "smc":        # energy only: SMC particles replace exact samples
            c.flow.training_samples = "smc"
            c.method.steps, c.method.kernel, c.method.n_leapfrog = steps, "hmc", 3
        c.method.dtype = "float32"
        out[label] = c
    fab_variants = (("flow (FAB: α = 2 + AIS, replay buffer)", 20000),
                    ("flow (FAB without buffer)", 0))
    # Without a buffer FAB costs ~10 min of training on ManyWell-32: shown on GMM-40 only.
    for label, buffer in fab_variants if target == "gmm40" else fab_variants[:1]:
        c = EnergyRunConfig()
        c.method.name, c.method.samples, c.method.dtype = "flow", SAMPLES, "float32"
        c.flow.steps, c.flow.layers, c.flow.hidden = (30 if quick else 1500), 8, 128
        c.flow.objective, c.flow.batch_size, c.flow.fab_steps = "fab", 128, 4
        c.flow.fab_buffer, c.flow.fab_updates = buffer, 4
        c.method.kernel, c.method.n_leapfrog = "hmc", 3
        out[label] = c
    for c in out.values():
        c.target.spec = target
    return out


def estimates(config: EnergyRunConfig) -> tuple[list[tuple[Estimate, Estimate, torch.Tensor]],
                                                 int, float]:
    """Ten (log Z, ESS, samples) triples, the energy evaluations per estimate, seconds per one."""
    start = time.perf_counter()
    found, evals = [], []
    if config.method.name in ("flow", "snf"):
        result, problem = run_method(config)
        trained = problem.target.energy_evals
        for k in range(ESTIMATES):
            before = problem.target.energy_evals
            drawn = importance_sample(result.model, problem.target, SAMPLES,
                                      torch.Generator().manual_seed(100 + k))
            found.append((drawn.log_z(), drawn.ess(), drawn.x))
            evals.append(problem.target.energy_evals - before)
        per_estimate = trained // ESTIMATES + int(statistics.mean(evals))
    else:
        for k in range(ESTIMATES):
            config.method.seed = k
            result, problem = run_method(config)
            lw = result.log_w.numpy()
            found.append((result.log_z, kish_ess(lw), result.x))
            evals.append(result.diagnostics["energy_evals"])
        per_estimate = int(statistics.mean(evals))
    return found, per_estimate, (time.perf_counter() - start) / ESTIMATES


def modes_recovered(x: torch.Tensor) -> int:
    """GMM-40 components whose mean has a sample within 2 standard deviations."""
    means = fab_gmm_means().to(x.dtype)
    distance = torch.cdist(means, x.reshape(len(x), -1)[:, :2])
    return int((distance.min(dim=1).values < 2 * GMM_STD).sum())


def run(target_spec: str, quick: bool) -> list[dict]:
    target = build_target(target_spec)
    exact = target.exact.log_z
    rows = []
    for label, config in method_configs(target_spec, quick).items():
        found, evals, seconds = estimates(config)
        errors = [abs(f[0].value - exact) for f in found]
        row = {"method": label, "energy evals / estimate": f"{evals:,}",
               "mean abs log Z error": f"{statistics.mean(errors):.4f}",
               "± (sem)": f"{statistics.stdev(errors) / ESTIMATES ** 0.5:.4f}",
               "mean reported stderr": f"{statistics.mean(f[0].stderr for f in found):.4f}",
               "reverse ESS": f"{statistics.mean(f[1].value for f in found):.3f}",
               "s / estimate": f"{seconds:.1f}"}
        if target.name == "gmm40":
            row["modes (of 40)"] = modes_recovered(found[-1][2])
        rows.append(row)
    add_ratio_column(rows, "mean abs log Z error", "error / best")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--target", default="both", choices=["manywell32", "gmm40", "both"])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    threads = pin_threads()
    targets = ["manywell32", "gmm40"] if args.target == "both" else [args.target]
    for name in targets:
        rows = run(name, args.quick)
        title = (f"{name}: log Z over {ESTIMATES} estimates of {SAMPLES} samples "
                 f"(exact {build_target(name).exact.log_z}; 1 thread)")
        if name == "manywell32":
            title += "; FAB reports mean abs error 0.0316 ± 0.0042"
        table = markdown_table(list(rows[0]), [list(row.values()) for row in rows])
        if args.quick:   # a smoke run: print only, keep the committed results
            print(f"{title}\n\n{table}")
        else:
            write_report(f"bench_boltzmann_{name}", title, threads, [table])


if __name__ == "__main__":
    main()
