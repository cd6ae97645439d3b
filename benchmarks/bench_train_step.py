"""Training step time: heatbath's real training loop against a hand-written PyTorch loop and
Meta's `flow_matching` library, on the same network, data, batch size and optimiser.

    .venv/bin/python benchmarks/bench_train_step.py            # ~3 min on one core
    .venv/bin/python benchmarks/bench_train_step.py --quick    # smoke run, < 1 min

Contenders (all train the same heatbath MLP from the same initial weights with AdamW(lr=2e-3,
weight_decay=0) on the conditional flow-matching / linear path, velocity target):

  hand-written (bare)          minibatch, x_t = t·x₁ + (1−t)·z, MSE on x₁ − z, backward, step
  hand-written + clip + EMA    the same plus clip_grad_norm_(1.0) and an EMA (decay 0.999) —
                               the fair baseline for heatbath, whose loop does both
  flow_matching + clip + EMA   AffineProbPath(CondOTScheduler()).sample(t, x_0, x_1), MSE on
                               dx_t, then the same clip + EMA + AdamW step
  heatbath train()             the real `heatbath.train.train(job)` loop, unchanged: lr warm-up,
                               minibatch + noise + time draws from its own generator, input
                               scaling, loss, backward, clip, AdamW, EMA (with its safety
                               checks), float(loss) + finiteness check, a metrics line every
                               50 steps. Checkpoints are moved out of the timed window
                               (checkpoint_every is set past the run; the step-0 save happens
                               before the first step and the final save after the last timed
                               step); their cost is reported separately.

Timing: each contender runs `steps` optimisation steps from a fresh copy of the network per
round; the time of every step is taken from a callback after it (heatbath's `progress` hook),
the first `warmup` steps and the last step are dropped, and the median over all kept steps of
all rounds is reported. Rounds rotate the contender order so drifting machine load hits all.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from common import log, markdown_table, pin_threads, require, write_report

THREADS = pin_threads()

import torch  # noqa: E402  (after pinning threads, before anything allocates a pool)

from heatbath.config import RunConfig  # noqa: E402
from heatbath.fit_data import prepare_job  # noqa: E402
from heatbath.train import train  # noqa: E402

SEED = 0
EMA_DECAY = 0.999
GRAD_CLIP = 1.0
BASELINE = "hand-written + clip + EMA"


@dataclass(frozen=True)
class Case:
    label: str
    source: str
    hidden: int = 256
    depth: int = 4
    batch: int = 256


CASES = (Case("dim 2 (checkerboard)", "builtin:checkerboard"),
         Case("dim 64 (gmm)", "builtin:gmm:dim=64"))


# --- heatbath --------------------------------------------------------------------------------

def heatbath_config(case: Case, steps: int) -> RunConfig:
    config = RunConfig()
    config.data.source = case.source
    config.model.net, config.model.hidden, config.model.depth = "mlp", case.hidden, case.depth
    config.path.name = "linear"            # conditional OT path, velocity prediction (auto)
    config.train.steps, config.train.batch_size = steps, case.batch
    config.train.seed, config.train.grad_clip, config.train.ema_decay = SEED, GRAD_CLIP, EMA_DECAY
    config.train.checkpoint_every = 10 ** 9   # only the step-0 and final saves, both untimed
    return config


def run_heatbath(job, net, steps: int, on_step: Callable[[int], None]) -> None:
    job.net = net
    with tempfile.TemporaryDirectory() as run_dir:
        job.run_dir = Path(run_dir)
        job.config.train.steps = steps
        train(job, resume=False, progress=on_step)


# --- hand-written and flow_matching loops ----------------------------------------------------

class ClipAndEMA:
    """What a minimal loop adds to match heatbath: gradient clipping and a weight average."""

    def __init__(self, net: torch.nn.Module):
        self.params = list(net.parameters())
        self.shadow = [p.detach().clone() for p in self.params]

    def clip(self) -> None:
        torch.nn.utils.clip_grad_norm_(self.params, GRAD_CLIP)

    @torch.no_grad()
    def update(self) -> None:
        for shadow, param in zip(self.shadow, self.params):
            shadow.lerp_(param, 1.0 - EMA_DECAY)


def draw_batch(data: torch.Tensor, batch: int, generator: torch.Generator):
    """Minibatch, noise and times from one generator, as heatbath's loop draws them."""
    x1 = data[torch.randint(len(data), (batch,), generator=generator)]
    z = torch.randn(x1.shape, generator=generator)
    t = torch.rand(batch, generator=generator)
    return x1, z, t


def handwritten_loss(net, x1, z, t) -> torch.Tensor:
    tt = t[:, None]
    x_t = tt * x1 + (1 - tt) * z
    return (net(x_t, t) - (x1 - z)).pow(2).mean()


def make_flow_matching_loss():
    fm_path = require("flow_matching.path", "the flow_matching contender",
                      "pip install flow_matching -c /tmp/constraints.txt")
    scheduler = require("flow_matching.path.scheduler", "the flow_matching contender",
                        "pip install flow_matching -c /tmp/constraints.txt")
    path = fm_path.AffineProbPath(scheduler=scheduler.CondOTScheduler())

    def loss(net, x1, z, t):
        sample = path.sample(t=t, x_0=z, x_1=x1)
        return (net(sample.x_t, sample.t) - sample.dx_t).pow(2).mean()

    return loss


