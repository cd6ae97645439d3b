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
  heatbath train()             the real `heatbath.generative.train.train(job)` loop, unchanged: lr warm-up,
                               minibatch + noise + time draws from its own generator, input
                               scaling, loss, backward, clip, AdamW, EMA (with its safety
                               checks), float(loss) + finiteness check, a metrics line every
                               50 steps. Checkpoints are moved out of the timed window
                               (checkpoint_every is set past the run; the step-0 save happens
                               before the first step and the final save after the last timed
                               step); their cost is reported separately.

Timing: all four contenders run in the same process, interleaved in blocks of 10 consecutive
steps (heatbath's `progress` hook runs a block of each of the others; the time spent in the
hook is not counted as heatbath's). Every step is timed on its own; the first step of each
block, the first 3 blocks and heatbath's final step are dropped, and the median is reported,
with the ratio to the baseline both as a ratio of medians and paired block by block.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from common import log, markdown_table, pin_threads, require, time_calls, write_report

THREADS = pin_threads()

import torch  # noqa: E402  (after pinning threads, before anything allocates a pool)

from heatbath.generative.config import RunConfig  # noqa: E402
from heatbath.generative.fit import prepare_job  # noqa: E402
from heatbath.generative.train import train  # noqa: E402

SEED = 0
EMA_DECAY = 0.999
GRAD_CLIP = 1.0
BASELINE = "hand-written + clip + EMA"
HEATBATH = "heatbath train()"


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
                      "bash scripts/setup.sh bench")
    scheduler = require("flow_matching.path.scheduler", "the flow_matching contender",
                        "bash scripts/setup.sh bench")
    path = fm_path.AffineProbPath(scheduler=scheduler.CondOTScheduler())

    def loss(net, x1, z, t):
        sample = path.sample(t=t, x_0=z, x_1=x1)
        return (net(sample.x_t, sample.t) - sample.dx_t).pow(2).mean()

    return loss


class PlainLoop:
    """A contender stepped from outside: the minimal loop with loss_fn, ± clip + EMA."""

    def __init__(self, net, loss_fn, extras: bool, data: torch.Tensor, lr: float, batch: int):
        self.net, self.loss_fn, self.data, self.batch = net, loss_fn, data, batch
        self.generator = torch.Generator().manual_seed(SEED)
        self.optimizer = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=0.0)
        self.helper = ClipAndEMA(net) if extras else None

    def step(self) -> None:
        loss = self.loss_fn(self.net, *draw_batch(self.data, self.batch, self.generator))
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.helper:
            self.helper.clip()
        self.optimizer.step()
        if self.helper:
            self.helper.update()


# --- timing ----------------------------------------------------------------------------------
#
# The machine is shared, so its speed drifts by tens of percent within a minute. Running the
# contenders one after the other would compare different loads; instead they run interleaved in
# blocks of `block` consecutive steps (consecutive, so each keeps its weights and optimiser
# state warm in cache as a real loop would). heatbath's train() is the driver: its `progress`
# hook runs one block of every other contender every `block` steps, and the time spent in the
# hook is excluded from heatbath's steps. The first step of every block (cold cache after the
# switch) and the first `warmup_blocks` blocks are dropped for every contender.


@dataclass
class StepTimes:
    blocks: list = field(default_factory=list)   # per block: seconds of each of its steps
    final: float = 0.0                           # heatbath's last step: has the final checkpoint

    def kept(self, warmup_blocks: int) -> list:
        return [d for block in self.blocks[warmup_blocks:] for d in block[1:]]


