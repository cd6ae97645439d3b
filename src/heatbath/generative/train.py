"""The training loop of the data half: AdamW, clipping, EMA, atomic checkpoints, exact resume, DDP.

Determinism: every random draw of training (minibatch indices, noise, times, condition drops)
comes from one torch.Generator per rank, saved in each checkpoint, so a resumed run continues
to exactly the result of an uninterrupted one. Under `torchrun` each rank draws its own
minibatch and DistributedDataParallel averages gradients (gloo on CPU, NCCL on GPU).
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.distributed as dist

from heatbath.core.checkpoint import STATE_JSON, load_checkpoint, save_checkpoint
from heatbath.generative.config import RunConfig
from heatbath.generative.couplings import couple
from heatbath.core.errors import TrainingDiverged, UserError
from heatbath.generative.objective import regression_loss, sample_times
from heatbath.nets import EMA
from heatbath.core.runs import append_metrics, truncate_metrics
from heatbath.samplers.common import safe_time_range


@dataclass
class DistributedContext:
    rank: int = 0
    world: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def distributed_context(device: str) -> DistributedContext:
    """Join the process group when launched by torchrun (WORLD_SIZE > 1)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistributedContext()
    if not dist.is_initialized():
        _join_group("nccl" if device.startswith("cuda") else "gloo")
    return DistributedContext(dist.get_rank(), dist.get_world_size())


def _join_group(backend: str) -> None:
    """init_process_group over the launcher's store, under a prefix for this restart attempt.

    torchrun keeps one store across restarts (`--max-restarts`), so without the prefix a
    restarted rank can read the address a dead rank of the previous attempt published, and the
    new group then fails to connect ("connection refused") or hangs.
    """
    store, rank, world = next(dist.rendezvous("env://"))
    attempt = os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")
    prefixed = dist.PrefixStore(f"heatbath/attempt_{attempt}/", store)
    dist.init_process_group(backend, store=prefixed, rank=rank, world_size=world)


@dataclass
class TrainingJob:
    """Everything the loop needs, built and validated before anything is written."""

    config: RunConfig
    run_dir: Path
    train_x: torch.Tensor
    train_c: torch.Tensor | None
    cond_kind: str | None
    path: object
    net: torch.nn.Module
    # data-dependent coupling (`generative.corruptions`): the corruption that builds each
    # point's base, paired sources x0 (path.base=paired), and the data range the network's
    # view of the observation is scaled by
    corruption: object | None = None
    train_x0: torch.Tensor | None = None
    context_range: tuple[float, float] = (-1.0, 1.0)
    # a discrete path's own objective (paths.masked): loss_fn(net, x, generator) -> per-sample
    # loss on a minibatch of train_x, replacing the regression on a continuous path
    loss_fn: object | None = None


def _batch(job: TrainingJob, generator: torch.Generator, device: str):
    cfg = job.config.train
    idx = torch.randint(len(job.train_x), (cfg.batch_size,), generator=generator)
    x1 = job.train_x[idx].to(device)
    z = job.path.draw_noise(x1.shape, generator=generator, dtype=x1.dtype).to(device)
    z = couple(cfg.coupling, x1, z)
    t_range = safe_time_range(job.path, job.config.path.prediction)
    t = sample_times(job.config.path.time_sampling, cfg.batch_size, job.path, t_range,
                     generator, x1.dtype).to(device)
    cond = drop = None
    if job.train_c is not None:
        cond = job.train_c[idx].to(device)
        drop = (torch.rand(cfg.batch_size, generator=generator) < cfg.cond_drop).to(device)
    coupled = {}
    if job.corruption is not None:
        # The residual x − b(c) on the path, its noise on the unknown subspace.
        source = None if job.train_x0 is None else job.train_x0[idx].to(device)
        obs = job.corruption.observe(x1, generator, source).to(device)
        x1, z = x1 - obs.base, obs.project(z)
        coupled = {"observation": obs, "context": obs.context(*job.context_range)}
    return job.path.sample(x1, t, z), cond, drop, coupled


def _minibatch_loss(job: TrainingJob, model, generator: torch.Generator, device: str):
    """The mean loss of one minibatch, every draw from `generator` (exact resume)."""
    if job.loss_fn is not None:
        idx = torch.randint(len(job.train_x), (job.config.train.batch_size,),
                            generator=generator)
        return job.loss_fn(model, job.train_x[idx].to(device), generator).mean()
    ps, cond, drop, coupled = _batch(job, generator, device)
    return regression_loss(model, job.path, job.config.path.prediction, ps, cond, drop,
                           **coupled).mean()


