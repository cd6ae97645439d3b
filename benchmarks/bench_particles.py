"""Boltzmann generators for particles (DW4, LJ13): every method on the zero-CoM subspace, side
by side in one run, against a long-MCMC reference.

Columns (pinned definitions):
* ESS: Kish (Σw)² / (n Σw²) as a fraction of n, on n = --samples (≥ 10⁴ by default) samples;
  equal-weight methods have no importance weights and show "—".
* log Z: ln ∫ exp(−U) over the (P−1)·d-dimensional zero-centre-of-mass subspace (orthonormal
  coordinates), ± its standard error; the same quantity for every row.
* |Δ⟨U⟩|/σ: the method's reweighted ⟨U⟩ against the reference's, in units of their combined
  standard error (≤ 3 is agreement).
* energy W2: exact 1-D Wasserstein-2 (not squared) between the energies of the method's
  unweighted samples and of the reference samples, in kT.
* energy W2 reweighted: the same W2 with the method's samples as the self-normalised weighted
  empirical distribution Σ w_i δ(U_i) (what its unbiased estimates average over).
* distance W2: the same between the pooled interparticle-distance histograms (unweighted).
* floors (in the title): the same two W2s between the reference's own halves (its first half
  of chains against the second, so the halves are independent): what sampling noise alone
  gives at half the reference's size; a model's W2 cannot be read below it.
* energy evals: configurations whose energy was computed (training data, annealing, weights;
  iDEM: K per regression target of its Monte-Carlo score).

The reference is HMC: `REFERENCE_CHAINS` chains of `REFERENCE_STEPS` steps after burn-in,
thinned by 10; its ⟨U⟩ error bar comes from the spread of the chain means.

    .venv/bin/python benchmarks/bench_particles.py [--target dw4|lj13|lj13_doubled]
        [--samples N] [--skip cnf,...] [--report NAME] [--threads T] [--quick]
"""

from __future__ import annotations

import argparse
import time

from common import log, markdown_table, pin_threads, write_report
from heatbath.core.settings import set_value
from heatbath.energy.config import EnergyRunConfig
from heatbath.energy.fit import run_method
from heatbath.estimators import chain_mean_estimate, distance_w2, energy_w2, kish_ess
from heatbath.estimators.importance import self_normalized

REFERENCE_CHAINS, REFERENCE_STEPS = 128, 3000
TRAINING_BUDGET = 500_000   # energy evaluations of FAB's, NETS's and CMCD's training
# NETS / CMCD: the EGNN drift at the CNF's size class, 32 Langevin steps from the base (a draw
# of 10⁴ samples then costs 330k evaluations)
TRANSPORT = {"transport.hidden": 32, "transport.depth": 2, "transport.time_steps": 32,
             "transport.steps": 1_000_000}
# iDEM: its Monte-Carlo score costs K = 100 evaluations per regression target, so it gets its
# own budget, 100x the others' (7812 gradient steps of 128 points; its paper's DW4 run used
# K = 1000); its weights are those of the CNF row's flow refit to its samples
IDEM_BUDGET = 100_000_000


# LJ13 (13 particles: 169 pairs per configuration against DW4's 16) draws the CNF by Heun's map,
# its log q the map's exact density (dopri5 needed 260 evaluations of the stiff field at 1e-4:
# ~2 h for 10⁴ samples on one thread). One-thread trials, 10⁴ samples: EGNN 16 × 2, 3000 steps
# on 64 × 200 draws, 40 NFE: ESS 0.025 ± 0.011, reweighted energy W2 1.24, 1412 s; 32 × 3, 20
# NFE, same data: 0.030 ± 0.008, 0.58, 1276 s; 32 × 3, 20 NFE, 6000 steps on 64 × 400 draws:
# 0.036 ± 0.015, 0.51, 1234 s.
CLUSTER_CNF = {"cnf.sampler": "heun", "cnf.nfe": 20, "cnf.hidden": 32, "cnf.depth": 3,
               "cnf.steps": 6000, "method.steps": 400}
CLUSTER_SETTINGS = {"cnf": CLUSTER_CNF,
                    # NETS's PINN loss with the exact divergence (36 products through the
                    # EGNN per state) ran > 50 min on one thread; Hutchinson's two: 6 min
                    "nets": {"transport.hidden": 16, "transport.divergence": "hutchinson"},
                    "cmcd": {"transport.hidden": 16},
                    "idem": {**{k: v for k, v in CLUSTER_CNF.items() if k.startswith("cnf.")},
                             "idem.sigma_max": 2.0}}   # its refit is the CNF
