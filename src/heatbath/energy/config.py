"""Configuration of an energy run (`heatbath fit --target SPEC --method NAME`)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from heatbath.core.settings import (AT_LEAST_1, FRACTION_OPEN, NON_NEGATIVE, POSITIVE, Bounds,
                                    fill_config, read_toml, setting)



@dataclass
class TargetSection:
    # NAME[:k=v,...] or path/to/file.py:NAME[:k=v,...]
    spec: str = ""


@dataclass
class MethodSection:
    name: str = "ais"
    # returned samples (particles; MCMC: chains × kept steps)
    samples: int = setting(2000, AT_LEAST_1)
    # mcmc / pt / ti: independent chains; autoregressive / masked: neural MCMC chains
    chains: int = setting(64, AT_LEAST_1)
    # mcmc: steps per chain; ais/smc: annealing steps; pt: rounds; ti: steps per temperature
    steps: int = setting(200, AT_LEAST_1)
    # mcmc / pt / ti / the spin models' neural MCMC: discarded steps (step size adapted here)
    burn_in: int = setting(100, NON_NEGATIVE)
    thin: int = setting(1, AT_LEAST_1)
    # continuous: rwm|mala|hmc|baoab; spins: metropolis|heatbath|wolff
    kernel: str = "auto"
    # 0: tuned on the target during a pilot run
    step_size: float = setting(0.0, Bounds(0, high_open=True))
    n_leapfrog: int = setting(5, AT_LEAST_1)
    # kernel steps (spins: sweeps) per annealing step / round
    moves_per_step: int = setting(1, AT_LEAST_1)
    # pt: rungs; ti: β grid points
    temperatures: int = setting(8, AT_LEAST_1)
    # pt: lowest β of the geometric ladder
    beta_min: float = setting(0.05, FRACTION_OPEN)
    # ais/smc β grid
    schedule: str = "geometric"
    # ais/smc: start at this fraction of the target's β instead of the base (chains equilibrated
    # there by burn_in steps)
    beta_start: float = setting(0.0, Bounds(0, 1, high_open=True))
    # 0: from the target's exact samples if it has them, else 1
    base_scale: float = setting(0.0, Bounds(0, high_open=True))
    # smc: independent populations (for the standard error)
    replicas: int = setting(8, AT_LEAST_1)
    # smc: resample when ESS < threshold·n
    ess_threshold: float = setting(0.5, Bounds(0, 1, low_open=True))
    # learned methods that evaluate U while training (flow, snf, nets, cmcd): stop training
    # before the target evaluations made so far (step-size tuning, training data, training)
    # would exceed this; 0: no limit. The final draw of method.samples is not included.
    budget: int = setting(0, NON_NEGATIVE)
    # β-conditioned learned samplers (autoregressive, masked): train over β uniform in
    # [LO, HI] at the target's J and h, so one model covers the range; [0, 0]: the target's β
    beta_range: list = setting([0.0, 0.0], NON_NEGATIVE)
    seed: int = 0
    dtype: str = "float64"


@dataclass
class FlowSection:
    # auto: conv for real fields on an L×M lattice with even sides (phi4), mlp otherwise;
    # mlp: spline couplings with MLP conditioners (flow, snf); conv (flow only): checkerboard
    # couplings with periodic convolutions, equivariant under even lattice translations
    net: str = "auto"
    layers: int = setting(8, AT_LEAST_1)
    # mlp: conditioner width
    hidden: int = setting(64, AT_LEAST_1)
    # spline couplings' bins
    bins: int = setting(8, AT_LEAST_1)
    # conv: features of each coupling's two hidden convolutions, and their (odd) kernel size
    channels: int = setting(8, AT_LEAST_1)
    kernel: int = setting(3, AT_LEAST_1)
    # conv: spline (rational-quadratic, flow.bins bins on [-8, 8]) or affine
    # (Albergo-Kanwar-Shanahan's e^s·φ + t) couplings; mlp couplings are always splines
    coupling: str = "spline"
    # conv: a learned scale per lattice momentum after the couplings (the zero mode M = Σφ)
    spectral: bool = True
    steps: int = setting(2000, AT_LEAST_1)
    batch_size: int = setting(256, AT_LEAST_1)
    lr: float = setting(1e-3, POSITIVE)
    # reverse_kl | forward_kl | both | fab
    objective: str = "reverse_kl"
    # forward KL data: exact target samples, or "smc": particles
    training_samples: str = "exact"
                                     # of an SMC run on the energy (resampled by weight)
    # fab: AIS steps from q to p²/q in every AIS run (moves: method.kernel, step_size, n_leapfrog)
    fab_steps: int = setting(8, AT_LEAST_1)
    # fab: replay-buffer capacity in samples (0: no buffer)
    fab_buffer: int = setting(20000, NON_NEGATIVE)
    # fab with a buffer: gradient steps per AIS run
    fab_updates: int = setting(4, AT_LEAST_1)
    # snf: stochastic blocks interleaved with flow layers
    snf_blocks: int = setting(4, AT_LEAST_1)
    # snf: Langevin steps per stochastic block
    langevin_steps: int = setting(1, NON_NEGATIVE)
    langevin_step_size: float = setting(0.01, POSITIVE)
    # flow after training: method.chains independence Metropolis-Hastings chains with the flow
    # as proposal, method.burn_in + mcmc_steps proposals each; 0: none
    mcmc_steps: int = setting(0, NON_NEGATIVE)
    # flow after training: method.chains HMC chains in the flow's latent space, method.burn_in
    # steps (leapfrog step tuned there) + latent_hmc_steps kept, method.n_leapfrog each; 0: none
    latent_hmc_steps: int = setting(0, NON_NEGATIVE)


@dataclass
class CNFSection:
    # training samples drawn from the energy by heatbath itself: mcmc | pt (method.chains,
    # method.burn_in, method.steps, method.thin, method.kernel; their evaluations count), smc
    # (annealed from the base, method.samples particles resampled by weight), or exact (the
    # target's own sampler, where it has one)
    data: str = "mcmc"
    # auto: egnn for particle targets (E(n)-equivariant), mlp otherwise
    net: str = "auto"
    hidden: int = setting(32, AT_LEAST_1)
    depth: int = setting(3, AT_LEAST_1)
    steps: int = setting(2000, AT_LEAST_1)
    batch_size: int = setting(256, AT_LEAST_1)
    # DW4 at 3000 steps: 1e-3 -> 2e-3 raised the ESS 0.56 -> 0.65 and cut energy W2 2.8 -> 2.1
    lr: float = setting(2e-3, POSITIVE)
    # independent | ot (minibatch optimal transport between noise and samples) |
    # equivariant_ot (particles: OT on distances after Hungarian + Kabsch alignment)
    coupling: str = "independent"
    # how samples and their log q are drawn: dopri5 (the ODE's density, to rtol / atol, with
    # the exact divergence) | euler | heun (cnf.nfe fixed steps; log q is the exact density of
    # the samples that map returns, through its log|det Jacobian|: LJ13's stiff field took
    # dopri5 260 evaluations at rtol 1e-4)
    sampler: str = "dopri5"
    nfe: int = setting(20, AT_LEAST_1)
    # dopri5 tolerances of the sampling ODE (which carries the exact divergence)
    rtol: float = setting(1e-5, POSITIVE)
    atol: float = setting(1e-5, POSITIVE)
    # the flow's network and ODE (energies and weights stay in method.dtype)
    dtype: str = "float32"


@dataclass
class TransportSection:
    # nets / cmcd: the drift's network; auto: egnn for particle targets, mlp otherwise
    net: str = "auto"
    hidden: int = setting(64, AT_LEAST_1)
    depth: int = setting(3, AT_LEAST_1)
    # gradient steps (what `fit --steps` sets)
    steps: int = setting(2000, AT_LEAST_1)
    # walks per training simulation (each costs time_steps + 1 energy and force evaluations)
    batch_size: int = setting(256, Bounds(2, high_open=True, high=math.inf))
    # gradient steps per simulation: training reuses the stored walks (no new evaluations)
    updates: int = setting(32, AT_LEAST_1)
    # stored walks kept for training (the latest)
    buffer: int = setting(2048, AT_LEAST_1)
    # nets: stored states per grid time in one gradient step of the PINN loss
    points: int = setting(16, Bounds(2, high_open=True, high=math.inf))
    # nets: the PINN residual's divergence ∇·b, exact (D vector-Jacobian products per state)
    # or hutchinson (two Rademacher probes per state, an unbiased loss whatever D: for
    # particles, where each product runs back through the EGNN's P² pairs). Weights are exact
    # path weights either way.
    divergence: str = "exact"
    lr: float = setting(1e-3, POSITIVE)
    # extra walks without the drift in each simulation, as a fraction of batch_size: plain
    # annealed Langevin reaches every mode, so the losses see the modes the drift misses
    explore: float = setting(0.5, NON_NEGATIVE)
    # K: Euler–Maruyama steps from the base (t = 0) to the target (t = 1); β grid:
    # method.schedule
    time_steps: int = setting(64, AT_LEAST_1)
    # Langevin step δ per time step (x' = x − δ∇V + h·b + √(2δ)ξ); 0: a tenth of δ = h²/2 of
    # a MALA step h tuned on the target at β = 1
    step_size: float = setting(0.0, Bounds(0, high_open=True, high=math.inf))
    # resample populations (method.replicas, method.ess_threshold) while drawing: SMC with a
    # learned drift
    resample: bool = False
    # the drift network's dtype (walkers, energies and weights stay in method.dtype)
    dtype: str = "float32"


@dataclass
class IDEMSection:
    # the score network; auto: egnn for particle targets, mlp otherwise
    net: str = "auto"
    hidden: int = setting(32, AT_LEAST_1)
    depth: int = setting(3, AT_LEAST_1)
    # gradient steps (what `fit --steps` sets); each costs batch_size * mc_samples energy and
    # force evaluations (DW4, K = 100: energy W2 of its samples 3.7 after 2000 steps, 1.4
    # after 8000)
    steps: int = setting(4000, AT_LEAST_1)
    batch_size: int = setting(128, AT_LEAST_1)
    # K: noise draws of the Monte-Carlo score estimate behind every regression target
    mc_samples: int = setting(100, AT_LEAST_1)
    lr: float = setting(1e-3, POSITIVE)
    # the variance-exploding path's noise levels, sigma(t) = sigma_max^(1-t) sigma_min^t
    # (iDEM: DW4 1e-5 to 3, LJ13 0.01 to 2, in the target's own units)
    sigma_min: float = setting(0.01, POSITIVE)
    sigma_max: float = setting(3.0, POSITIVE)
    # iDEM's clip of each score estimate's norm (20 in its DW4 and LJ13 runs); 0: none
    max_score_norm: float = setting(20.0, NON_NEGATIVE)
    # replay buffer: the model draws `generate` samples into it every `updates` gradient steps
    # and keeps the latest `buffer`
    generate: int = setting(256, AT_LEAST_1)
    updates: int = setting(25, AT_LEAST_1)
    buffer: int = setting(10000, AT_LEAST_1)
    # Euler-Maruyama steps of every reverse-SDE draw (training rounds and the refit samples)
    nfe: int = setting(100, Bounds(2, high_open=True, high=math.inf))
    # iDEM samples the weighting CNF (cnf.* settings) is refit to by flow matching; its exact
    # log q weights the run, since iDEM's own sampler has no tractable density
    refit_samples: int = setting(10000, Bounds(2, high_open=True, high=math.inf))
    # the score network's dtype (energies and weights stay in method.dtype)
    dtype: str = "float32"


@dataclass
class SpinModelSection:
    """What the spin models with an exact log q (autoregressive, masked) share: reverse-KL
    training, the symmetrised mixture, neural MCMC and the network's dtype."""
    # gradient steps (what `fit --steps` sets); each draws batch_size lattices and evaluates H
    steps: int = setting(1000, AT_LEAST_1)
    # samples per step (>= 2: the leave-one-out baseline needs another sample)
    batch_size: int = setting(256, Bounds(2, high_open=True, high=math.inf))
    lr: float = setting(1e-3, POSITIVE)
    # fraction of the steps over which the training β ramps linearly from 0 to the target
    # (VAN-style annealing); 0: the target's β (or method.beta_range) from the first step
    anneal: float = setting(0.0, Bounds(0, 1))
    # h = 0 only: q averaged over the global relabellings the energy is invariant under
    # (Ising: q₂(s) = ½(q(s) + q(−s)); masked Potts: s → s + k mod q), still an exact log q
    z2: bool = False
    # k: q averaged over the k×k translations of the periodic lattice by multiples of
    # (L/k, M/k) (heatbath.nets.lattice_translations), still an exact log q at k² passes of
    # the model; k must divide the sides of every lattice drawn; 1: none
    translations: int = setting(1, AT_LEAST_1)
    # neural MCMC after training: method.chains independence Metropolis-Hastings chains with
    # the model as proposal, method.burn_in + mcmc_steps proposals each; 0: none
    mcmc_steps: int = setting(0, NON_NEGATIVE)
    # warm start: this many maximum-likelihood (forward-KL) steps on lattices from heatbath's
    # own MCMC (method.kernel; method.chains chains per β, method.burn_in sweeps discarded;
    # β-conditioned: method.temperatures β across method.beta_range) before reverse KL; the
    # sweeps count as energy evaluations; 0: none
    warm_start: int = setting(0, NON_NEGATIVE)
    # lattices the warm start learns from
    warm_start_samples: int = setting(4096, AT_LEAST_1)
    # the network's dtype (spins, energies and weights stay in method.dtype)
    dtype: str = "float32"