def measure_case(case: Case, steps: int, block: int) -> dict[str, StepTimes]:
    job, _, _ = prepare_job(heatbath_config(case, steps), Path("."))
    initial_net = copy.deepcopy(job.net)
    lr, data = job.config.train.lr, job.train_x
    torch.manual_seed(SEED)
    plain = {name: PlainLoop(copy.deepcopy(initial_net), loss_fn, extras, data, lr, case.batch)
             for name, loss_fn, extras in (("hand-written (bare)", handwritten_loss, False),
                                           (BASELINE, handwritten_loss, True),
                                           ("flow_matching + clip + EMA",
                                            make_flow_matching_loss(), True))}
    results = {name: StepTimes() for name in [*plain, HEATBATH]}
    heatbath_block, resumed = [], [time.perf_counter()]

    def on_heatbath_step(step: int) -> None:
        heatbath_block.append(time.perf_counter() - resumed[0])
        if step % block == 0 and step < steps:
            results[HEATBATH].blocks.append(list(heatbath_block))
            heatbath_block.clear()
            names = list(plain)
            shift = (step // block) % len(names)     # rotate who runs right after heatbath
            for name in names[shift:] + names[:shift]:
                results[name].blocks.append(time_calls(plain[name].step, block, warmup=0))
            if step % (10 * block) == 0:
                log(f"  {case.label}: step {step}/{steps}")
        resumed[0] = time.perf_counter()

    torch.manual_seed(SEED)
    run_heatbath(job, copy.deepcopy(initial_net), steps, on_heatbath_step)
    results[HEATBATH].final = heatbath_block[-1]
    return results


# --- report ----------------------------------------------------------------------------------

def quartiles_ms(values: list) -> tuple[float, float, float]:
    q1, q2, q3 = statistics.quantiles(values, n=4)
    return 1e3 * q1, 1e3 * q2, 1e3 * q3


def paired_ratio(times: StepTimes, base: StepTimes, warmup_blocks: int) -> float:
    """Median over blocks of (block median / the baseline's block median right beside it).

    Blocks of the two run within a second of each other, so load drift cancels in the ratio.
    """
    ratios = [statistics.median(a[1:]) / statistics.median(b[1:])
              for a, b in zip(times.blocks[warmup_blocks:], base.blocks[warmup_blocks:])]
    return statistics.median(ratios)


def case_rows(case: Case, results: dict[str, StepTimes], warmup_blocks: int) -> list[list]:
    kept = {name: times.kept(warmup_blocks) for name, times in results.items()}
    base, bare = statistics.median(kept[BASELINE]), statistics.median(kept["hand-written (bare)"])
    rows = []
    for name, times in results.items():
        q1, med, q3 = quartiles_ms(kept[name])
        paired = paired_ratio(times, results[BASELINE], warmup_blocks)
        rows.append([case.label, name, f"{med:.2f}", f"{q1:.2f}–{q3:.2f}",
                     f"{med / (1e3 * base):.3f}", f"{paired:.3f}", f"{med / (1e3 * bare):.3f}",
                     len(kept[name])])
    return rows


def checkpoint_note(case: Case, results: dict[str, StepTimes], warmup_blocks: int) -> str:
    times = results[HEATBATH]
    save_ms = 1e3 * (times.final - statistics.median(times.kept(warmup_blocks)))
    return (f"- {case.label}: one heatbath checkpoint save ≈ {save_ms:.0f} ms (a single "
            f"measurement); at the default checkpoint_every = 500 that is ≈ {save_ms / 500:.2f} "
            f"ms/step, not in the table.")


def goal_line(case: Case, results: dict[str, StepTimes], warmup_blocks: int) -> str:
    ratio = paired_ratio(results[HEATBATH], results[BASELINE], warmup_blocks)
    verdict = "met" if ratio <= 1.05 else "NOT met"
    return f"- {case.label}: heatbath / {BASELINE} (paired) = {ratio:.3f} → {verdict}."


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke run (< 1 min)")
    parser.add_argument("--steps", type=int, default=None,
                        help="steps per contender and case (default 800)")
    parser.add_argument("--block", type=int, default=10, help="consecutive steps per block")
    args = parser.parse_args()
    steps = args.steps or (60 if args.quick else 800)
    warmup_blocks = 1 if args.quick else 3
    rows, notes, goals = [], [], []
    for case in CASES:
        log(f"{case.label}: {steps} steps per contender, interleaved in blocks of {args.block}")
        results = measure_case(case, steps, args.block)
        rows += case_rows(case, results, warmup_blocks)
        notes.append(checkpoint_note(case, results, warmup_blocks))
        goals.append(goal_line(case, results, warmup_blocks))
    table = markdown_table(["case", "contender", "median ms/step", "IQR ms", "× baseline",
                            "× baseline (paired)", "× bare", "steps timed"], rows)
    setup = (f"Same heatbath MLP (hidden {CASES[0].hidden}, depth {CASES[0].depth}) and initial "
             f"weights, batch {CASES[0].batch}, AdamW lr 2e-3 (weight decay 0), linear (CondOT) "
             f"path, velocity target, float32, CPU. {steps} steps per contender and case, the "
             f"contenders interleaved in blocks of {args.block} consecutive steps; dropped: the "
             f"first {warmup_blocks} block(s), the first step of every block and heatbath's "
             f"final step. Baseline = {BASELINE}. \"paired\" = median over blocks of the ratio "
             f"to the baseline's neighbouring block (robust to the shared machine's drifting "
             f"load); the goal is judged on it.")
    write_report("bench_train_step", "Training step time", THREADS,
                 [setup, table, "Goal: heatbath ≤ 1.05× the hand-written loop with clip + EMA.\n"
                  + "\n".join(goals), "Checkpoint cost:\n" + "\n".join(notes),
                  "What each loop includes: see the docstring of benchmarks/bench_train_step.py."])


if __name__ == "__main__":
    main()