# DW4's CNF: an EGNN of 64 x 4 trained 18000 steps on 64 chains of 1200 MCMC steps. One-thread
# trials (2000 samples; raw energy W2 ± bootstrap s.e., ESS): 32 x 3, 9000 steps on 64 x 600
# draws: 0.99 ± 0.15, 0.858; 64 x 4, same: 0.39 ± 0.09, 0.949; 64 x 4, 18000 steps on 64 x 1200:
# 0.12 ± 0.04, 0.973 in 680 s; 27000 on 64 x 1800: 0.17 ± 0.06 (the high-energy tail rules raw W2);
# the 18000-step flow drawn at rtol 1e-5, not 1e-4: 0.12, so ODE error is not the tail. In 10⁴
# of its draws the top sits too high (energy quantiles 0.99 / 0.999: -16.2 / -11.8 against the
# reference's -17.0 / -14.0; without the 30 highest energies raw W2 is 0.080, not 0.171), and
# drawing its base at scale 0.9 (exact log q of the scaled Gaussian) gave ESS 0.68, raw W2 0.20:
# the tail is the flow's, not the base's. iDEM's refit is the same flow
DW4_CNF = {"cnf.steps": 18000, "cnf.hidden": 64, "cnf.depth": 4}
DW4_SETTINGS = {"cnf": {**DW4_CNF, "method.steps": 1200}, "idem": DW4_CNF}
LENGTH_KEYS = ("cnf.steps", "method.steps")   # what --quick does not take from PER_TARGET
PER_TARGET = {"dw4": DW4_SETTINGS, "lj13": CLUSTER_SETTINGS, "lj13_doubled": CLUSTER_SETTINGS}


def config(target: str, method: str, settings: dict) -> EnergyRunConfig:
    c = EnergyRunConfig()
    c.target.spec, c.method.name = target, method
    for key, value in settings.items():
        set_value(c, key, value)
    return c


def methods(target: str, quick: bool) -> dict[str, tuple[str, dict]]:
    """label -> (method, settings) for `target`: the shared table with its PER_TARGET changes."""
    own, table = PER_TARGET[target], {}
    for label, (method, settings) in shared_methods(quick).items():
        changes = own.get(method, {})
        if quick:   # a smoke run keeps its own short training
            changes = {k: v for k, v in changes.items() if k not in LENGTH_KEYS}
        settings = {**settings, **changes}
        if "cnf.sampler" in settings:   # say whose density weights the row
            label = label[:-1] + f"; {settings['cnf.sampler']} map, {settings['cnf.nfe']} NFE)"
        table[label] = (method, settings)
    return table


def shared_methods(quick: bool) -> dict[str, tuple[str, dict]]:
    cnf_steps, flow_steps, anneal = (100, 100, 20) if quick else (3000, 3000, 200)
    cnf = {"cnf.steps": cnf_steps, "cnf.coupling": "ot", "cnf.rtol": 1e-4, "cnf.atol": 1e-4,
           "method.chains": 64, "method.steps": 200, "method.burn_in": 200}
    # FAB as bench_transport runs it (α = 2 + AIS with HMC, replay buffer), capped by evaluations
    fab = {"flow.objective": "fab", "flow.layers": 8, "flow.hidden": 64, "flow.batch_size": 128,
           "flow.fab_steps": 4, "flow.fab_updates": 16, "flow.steps": 100_000,
           "method.kernel": "hmc", "method.n_leapfrog": 3, "method.dtype": "float32",
           "method.budget": 20_000 if quick else TRAINING_BUDGET}
    transport = {**TRANSPORT, "method.budget": 20_000 if quick else TRAINING_BUDGET}
    return {
        "CNF (EGNN, flow matching on heatbath's MCMC, OT)": ("cnf", cnf),
        "coupling flow on flattened CoM-free coordinates (reverse KL)":
            ("flow", {"flow.steps": flow_steps, "flow.hidden": 64, "method.dtype": "float32"}),
        "coupling flow on flattened CoM-free coordinates (FAB, energy only)": ("flow", fab),
        "NETS (EGNN drift, PINN loss, exact path weights)": ("nets", transport),
        "CMCD (EGNN drift, log-variance loss, exact path weights)": ("cmcd", transport),
        "iDEM (EGNN score, energy only; weights: the CNF refit to its samples)":
            ("idem", {**{k: v for k, v in cnf.items() if k.startswith("cnf.")},
                      "method.budget": 20_000 if quick else IDEM_BUDGET,
                      "idem.steps": 20 if quick else 100_000}),
        "AIS (HMC)": ("ais", {"method.steps": anneal, "method.kernel": "hmc",
                              "method.n_leapfrog": 3}),
        "SMC (HMC)": ("smc", {"method.steps": anneal, "method.kernel": "hmc",
                              "method.n_leapfrog": 3}),
    }