@dataclass
class AutoregressiveSection(SpinModelSection):
    # the masked-convolution network (heatbath.nets.masked_conv): layers of kernel×kernel
    # convolutions (odd kernel >= 3) with `channels` features; a site sees
    # layers·(kernel // 2) rows above and columns aside
    layers: int = setting(3, AT_LEAST_1)
    channels: int = setting(16, AT_LEAST_1)
    kernel: int = setting(5, Bounds(3, high_open=True, high=math.inf))


@dataclass
class MaskedSection(SpinModelSection):
    # the data half's masked lattice network (heatbath.nets.MaskedLatticeNet): depth periodic
    # 3×3 convolutions of `channels` features; a site's conditional reads the revealed sites
    # within depth + 1 steps
    channels: int = setting(32, AT_LEAST_1)
    depth: int = setting(4, AT_LEAST_1)
    batch_size: int = setting(64, Bounds(2, high_open=True, high=math.inf))
    # sublattice: reveal every site of a sublattice wider than the net's reach at once (exact,
    # (depth + 2)² passes or so per lattice, whatever its size); raster: one site per pass;
    # random: one site per pass in a permutation drawn from order_seed (one for all lattices)
    order: str = "sublattice"
    order_seed: int = setting(0, NON_NEGATIVE)


@dataclass
class EnergyRunConfig:
    target: TargetSection = field(default_factory=TargetSection)
    method: MethodSection = field(default_factory=MethodSection)
    flow: FlowSection = field(default_factory=FlowSection)
    cnf: CNFSection = field(default_factory=CNFSection)
    transport: TransportSection = field(default_factory=TransportSection)
    idem: IDEMSection = field(default_factory=IDEMSection)
    autoregressive: AutoregressiveSection = field(default_factory=AutoregressiveSection)
    masked: MaskedSection = field(default_factory=MaskedSection)


def resolved_kernel(config: EnergyRunConfig, discrete: bool) -> str:
    if config.method.kernel != "auto":
        return config.method.kernel
    return "heatbath" if discrete else "hmc"


def load_energy_config(path: str | Path) -> EnergyRunConfig:
    """Read an energy run's TOML config; every key is checked against the sections above."""
    return fill_config(EnergyRunConfig(), read_toml(path), str(path))
