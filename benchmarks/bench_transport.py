"""Transport samplers against FAB, AIS and SMC at one evaluation budget (GMM-40, ManyWell-32).

Every method gets the same budget B of target evaluations (energy and force) for *one*
estimate, training included: a learned sampler (NETS, CMCD, FAB, iDEM) trains with
method.budget = B − the cost of its draw, then draws its samples per estimate (DRAWS, per
target TARGET_DRAWS: the flow's draw costs one evaluation per sample, so it spends a tenth of B
on 10⁵ samples; the transport samplers' draws cost TIME_STEPS + 1 evaluations per sample, and
NETS on GMM-40 spends about half of B on 8000 walkers); AIS and SMC spend B
on one run of ESTIMATE_SAMPLES samples (annealing steps chosen to fit).
Each row reports, over ESTIMATES independent estimates (a learned sampler is trained once and
redrawn with new seeds; AIS and SMC run again with new seeds):

- mean abs Δlog Z = mean |log Ẑ − log Z| (natural log), with its standard error over the
  estimates;
- the mean reported stderr of one estimate;
- reverse ESS = Kish (Σw)²/(n Σw²) as a fraction of n on one draw of n = ESS_SAMPLES (10⁴; on
  small batches the Kish ESS is biased upward), and the Pareto k̂ of those weights (SMC's
  final weights are reset by resampling, so its ESS says nothing about the proposal: n/a);
- GMM-40: modes (of 40) with a sample within 2 std of the component mean among the 10⁴;
- evaluations: the training (once) and one estimate; seconds: training and one estimate.

    .venv/bin/python benchmarks/bench_transport.py [--target gmm40|manywell32|both] [--quick]
"""

from __future__ import annotations

import argparse
import math
import statistics
import tempfile
import time
from pathlib import Path

import torch

from common import log, markdown_table, pin_threads, write_report
from heatbath.core.runs import atomic_save_tensors
from heatbath.core.settings import set_value
from heatbath.core.spec import parse_value
from heatbath.energy.config import EnergyRunConfig
from heatbath.energy.fit import run_method
from heatbath.energy.methods import METHODS
from heatbath.estimators.importance import kish_ess, log_z_importance
from heatbath.estimators.tail import weight_tail_diagnostic
from heatbath.targets.benchmarks import GMM_STD, fab_gmm_means
from heatbath.targets.registry import build_target

BUDGET, ESTIMATES, ESTIMATE_SAMPLES, ESS_SAMPLES = 1_000_000, 10, 4000, 10_000
TIME_STEPS = 64            # transport samplers' Euler–Maruyama steps (one evaluation each)
HMC_LEAPFROG = 3           # AIS/SMC: one evaluation for the weight + 3 leapfrog gradients
# Samples per estimate of a learned sampler. The flow's error bar shrinks as 1/sqrt(n) at one
# evaluation a sample: 10^5 draws (a tenth of the budget) took its |Δlog Z| below the AIS/SMC
# rows, which a 4000-sample draw (0.4 % of the budget) did not.
DRAWS = {"flow": 100_000, "idem": 100_000}   # idem: its refit CNF's draws, one evaluation each
# GMM-40: NETS's 8000 walkers cost 520k of the budget. At ESS ~0.5 its stderr is ~1/sqrt(n), and
# 4000 walkers (0.016) held the mean |Δlog Z| at 0.010-0.015 whatever the training (trials at
# OWN_SETTINGS); 8000 with 474k training evaluations gave 0.008.
TARGET_DRAWS = {("gmm40", "nets"): 8000}

