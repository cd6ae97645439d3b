"""Sample quality versus NFE: heatbath's samplers against diffusers' schedulers, all driving the
same network trained once in this script.

    .venv/bin/python benchmarks/bench_sampler_quality.py            # ~5 min on one core
    .venv/bin/python benchmarks/bench_sampler_quality.py --quick    # smoke run, < 1 min

Model: heatbath MLP (hidden 128, depth 3) trained with heatbath's own loop (`prepare_job` +
`train`, EMA weights) on builtin:checkerboard, VP path (`build_path("vp")`, β_min 0.1,
β_max 20, the continuous-time limit of DDPM's linear β schedule) with ε-prediction.

Driving diffusers with the continuous-time model (the mapping):
  * discrete schedule: N = 1000 training timesteps, timestep k ∈ {0..N−1} ↔ continuous time
    t_k = 1 − (k + 1)/N (our t runs noise 0 → data 1; diffusers' k runs data 0 → noise N−1),
    alphas_cumprod[k] = α(t_k)² of our path. The scheduler gets
    trained_betas[k] = 1 − alphas_cumprod[k]/alphas_cumprod[k−1] (alphas_cumprod[−1] = 1).
  * the scheduler rebuilds alphas_cumprod from those betas as a float32 cumulative product, so
    the network is not called at t_k itself but at the continuous t whose α(t)² equals the
    scheduler's own alphas_cumprod[k] (λ = σ/α inverted by the schedule's bisection). The
    network thus always sees exactly the noise level the scheduler assumes.
  * ε(x, k) = the ε-prediction of `Field(net, path, "eps").predict(x, t(k))`, i.e. the same
    input scaling as heatbath's samplers use.
  * every sampler, ours and diffusers', starts from the same points (common random numbers):
    heatbath's per-sample starting noise at the first time, α·mean + √(σ² + α²σ_data²)·n with
    n ~ N(0, I); at t(N−1) ≈ 0 this is diffusers' own x_T ~ N(0, I)·init_noise_sigma up to
    O(α(0)) = O(0.007). DDPM's injected noise comes from a torch.Generator.
  Schedulers: DPMSolverMultistepScheduler(algorithm_type="dpmsolver++", solver_order=2,
  defaults otherwise: linspace timesteps, lower_order_final, final sigma 0) at each NFE, and
  DDPMScheduler(variance_type="fixed_small", clip_sample=False) at 1000 steps.

Metric: energy distance (U-statistic, jackknife stderr) and sliced Wasserstein-2 (256
directions; its stderr covers the directions only) between the samples and a fresh reference
draw of the data of the same size; the floor is the same distance between two fresh data draws.
"""

from __future__ import annotations

import argparse
import math
import time
from dataclasses import dataclass

from common import log, markdown_table, pin_threads, require, trained_field, write_report

THREADS = pin_threads()

import torch  # noqa: E402

from heatbath.generative.config import RunConfig  # noqa: E402
from heatbath.datasets.toys import checkerboard  # noqa: E402
from heatbath.core.errors import UserError  # noqa: E402
from heatbath.estimators.distances import energy_distance, sliced_wasserstein  # noqa: E402
from heatbath.generative.field import Field  # noqa: E402
from heatbath.samplers import SamplerSettings, draw_samples, initial_noise  # noqa: E402

TRAIN_TIMESTEPS = 1000
OURS = ("heun", "dpm++2m", "ddim", "euler", "ddpm")
REFERENCE_SEED, FLOOR_SEED, SAMPLE_SEED = 1001, 1002, 7
SUPPORT_EDGE = 4.5   # the data live in [-4, 4]²; 0.5 of slack for the model's blur


# --- the one trained model -------------------------------------------------------------------

def train_model(steps: int, hidden: int, depth: int) -> Field:
    config = RunConfig()
    config.data.source = "builtin:checkerboard"
    config.path.name, config.path.prediction = "vp", "eps"
    config.model.net, config.model.hidden, config.model.depth = "mlp", hidden, depth
    config.train.steps, config.train.seed = steps, 0
    return trained_field(config)


# --- diffusers, driven by the continuous-time model ------------------------------------------

def discrete_alphas_cumprod(path, n: int = TRAIN_TIMESTEPS) -> torch.Tensor:
    """alphas_cumprod[k] = α(t_k)², t_k = 1 − (k + 1)/n (k = 0 is the least noisy)."""
    k = torch.arange(n, dtype=torch.float64)
    return path.schedule.alpha(1.0 - (k + 1) / n) ** 2


def betas_from_alphas_cumprod(alphas_cumprod: torch.Tensor) -> list[float]:
    previous = torch.cat([torch.ones(1, dtype=torch.float64), alphas_cumprod[:-1]])
    return (1.0 - alphas_cumprod / previous).tolist()