def reference(target: str, quick: bool):
    steps = 300 if quick else REFERENCE_STEPS
    c = config(target, "mcmc", {"method.chains": REFERENCE_CHAINS, "method.steps": steps,
                                "method.burn_in": 500, "method.thin": 10,
                                "method.kernel": "hmc"})
    result, _ = run_method(c)
    energy_mean = chain_mean_estimate(result.energy_traces.numpy())
    return result.x, result.energy, energy_mean


def floors(ref) -> tuple[float, float]:
    """Energy and distance W2 between the reference's two halves of chains (chain-major rows)."""
    x, energy = ref[0], ref[1]
    half = len(energy) // 2
    step = max(1, half // 5000)
    return (energy_w2(energy[:half], energy[half:]).value,
            distance_w2(x[:half:step], x[half::step]).value)


def row(label: str, result, seconds: float, evals: int, ref) -> dict:
    ref_x, ref_energy, ref_mean = ref
    lw = result.log_w.double().numpy()
    weighted = result.weighted
    energy = self_normalized(result.energy.double().numpy(), lw)
    z = abs(energy.value - ref_mean.value) / (energy.stderr ** 2 + ref_mean.stderr ** 2) ** 0.5
    log_z = result.log_z
    if log_z is None and weighted:
        from heatbath.estimators import log_z_importance
        log_z = log_z_importance(lw)
    ess = kish_ess(lw) if weighted else None
    return {
        "method": label, "n": len(lw),
        "ESS": "—" if ess is None else f"{ess.value:.3f} ± {ess.stderr:.3f}",
        "log Z (subspace)": "—" if log_z is None else f"{log_z.value:.3f} ± {log_z.stderr:.3f}",
        "⟨U⟩": f"{energy.value:.3f} ± {energy.stderr:.3f}", "|Δ⟨U⟩|/σ": f"{z:.1f}",
        "energy W2": f"{energy_w2(result.energy, ref_energy).value:.3f}",
        "energy W2 reweighted": "—" if not weighted else
        f"{energy_w2(result.energy, ref_energy, log_weights_a=lw).value:.3f}",
        "distance W2": f"{distance_w2(result.x, ref_x[::max(1, len(ref_x) // 5000)]).value:.4f}",
        "energy evals": evals, "wall s": f"{seconds:.0f}",
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--target", default="dw4", choices=["dw4", "lj13", "lj13_doubled"])
    parser.add_argument("--samples", type=int, help="samples per method (default 10⁴; "
                        "--quick: 500)")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--report", help="table file name without .md (default "
                        "bench_particles_TARGET): a run of some rows beside another table")
    parser.add_argument("--skip", default="",
                        help="comma-separated methods to leave out (cnf, flow, nets, cmcd, idem, "
                             "ais, smc; flow drops both coupling-flow rows)")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads (1 for the side-by-side tables; 2 to time a row "
                             "against a goal stated for 2 cores)")
    args = parser.parse_args()
    threads = pin_threads(args.threads)
    skipped = set(filter(None, args.skip.split(",")))
    known = {method for method, _ in shared_methods(True).values()}
    if skipped - known:
        parser.error(f"--skip names no method: {', '.join(sorted(skipped - known))}; "
                     f"choose from {', '.join(sorted(known))}")
    log("reference MCMC ...")
    ref = reference(args.target, args.quick)
    table = {label: entry for label, entry in methods(args.target, args.quick).items()
             if entry[0] not in skipped}
    samples = args.samples or (500 if args.quick else 10000)
    rows = []
    for label, (method, settings) in table.items():
        log(f"{label} ...")
        started = time.perf_counter()
        result, problem = run_method(config(args.target, method,
                                            {**settings, "method.samples": samples}))
        rows.append(row(label, result, time.perf_counter() - started,
                        problem.energy_evals(), ref))
    energy_floor, distance_floor = floors(ref)
    title = (f"{args.target}: Boltzmann generators on the zero-CoM subspace, {samples} samples "
             f"each, against HMC reference <U> = {ref[2].value:.3f} ± {ref[2].stderr:.3f} "
             f"({len(ref[1])} samples; floors between its halves: energy W2 {energy_floor:.3f}, "
             f"distance W2 {distance_floor:.4f}; {threads} thread(s))"
             + (f"; left out: {args.skip}" if skipped else ""))
    text = markdown_table(list(rows[0]), [list(r.values()) for r in rows])
    if args.quick:
        print(f"{title}\n\n{text}")
    else:
        write_report(args.report or f"bench_particles_{args.target}", title, threads, [text])


if __name__ == "__main__":
    main()