# Per-target settings of the learned samplers (the rest are heatbath's defaults).
TRANSPORT = {"gmm40": {"transport.hidden": 64, "transport.depth": 3, "transport.lr": 1e-3,
                       "transport.step_size": 0.5},
             # ManyWell: the default step (a tenth of MALA's δ, 0.002 here) moves a walker
             # 0.13 in 64 steps and gave |Δlog Z| = 33 (NETS) and 41 (CMCD); 0.05 had the
             # lowest log-weight variance of untrained walks over 0.01 … 0.1.
             # Why NETS fails here: the 16 pairs are independent, so their log-weight
             # variances add, and ESS(32) ≈ ESS(2)^16. Trained NETS on ManyWell-2 at this
             # budget (ESS on 10⁴): 64 steps of 0.05 (these settings) 0.375, and ManyWell-8
             # 0.018 ≈ 0.375⁴; 64 of 0.0125 0.55; 64 of 0.003 0.46; 256 of 0.0125 0.70; 256 of
             # 0.05 0.20; 1024 of 0.003 0.44; 16 of 0.2 0.03 (AIS: 0.45). ManyWell-32 needs
             # ESS(2) ≥ 0.97 (0.97^16 ≈ 0.6). And the product is a best case: 256 of 0.0125
             # on ManyWell-8 gave 0.045, not 0.70⁴ = 0.24 (the same budget learns each
             # pair's drift less well in more dimensions).
             "manywell32": {"transport.hidden": 128, "transport.depth": 3,
                            "transport.lr": 1e-3, "transport.step_size": 0.05}}
# Per (target, method) settings. NETS on GMM-40: the buffer's walks are reused for 192 gradient
# steps per simulation and the PINN loss reads 64 states per grid time. Trials (4000 walkers per
# estimate; ESS on 10⁴): 32 updates of 16 states ESS 0.20, |Δlog Z| 0.025; 128 of 16: 0.46,
# 0.014; 512 of 16: 0.50, 0.010 (540 s); 128 of 64: 0.50, 0.011 (283 s); the same with hidden
# 128: 0.52, 0.014; with step_size 0.25: 0.50, 0.015. ESS levels off near 0.5. CMCD keeps 32
# updates: its log-variance loss on the same walks 192 times fell from ESS 0.20 to 0.10.
OWN_SETTINGS = {("gmm40", "nets"): {"transport.updates": 192, "transport.points": 64}}
# iDEM: K = 20 Monte-Carlo draws per score target and 64 targets per step, so the budget buys
# ~700 gradient steps (K = 100 with 128 targets would buy 70); GMM-40 trials at this budget:
# ESS 0.04 (K = 20, 64 targets), 0.0005-0.0015 (K = 5 or 10, or 32 targets). Its refit CNF
# draws by Heun's map at 20 evaluations, weighted by that map's exact density (dopri5 took ~480
# evaluations, 4 min per 10⁵-sample estimate). σ_max spans the modes: GMM-40's box [-40, 40]²,
# ManyWell's wells at ±1.7 per coordinate.
IDEM_SHARED = {"idem.mc_samples": 20, "idem.batch_size": 64, "idem.steps": 100_000,
               "cnf.sampler": "heun", "cnf.nfe": 20}
IDEM = {"gmm40": {**IDEM_SHARED, "idem.sigma_max": 50.0},
        "manywell32": {**IDEM_SHARED, "idem.sigma_max": 5.0}}
FAB = {"flow.layers": 8, "flow.hidden": 128, "flow.objective": "fab", "flow.batch_size": 128,
       "flow.fab_steps": 4, "flow.steps": 100_000, "method.kernel": "hmc",
       "method.n_leapfrog": HMC_LEAPFROG, "method.dtype": "float32"}
# Gradient steps per AIS run into the replay buffer (they cost no evaluations). GMM-40: 16
# raised the ESS on 10^4 samples from 0.34 (4, the default) to 0.57 at the same budget, for
# 1.7x the training time; ManyWell-32 keeps 4, whose FAB row already meets its goal.
FAB_UPDATES = {"gmm40": 16, "manywell32": 4}


def draw_cost(method: str, samples: int) -> int:
    """Target evaluations of one draw of `samples` from a trained sampler."""
    return samples * (TIME_STEPS + 1) if method in ("nets", "cmcd") else samples