class DiscreteEpsModel:
    """ε(x, k) on diffusers' discrete timesteps, from the continuous-time Field."""

    def __init__(self, field: Field, scheduler_alphas_cumprod: torch.Tensor):
        self.field = field
        ac = scheduler_alphas_cumprod.to(torch.float64)
        level = torch.sqrt((1.0 - ac) / ac)            # λ = σ/α at each discrete timestep
        self.times = field.path.schedule.t_from_noise_level(level)

    def __call__(self, x: torch.Tensor, timestep) -> torch.Tensor:
        _, eps = self.field.predict(x, float(self.times[int(timestep)]))
        return eps


def make_scheduler(kind: str, path):
    diffusers = require("diffusers", "the diffusers scheduler contenders",
                        "bash scripts/setup.sh bench")
    betas = betas_from_alphas_cumprod(discrete_alphas_cumprod(path))
    if kind == "dpm":
        return diffusers.DPMSolverMultistepScheduler(
            num_train_timesteps=TRAIN_TIMESTEPS, trained_betas=betas, solver_order=2,
            algorithm_type="dpmsolver++", prediction_type="epsilon")
    return diffusers.DDPMScheduler(num_train_timesteps=TRAIN_TIMESTEPS, trained_betas=betas,
                                   variance_type="fixed_small", clip_sample=False,
                                   prediction_type="epsilon")


def diffusers_samples(field: Field, kind: str, steps: int, n: int,
                      event_shape: tuple = (2,), seed: int = SAMPLE_SEED) -> tuple[torch.Tensor, int]:
    scheduler = make_scheduler(kind, field.path)
    scheduler.set_timesteps(steps)
    model = DiscreteEpsModel(field, scheduler.alphas_cumprod)
    generator = torch.Generator().manual_seed(seed)   # DDPM's injected noise
    # The same starting points as heatbath's samplers (common random numbers): heatbath's
    # per-sample noise at the scheduler's first time, ≈ N(0, I) = diffusers' own x_T for VP.
    t_first = float(model.times[int(scheduler.timesteps[0])])
    x = initial_noise(field.path, t_first, torch.arange(n), event_shape, seed, torch.float32)
    with torch.no_grad():
        for timestep in scheduler.timesteps:
            x = scheduler.step(model(x, timestep), timestep, x, generator=generator).prev_sample
    return x, len(scheduler.timesteps)


# --- contenders and metrics ------------------------------------------------------------------

@dataclass
class Row:
    sampler: str
    nfe_asked: int
    nfe: int
    seconds: float
    energy: object    # Estimate or None when the samples are not finite
    sliced: object
    off_support: float


def off_support_fraction(x: torch.Tensor) -> float:
    """Share of samples clearly outside the checkerboard's [-4, 4]² support.

    A handful of far-out samples (|x| ~ 10-200; a property of the trained network that every
    ODE sampler, diffusers' included, inherits) barely move the energy distance but dominate
    the sliced W2, so the table shows how many there are.
    """
    return float((x.abs().amax(dim=1) > SUPPORT_EDGE).double().mean())


def ours_samples(field: Field, name: str, nfe: int, n: int, grid: str | None):
    result = draw_samples(field, n, (2,), SamplerSettings(name, nfe, grid=grid), seed=SAMPLE_SEED,
                          batch_size=n)
    return result.x, result.nfe


def score(label: str, nfe_asked: int, run, reference: torch.Tensor) -> Row:
    started = time.perf_counter()
    x, nfe = run()
    seconds = time.perf_counter() - started
    try:
        energy, sliced = energy_distance(x, reference), sliced_wasserstein(x, reference)
    except UserError:   # NaN / inf samples: report the row as diverged
        energy = sliced = None
    row = Row(label, nfe_asked, nfe, seconds, energy, sliced, off_support_fraction(x))
    log(f"  {label:28s} NFE {nfe:5d}: energy {fmt(energy)}  SW {fmt(sliced)}  {seconds:.1f} s")
    return row


def contenders(field: Field, nfes: list[int], big_nfe: int, ddpm_steps: int, n: int):
    """(label, NFE asked, thunk) for every run, in table order."""
    runs = []
    for name in OURS:
        extra = [big_nfe] if name in ("euler", "ddpm") and big_nfe else []
        for nfe in nfes + extra:
            runs.append((f"heatbath {name}", nfe,
                         lambda name=name, nfe=nfe: ours_samples(field, name, nfe, n, None)))
    for nfe in nfes:
        runs.append(("heatbath dpm++2m (logsnr grid)", nfe,
                     lambda nfe=nfe: ours_samples(field, "dpm++2m", nfe, n, "logsnr")))
    for nfe in nfes:
        runs.append(("diffusers DPMSolver++ 2M", nfe,
                     lambda nfe=nfe: diffusers_samples(field, "dpm", nfe, n)))
    runs.append(("diffusers DDPM", ddpm_steps,
                 lambda: diffusers_samples(field, "ddpm", ddpm_steps, n)))
    return runs


