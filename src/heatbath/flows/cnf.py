"""A continuous normalizing flow on a state space, trained by flow matching: the data half's
engine (path, network, objective, ODE solver with exact divergence) as a distribution.

q is the law of x = s·y(1), where y solves dy/dt = u_θ(y, t) from y(0) ~ N(0, I) on the space
(the zero-centre-of-mass subspace for particles). The field u_θ is learned by conditional flow
matching on the linear path y_t = (1 − t)·z + t·(x/s): E‖u_θ(y_t, t) − (x/s − z)‖². Its density
is exact by the instantaneous change of variables, carried along the sampling trajectory
(`samplers.likelihood.transport_with_log_q`):

    log q(x) = log N(z; 0, I)_space − ∫₀¹ div u_θ(y_t, t) dt − dim·log s.

For particles the network is an EGNN: its output is CoM-free and translation invariant, so its
Jacobian annihilates the CoM directions and the full-space divergence *is* the divergence on
the subspace. s (`scale`) is the data's spread, fixed before training and stored as a buffer.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from heatbath.generative.couplings import couple
from heatbath.generative.field import Field
from heatbath.generative.objective import regression_loss
from heatbath.nets.ema import EMA
from heatbath.paths.noise import SpaceGaussianNoise
from heatbath.paths.path import Path
from heatbath.paths.schedules import LinearSchedule
from heatbath.samplers.likelihood import TransportedSamples, transport_with_log_q


PAIR_ROWS = 40_000   # B·P² of one solve: B = 1000 for DW4 (P = 4), 236 for LJ13, 16 for LJ55
# dopri5: the ODE's density (to its tolerance); the fixed-step maps: their samples' exact density
CNF_SAMPLERS = ("dopri5", "euler", "heun")


class ContinuousFlow(nn.Module):
    """q on `space` from a velocity network `net(y, t)` shaped like the space's events."""

    def __init__(self, net: nn.Module, space, scale: float = 1.0) -> None:
        super().__init__()
        if not scale > 0:
            raise ValueError(f"the data scale must be positive, got {scale}")
        self.net, self.space = net, space
        self.register_buffer("scale", torch.tensor(float(scale), dtype=torch.float64))
        self.path = Path(LinearSchedule(), SpaceGaussianNoise(space), sigma_data=1.0)

    def field(self) -> Field:
        return Field(self.net, self.path, "velocity")

    def loss(self, x: torch.Tensor, generator: torch.Generator, coupling: str) -> torch.Tensor:
        """Mean conditional flow-matching loss on a batch of target samples x."""
        y1 = x / self.scale.to(x.dtype)
        z = self.path.noise.sample(y1.shape, generator=generator, dtype=y1.dtype)
        z = couple(coupling, y1, z)   # both sides are on the space (centred), so is the result
        t = torch.rand(len(y1), generator=generator, dtype=y1.dtype)
        return regression_loss(self.net, self.path, "velocity", self.path.sample(y1, t, z)).mean()

    def sample_and_log_q(self, n: int, generator: torch.Generator, *, rtol: float = 1e-5,
                         atol: float = 1e-5, batch_size: int | None = None,
                         sampler: str = "dopri5", nfe: int = 20) -> TransportedSamples:
        """n samples and their exact log q (w.r.t. the space's measure), solved `batch_size` at
        a time (default: `draw_batch(space)`). `sampler` (`CNF_SAMPLERS`): dopri5 carries the
        divergence along the adaptive ODE solve; euler / heun take `nfe` fixed steps and give
        the density of the samples that map returns (`samplers.returned`)."""
        dtype = next(self.net.parameters()).dtype
        batch_size = batch_size or draw_batch(self.space)
        if sampler == "dopri5":
            moved = self._ode_draw(n, generator, rtol, atol, batch_size, dtype)
        else:
            moved = self._map_draw(n, generator, sampler, nfe, batch_size, dtype)
        s = self.scale.to(dtype)
        return TransportedSamples(moved.x * s, moved.log_q - self.space.dim * torch.log(s),
                                  moved.nfe)

    def _ode_draw(self, n, generator, rtol, atol, batch_size, dtype) -> TransportedSamples:
        parts, nfe = [], 0
        for start in range(0, n, batch_size):
            z = self.space.randn(min(batch_size, n - start), generator, dtype)
            moved = transport_with_log_q(self.field(), z, rtol=rtol, atol=atol)
            parts.append(moved)
            nfe = max(nfe, moved.nfe)
        return TransportedSamples(torch.cat([p.x for p in parts]),
                                  torch.cat([p.log_q for p in parts]), nfe)

    def _map_draw(self, n, generator, sampler, nfe, batch_size, dtype) -> TransportedSamples:
        from heatbath.samplers import SamplerSettings, draw_samples

        if sampler not in CNF_SAMPLERS:
            raise ValueError(f"unknown CNF sampler '{sampler}'; choose one of "
                             f"{', '.join(CNF_SAMPLERS)}")
        seed = int(torch.randint(2 ** 62, (1,), generator=generator))
        drawn = draw_samples(self.field(), n, self.space.event_shape,
                             SamplerSettings(name=sampler, nfe=nfe), seed=seed,
                             batch_size=batch_size, dtype=dtype, with_log_q=True)
        return TransportedSamples(drawn.x, drawn.log_q.to(dtype), drawn.nfe)


def draw_batch(space) -> int:
    """Samples solved together: 1000, fewer for many particles. The exact divergence pushes
    one vector-Jacobian product per dimension through the EGNN's (B, P, P, H) pair tensors at
    once, and past a few million pair rows the solve slows superlinearly (LJ13, one thread: 4.5 s
    per evaluation at B = 250, 34 s at B = 1000), so B·P² is kept near PAIR_ROWS."""
    particles = getattr(space, "n_particles", None)
    if particles is None:
        return 1000
    return max(16, min(1000, PAIR_ROWS // particles ** 2))


def train_cnf(flow: ContinuousFlow, samples: torch.Tensor, *, steps: int, batch_size: int,
              lr: float, coupling: str, generator: torch.Generator, ema_decay: float = 0.999,
              log_every: int = 50) -> list[dict]:
    """Adam on the flow-matching loss with a cosine learning rate; the flow ends with the
    exponential moving average of its weights (as the data half samples from its EMA: the
    averaged field is smoother, so the ODE needs fewer steps). Returns the logged losses."""
    optimizer = torch.optim.Adam(flow.net.parameters(), lr=lr)
    ema = EMA(flow.net, decay=ema_decay)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, steps)
    window, metrics = [], []
    flow.train()
    for step in range(1, steps + 1):
        index = torch.randint(len(samples), (batch_size,), generator=generator)
        loss = flow.loss(samples[index], generator, coupling)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(flow.net.parameters(), 10.0)
        optimizer.step()
        schedule.step()
        ema.update(flow.net)
        window.append(float(loss.detach()))
        if step % log_every == 0 or step == steps:
            metrics.append({"step": step, "loss": sum(window) / len(window)})
            window = []
    ema.copy_to(flow.net)
    flow.eval()
    return metrics


def data_scale(samples: torch.Tensor, space) -> float:
    """RMS per intrinsic coordinate of the samples on the space (the prior's width)."""
    squared = space.to_chart(samples).pow(2).sum(dim=1).mean()
    return math.sqrt(float(squared) / space.dim)