def draws(target: str, method: str) -> int:
    return TARGET_DRAWS.get((target, method), DRAWS.get(method, ESTIMATE_SAMPLES))


def own_draws(target: str) -> str:
    """The title's note of this target's TARGET_DRAWS ("; NETS's of 8,000")."""
    return "".join(f"; {LABELS[m].split(' ')[0]}'s of {n:,}"
                   for (t, m), n in TARGET_DRAWS.items() if t == target)


def annealing_steps(samples: int) -> int:
    """AIS/SMC steps whose evaluations (1 + leapfrog per sample and step) fit the budget."""
    return BUDGET // (samples * (1 + HMC_LEAPFROG))


def make_config(target: str, method: str, quick: bool) -> EnergyRunConfig:
    config = EnergyRunConfig()
    config.target.spec, config.method.name = target, method
    config.method.samples = ESTIMATE_SAMPLES
    settings = {}
    if method in ("nets", "cmcd"):
        settings = {**OWN_SETTINGS.get((target, method), {}), **TRANSPORT[target],
                    "transport.time_steps": TIME_STEPS,
                    "transport.steps": 100_000}   # --set writes TRANSPORT, so it wins over OWN_SETTINGS
    elif method == "flow":
        settings = {"flow.fab_updates": FAB_UPDATES[target], **FAB}   # --set wins
    elif method == "idem":
        settings = dict(IDEM[target])
    else:
        settings = {"method.kernel": "hmc", "method.n_leapfrog": HMC_LEAPFROG,
                    "method.steps": annealing_steps(ESTIMATE_SAMPLES), "method.replicas": 8}
    if METHODS[method].budgeted:
        budget = BUDGET - draw_cost(method, draws(target, method))
        settings["method.budget"] = budget // 10 if quick else budget   # quick: >= 1 simulation
    for key, value in settings.items():
        set_value(config, key, value)
    return config


def redraw(result, problem, method: str, n: int, seed: int):
    """n fresh weighted samples (working coordinates) from a trained sampler, through the
    method's own `redraw` on its saved weights, as `heatbath sample` draws them."""
    with tempfile.TemporaryDirectory() as folder:
        weights = Path(folder) / "model.safetensors"
        atomic_save_tensors(weights, result.model.state_dict())
        drawn = METHODS[method].redraw(problem.config, problem.target, problem.user_target,
                                       weights, n, torch.Generator().manual_seed(seed))
    return drawn["x"], drawn["log_w"]


def learned_row(target: str, method: str, quick: bool) -> dict:
    config = make_config(target, method, quick)
    started = time.perf_counter()
    result, problem = run_method(config)
    trained = result.diagnostics["training_energy_evals"]
    train_seconds = time.perf_counter() - started
    estimates, seconds = [], []
    for k in range(ESTIMATES):
        before, started = problem.energy_evals(), time.perf_counter()
        _, log_w = redraw(result, problem, method, draws(target, method), 100 + k)
        seconds.append(time.perf_counter() - started)
        estimates.append(log_z_importance(log_w.numpy()))
        per_estimate = problem.energy_evals() - before
    x, log_w = redraw(result, problem, method, ESS_SAMPLES, 999)
    return summary(target, method, estimates, x, log_w, trained, per_estimate, train_seconds,
                   statistics.mean(seconds), result.diagnostics.get("budget_reached"))