def run_plain_loop(loss_fn, extras: bool, data: torch.Tensor, lr: float, batch: int):
    """A contender: the minimal loop with loss_fn, with or without clip + EMA."""

    def run(net, steps: int, on_step: Callable[[int], None]) -> None:
        generator = torch.Generator().manual_seed(SEED)
        optimizer = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=0.0)
        helper = ClipAndEMA(net) if extras else None
        for step in range(1, steps + 1):
            loss = loss_fn(net, *draw_batch(data, batch, generator))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if helper:
                helper.clip()
            optimizer.step()
            if helper:
                helper.update()
            on_step(step)

    return run


# --- timing ----------------------------------------------------------------------------------

@dataclass
class StepTimes:
    kept: list        # seconds per step after warm-up, last step dropped
    last: list        # seconds of the final step (heatbath: includes the final checkpoint)


def time_run(runner, initial_net, steps: int, warmup: int) -> tuple[list, float]:
    """Per-step durations of one fresh run (callback timestamps), and the final step's."""
    stamps = []
    torch.manual_seed(SEED)
    net = copy.deepcopy(initial_net)
    runner(net, steps, lambda step: stamps.append(time.perf_counter()))
    durations = [b - a for a, b in zip(stamps[:-1], stamps[1:])]   # durations of steps 2..N
    return durations[warmup:-1], durations[-1]


def measure_case(case: Case, steps: int, warmup: int, rounds: int) -> dict[str, StepTimes]:
    job, _, _ = prepare_job(heatbath_config(case, steps), Path("."))
    initial_net = copy.deepcopy(job.net)
    lr, data = job.config.train.lr, job.train_x
    contenders = {
        "hand-written (bare)": run_plain_loop(handwritten_loss, False, data, lr, case.batch),
        BASELINE: run_plain_loop(handwritten_loss, True, data, lr, case.batch),
        "flow_matching + clip + EMA": run_plain_loop(make_flow_matching_loss(), True, data, lr,
                                                     case.batch),
        "heatbath train()": lambda net, n, cb: run_heatbath(job, net, n, cb),
    }
    results = {name: StepTimes([], []) for name in contenders}
    names = list(contenders)
    for r in range(rounds):
        order = names[r % len(names):] + names[:r % len(names)]
        for name in order:
            kept, last = time_run(contenders[name], initial_net, steps, warmup)
            results[name].kept.extend(kept)
            results[name].last.append(last)
            log(f"  {case.label} round {r + 1}/{rounds} {name}: "
                f"{1e3 * statistics.median(kept):.2f} ms/step")
    return results


# --- report ----------------------------------------------------------------------------------

def quartiles_ms(values: list) -> tuple[float, float, float]:
    q1, q2, q3 = statistics.quantiles(values, n=4)
    return 1e3 * q1, 1e3 * q2, 1e3 * q3


def case_rows(case: Case, results: dict[str, StepTimes]) -> list[list[str]]:
    base = statistics.median(results[BASELINE].kept)
    bare = statistics.median(results["hand-written (bare)"].kept)
    rows = []
    for name, times in results.items():
        q1, med, q3 = quartiles_ms(times.kept)
        rows.append([case.label, name, f"{med:.2f}", f"{q1:.2f}–{q3:.2f}",
                     f"{med / (1e3 * base):.3f}", f"{med / (1e3 * bare):.3f}", len(times.kept)])
    return rows


def checkpoint_note(case: Case, results: dict[str, StepTimes]) -> str:
    times = results["heatbath train()"]
    save_ms = 1e3 * (statistics.median(times.last) - statistics.median(times.kept))
    return (f"- {case.label}: a heatbath checkpoint save costs ≈ {save_ms:.1f} ms; at the default "
            f"checkpoint_every = 500 that adds ≈ {save_ms / 500:.3f} ms/step (not in the table).")


def goal_line(case: Case, results: dict[str, StepTimes]) -> str:
    ratio = (statistics.median(results["heatbath train()"].kept)
             / statistics.median(results[BASELINE].kept))
    verdict = "met" if ratio <= 1.05 else "NOT met"
    return f"- {case.label}: heatbath / {BASELINE} = {ratio:.3f} → goal ≤ 1.05× {verdict}."


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke run (< 1 min)")
    parser.add_argument("--steps", type=int, default=None, help="steps per run (default 200)")
    parser.add_argument("--rounds", type=int, default=None, help="fresh runs per contender (4)")
    args = parser.parse_args()
    steps = args.steps or (40 if args.quick else 200)
    rounds = args.rounds or (1 if args.quick else 4)
    warmup = 10 if args.quick else 30
    rows, notes, goals = [], [], []
    for case in CASES:
        log(f"{case.label}: {rounds} round(s) x {steps} steps per contender")
        results = measure_case(case, steps, warmup, rounds)
        rows += case_rows(case, results)
        notes.append(checkpoint_note(case, results))
        goals.append(goal_line(case, results))
    table = markdown_table(["case", "contender", "median ms/step", "IQR ms", f"× {BASELINE}",
                            "× bare", "steps timed"], rows)
    setup = (f"Same heatbath MLP (hidden {CASES[0].hidden}, depth {CASES[0].depth}) and initial "
             f"weights, batch {CASES[0].batch}, AdamW lr 2e-3, linear (CondOT) path, velocity "
             f"target, float32, CPU. {rounds} round(s) × {steps} steps per contender, first "
             f"{warmup} and last step of each run dropped; median over the rest.")
    write_report("bench_train_step", "Training step time", THREADS,
                 [setup, table, "Goal: heatbath ≤ 1.05× the hand-written loop with clip + EMA.\n"
                  + "\n".join(goals), "Checkpoint cost:\n" + "\n".join(notes),
                  "What each loop includes: see the docstring of benchmarks/bench_train_step.py."])


if __name__ == "__main__":
    main()