def _learning_rate(cfg, step: int) -> float:
    """Linear warm-up, then constant or a cosine decay to zero at the last step."""
    rate = cfg.lr * min(1.0, (step + 1) / max(1, cfg.warmup))
    if cfg.lr_schedule == "cosine" and step >= cfg.warmup:
        progress = (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup)
        rate *= 0.5 * (1.0 + math.cos(math.pi * progress))
    return rate


def train(job: TrainingJob, resume: bool, progress=None) -> dict[str, torch.Tensor]:
    """Run (or resume) training to config.train.steps; returns the EMA weights."""
    cfg = job.config.train
    ctx = distributed_context(cfg.device)
    net = job.net.to(cfg.device)
    ema = EMA(net, decay=cfg.ema_decay)
    optimizer = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    generator = torch.Generator().manual_seed(cfg.seed * 7919 + ctx.rank)
    step = 0
    # A run killed before its step-0 checkpoint has nothing to resume: start it over.
    resume = resume and (Path(job.run_dir) / STATE_JSON).is_file()
    if resume:
        step, rng_states, _ = load_checkpoint(job.run_dir, net, ema, optimizer)
        if len(rng_states) != ctx.world:
            raise UserError(f"checkpoint was written by {len(rng_states)} process(es); "
                            f"resume with the same number (now {ctx.world})")
        generator.set_state(rng_states[ctx.rank])
        if ctx.is_main:
            truncate_metrics(job.run_dir, step)
    else:
        # A run directory always holds a checkpoint it can resume from, even at step 0.
        states = _gather_generator_states(ctx, generator)
        if ctx.is_main:
            save_checkpoint(job.run_dir, 0, net, ema, optimizer, states, {"world": ctx.world})
    model = net
    if ctx.world > 1:
        model = torch.nn.parallel.DistributedDataParallel(net)
    _loop(job, ctx, model, net, ema, optimizer, generator, step, progress)
    if ctx.world > 1:
        _check_replicas_agree(net)
    return ema.state_dict()


def _check_replicas_agree(net) -> None:
    """DDP keeps replicas identical by construction; verify it rather than trust it."""
    flat = torch.cat([p.detach().flatten().double() for p in net.parameters()])
    gathered = [torch.empty_like(flat) for _ in range(dist.get_world_size())]
    dist.all_gather(gathered, flat)
    if any(not torch.equal(gathered[0], other) for other in gathered[1:]):
        raise RuntimeError("data-parallel replicas diverged: parameters differ between ranks")


def _gather_generator_states(ctx: DistributedContext, generator) -> list:
    state = generator.get_state()
    if ctx.world == 1:
        return [state]
    states = [torch.empty_like(state) for _ in range(ctx.world)]
    dist.all_gather(states, state)
    return states


def _loop(job, ctx, model, net, ema, optimizer, generator, step, progress) -> None:
    cfg = job.config.train
    window, started = [], time.perf_counter()
    while step < cfg.steps:
        for group in optimizer.param_groups:
            group["lr"] = _learning_rate(cfg, step)
        loss = _minibatch_loss(job, model, generator, cfg.device)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(net.parameters(), cfg.grad_clip)
        optimizer.step()
        ema.update(net)
        step += 1
        window.append(loss.item())
        if not math.isfinite(window[-1]):
            raise TrainingDiverged(f"training diverged at step {step} (loss {window[-1]}); lower "
                            f"train.lr, then continue from the last checkpoint with --resume")
        if ctx.is_main and (step % cfg.log_every == 0 or step == cfg.steps):
            append_metrics(job.run_dir, {"step": step, "loss": sum(window) / len(window),
                                         "lr": optimizer.param_groups[0]["lr"],
                                         "grad_norm": float(grad_norm),
                                         "elapsed": time.perf_counter() - started})
            window = []
        if step % cfg.checkpoint_every == 0 or step == cfg.steps:
            states = _gather_generator_states(ctx, generator)
            if ctx.is_main:
                save_checkpoint(job.run_dir, step, net, ema, optimizer, states, {"world": ctx.world})
        if progress is not None:
            progress(step)