def annealing_row(target: str, method: str, quick: bool) -> dict:
    config = make_config(target, method, quick)
    if quick:
        config.method.steps = max(2, config.method.steps // 20)
    estimates, seconds, evals = [], [], []
    for k in range(ESTIMATES):
        config.method.seed = k
        started = time.perf_counter()
        result, problem = run_method(config)
        seconds.append(time.perf_counter() - started)
        estimates.append(result.log_z)
        evals.append(result.diagnostics["energy_evals"])
    config.method.samples, config.method.seed = ESS_SAMPLES, 999
    result, _ = run_method(config)
    return summary(target, method, estimates, result.x, result.log_w, 0,
                   int(statistics.mean(evals)), 0.0, statistics.mean(seconds), None)


def summary(target: str, method: str, estimates, x, log_w, trained: int, per_estimate: int,
            train_seconds: float, estimate_seconds: float, budget_reached) -> dict:
    exact = build_target(target).exact.log_z
    errors = [abs(e.value - exact) for e in estimates]
    weights = log_w.detach().double().numpy()
    ess, tail = kish_ess(weights), weight_tail_diagnostic(weights)
    resampled = method == "smc"
    row = {"mean abs Δlog Z": f"{statistics.mean(errors):.4f}",
           "± (sem)": f"{statistics.stdev(errors) / math.sqrt(len(errors)):.4f}",
           "mean reported stderr": f"{statistics.mean(e.stderr for e in estimates):.4f}",
           f"ESS (n = {ESS_SAMPLES:,})": ("n/a" if resampled
                                           else f"{ess.value:.3f} ± {ess.stderr:.3f}"),
           "k̂": "n/a" if resampled else f"{tail.k_hat:.2f}",
           "evals: training": f"{trained:,}", "evals: one estimate": f"{per_estimate:,}",
           "total": f"{trained + per_estimate:,}",
           "s: training": f"{train_seconds:.0f}", "s: one estimate": f"{estimate_seconds:.1f}"}
    if target == "gmm40":
        row["modes (of 40)"] = modes_found(x)
    if budget_reached is False:
        row["total"] += " (steps ran out first)"
    return row


def modes_found(x: torch.Tensor) -> int:
    means = fab_gmm_means().to(torch.float64)
    distance = torch.cdist(means, x.reshape(len(x), -1)[:, :2].to(torch.float64))
    return int((distance.min(dim=1).values < 2 * GMM_STD).sum())


LABELS = {"nets": "NETS (PINN drift, exact path weights)",
          "cmcd": "CMCD (log-variance drift, exact path weights)",
          "flow": "FAB flow (α = 2 + AIS, replay buffer)",
          "idem": "iDEM (K = 20; weights: a CNF refit to its samples)",
          "ais": "AIS (HMC)", "smc": "SMC (HMC, 8 replicas)"}


def run(target: str, quick: bool, methods: list[str]) -> list[dict]:
    rows = []
    for method, label in LABELS.items():
        if method not in methods:
            continue
        log(f"{target}: {label}")
        found = (learned_row if METHODS[method].learned else annealing_row)(target, method,
                                                                            quick)
        rows.append({"method": label, **found})
        log(f"  {found}")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--target", default="both", choices=["gmm40", "manywell32", "both"])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--methods", default=",".join(LABELS),
                        help="comma-separated subset of " + ", ".join(LABELS))
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a transport or flow.* setting for this run "
                             "(exploration only)")
    args = parser.parse_args()
    for item in args.set:
        key, value = item.split("=", 1)
        for settings in ([FAB] if key.startswith("flow.") else TRANSPORT.values()):
            settings[key] = parse_value(value)
    threads = pin_threads()
    for target in (["gmm40", "manywell32"] if args.target == "both" else [args.target]):
        rows = run(target, args.quick, args.methods.split(","))
        title = (f"{target}: log Z and ESS at a budget of {BUDGET:,} target evaluations per "
                 f"estimate, training included ({ESTIMATES} estimates of {ESTIMATE_SAMPLES} "
                 f"samples{own_draws(target)}, the flow's and iDEM's refit CNF's of "
                 f"{DRAWS['flow']:,}; exact log Z "
                 f"{build_target(target).exact.log_z:.7f}; 1 thread)")
        table = markdown_table(list(rows[0]), [list(r.values()) for r in rows])
        if args.quick or args.set or args.methods != ",".join(LABELS):
            print(f"{title}\n\n{table}")   # a smoke or exploration run: keep the committed table
        else:
            write_report(f"bench_transport_{target}", title, threads, [table])


if __name__ == "__main__":
    main()