# --- report ----------------------------------------------------------------------------------

def fmt(estimate, digits: int = 4) -> str:
    if estimate is None:
        return "diverged"
    return f"{estimate.value:.{digits}f} ± {estimate.stderr:.{digits}f}"


def table_rows(rows: list[Row], floor: Row) -> list[list[str]]:
    out = [["data vs data (floor)", "–", fmt(floor.energy), fmt(floor.sliced),
            f"{100 * floor.off_support:.2f}", "–"]]
    for r in rows:
        out.append([r.sampler, r.nfe, fmt(r.energy), fmt(r.sliced), f"{100 * r.off_support:.2f}",
                    f"{r.seconds:.2f}"])
    return out


def compare(best: Row, reference: Row) -> str:
    diff = best.energy.value - reference.energy.value
    se = math.hypot(best.energy.stderr, reference.energy.stderr)
    within = "within" if abs(diff) <= se else ("within 2×" if abs(diff) <= 2 * se else "outside")
    return (f"best of ours at NFE {best.nfe_asked} is {best.sampler} (energy {fmt(best.energy)}); "
            f"{reference.sampler} at {reference.nfe} steps: {fmt(reference.energy)}; difference "
            f"{diff:+.4f} vs combined stderr {se:.4f} → {within} the stderr")


def goal_lines(rows: list[Row], goal_nfe: int, ddpm_steps: int) -> list[str]:
    ours = [r for r in rows if r.sampler.startswith("heatbath") and r.nfe_asked == goal_nfe
            and r.energy is not None]
    refs = [r for r in rows if r.nfe_asked == ddpm_steps and r.energy is not None
            and r.sampler in ("diffusers DDPM", "heatbath ddpm")]
    if not ours or not refs:
        return ["(goal not evaluated: no finite runs at the needed NFE)"]
    best = min(ours, key=lambda r: r.energy.value)
    return [f"- {compare(best, ref)}." for ref in refs]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke run (< 1 min)")
    parser.add_argument("--train-steps", type=int, default=None, help="default 8000")
    parser.add_argument("--samples", type=int, default=None, help="default 5000")
    args = parser.parse_args()
    quick = args.quick
    train_steps = args.train_steps or (300 if quick else 8000)
    n = args.samples or (1000 if quick else 5000)
    nfes, big_nfe, ddpm_steps = ([5, 10], 0, 100) if quick else ([5, 10, 20, 50, 100], 1000, 1000)
    hidden, depth = 128, 3

    log(f"training {train_steps} steps (VP path, eps-prediction, MLP {hidden}x{depth})")
    started = time.perf_counter()
    field = train_model(train_steps, hidden, depth)
    train_seconds = time.perf_counter() - started
    make_scheduler("dpm", field.path)   # import diffusers now, outside the timed sampling
    reference = checkerboard(n, generator=torch.Generator().manual_seed(REFERENCE_SEED))
    floor_set = checkerboard(n, generator=torch.Generator().manual_seed(FLOOR_SEED))
    floor = score("data vs data (floor)", 0, lambda: (floor_set, 0), reference)
    rows = [score(label, nfe, run, reference)
            for label, nfe, run in contenders(field, nfes, big_nfe, ddpm_steps, n)]

    setup = (f"Model trained once in this run: {train_steps} steps of heatbath `train()` "
             f"(batch 256, AdamW 2e-3, EMA 0.999) in {train_seconds:.0f} s; MLP hidden {hidden} "
             f"depth {depth}; VP path (β 0.1→20) with ε-prediction; builtin:checkerboard. "
             f"{n} samples per row vs {n} fresh data samples; metric ± stderr; wall = sampling "
             f"time in seconds. heatbath samplers use the path's default uniform-t grid unless "
             f"noted. Total run time {time.perf_counter() - started:.0f} s.")
    table = markdown_table(["sampler", "NFE", "energy distance", "sliced W2",
                            f"% off [-{SUPPORT_EDGE}, {SUPPORT_EDGE}]²", "wall s"],
                           table_rows(rows, floor))
    goal = (f"Goal: our best sampler at 10 NFE matches DDPM at {ddpm_steps} steps "
            f"(energy distance, ± combined stderr):\n" + "\n".join(goal_lines(rows, 10, ddpm_steps)))
    write_report("bench_sampler_quality", "Sample quality versus NFE", THREADS,
                 [setup, table, goal, "The discrete-time mapping used to drive diffusers is "
                  "documented in the docstring of benchmarks/bench_sampler_quality.py."])


if __name__ == "__main__":
    main()
