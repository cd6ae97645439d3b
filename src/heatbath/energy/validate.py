"""Checks of an energy run's configuration against the target, before anything runs.

Numeric ranges are declared on the settings themselves (`core.settings.Bounds`); what is left
here are choices read from the registries and the limits that depend on the method.
"""

from __future__ import annotations

import torch

from heatbath.annealing import BETA_SCHEDULES
from heatbath.core.checks import choice
from heatbath.core.errors import UserError
from heatbath.core.settings import check_all_bounds
from heatbath.core.runs import DTYPES
from heatbath.energy.config import EnergyRunConfig, MethodSection
from heatbath.energy.methods import METHODS, method_named
from heatbath.energy.methods.flows import flow_net
from heatbath.energy.methods.spin_models import section as spin_section
from heatbath.flows import OBJECTIVES
from heatbath.mcmc import CONTINUOUS_KERNELS, SPIN_UPDATES
from heatbath.paths.masked import ORDERS
from heatbath.transport.losses import DIVERGENCES
from heatbath.targets.spin_lattice import SpinLattice


def validate(config: EnergyRunConfig, target) -> None:
    """UserError for the first setting that cannot work with this target (one line)."""
    m, f = config.method, config.flow
    check_all_bounds(config)
    method = method_named(m.name)
    if target.discrete and not isinstance(target, SpinLattice):
        raise UserError(f"{target.name} declares discrete = True but is not a "
                        f"heatbath.targets.SpinLattice, whose couplings and local updates the "
                        f"spin methods need; for an Ising lattice use --target "
                        f"ising2d:L=,M=,J=,h=,beta=")
    discrete = target.discrete
    if discrete and method.continuous_only:
        usable = ", ".join(name for name, entry in METHODS.items() if not entry.continuous_only)
        raise UserError(f"--method {m.name} needs a continuous target; for spin lattices use "
                        f"{usable}")
    if not discrete and method.spins_only:
        usable = ", ".join(name for name, entry in METHODS.items() if not entry.spins_only)
        raise UserError(f"--method {m.name} learns spin lattices (e.g. --target "
                        f"ising2d:L=16,beta=0.3); for {target.name} use {usable}")
    _check_beta_range(config, target)
    if m.kernel != "auto":
        choice(m.kernel, SPIN_UPDATES if discrete else CONTINUOUS_KERNELS, "method.kernel")
    choice(m.schedule, BETA_SCHEDULES, "method.schedule")
    choice(m.dtype, DTYPES, "method.dtype")
    choice(f.objective, OBJECTIVES, "flow.objective")
    if f.objective == "fab" and not method.exact_log_q:
        raise UserError(f"flow.objective=fab needs a tractable log q, which {m.name} has not; "
                        f"use it with --method flow")
    choice(f.training_samples, ("exact", "smc"), "flow.training_samples")
    _check_flow(config, target)
    if m.name == "cnf":
        _check_cnf(config, target)
    if m.name in ("nets", "cmcd"):
        _check_transport(config, target)
    if m.name == "idem":
        _check_idem(config, target)
    if m.name in ("autoregressive", "masked"):
        _check_spin_model(config, target)
    if m.budget and not method.budgeted:
        budgeted = ", ".join(name for name, entry in METHODS.items() if entry.budgeted)
        raise UserError(f"method.budget limits training, which {m.name} does not do (its cost "
                        f"is set by its sizes); methods with a budget: {budgeted}")
    _check_method_sizes(m)


def _check_flow(config: EnergyRunConfig, target) -> None:
    """flow.net, flow.coupling and the flow's Markov chains: what the configured flow can
    serve."""
    f, name = config.flow, config.method.name
    choice(f.net, ("auto", "mlp", "conv"), "flow.net")
    choice(f.coupling, ("spline", "affine"), "flow.coupling")
    for key in ("mcmc_steps", "latent_hmc_steps"):
        if getattr(f, key) and name != "flow":
            raise UserError(f"flow.{key} runs Markov chains on a trained flow's exact density; "
                            f"use it with --method flow, not {name}")
        if getattr(f, key) and config.method.chains < 2:
            raise UserError(f"flow.{key} needs method.chains >= 2 for its error bars")
    if name not in ("flow", "snf"):
        return
    if f.net == "conv" and name == "snf":
        raise UserError("flow.net=conv is a flow of bijections only; use it with --method flow "
                        "(snf takes flow.net=mlp)")
    if f.net == "conv":
        _check_lattice_flow(f, target)
    if f.coupling == "affine" and not (name == "flow" and flow_net(config, target) == "conv"):
        raise UserError("flow.coupling=affine is for the lattice flow (--method flow with "
                        "flow.net=conv, the default on phi4); other flows use splines")
    if f.coupling == "spline" and f.bins < 2:
        raise UserError(f"spline couplings need flow.bins >= 2, got {f.bins}")


def _check_lattice_flow(f, target) -> None:
    shape = target.event_shape
    if target.space.kind != "lattice" or len(shape) != 2:
        raise UserError(f"flow.net=conv learns real fields on an LxM lattice (e.g. --target "
                        f"phi4:L=8); {target.name} is a {target.space.kind} space of shape "
                        f"{tuple(shape)}: use flow.net=mlp")
    if any(n % 2 for n in shape):
        raise UserError(f"flow.net=conv needs even lattice sides (a checkerboard that wraps "
                        f"around); {target.name} is {shape[0]}x{shape[1]}: use flow.net=mlp")
    if f.kernel % 2 == 0:
        raise UserError(f"flow.kernel must be odd (a centre site), got {f.kernel}")


def _check_cnf(config: EnergyRunConfig, target) -> None:
    from heatbath.flows.cnf import CNF_SAMPLERS
    from heatbath.generative.couplings import COUPLINGS

    c = config.cnf
    choice(c.data, ("mcmc", "pt", "smc", "exact"), "cnf.data")
    choice(c.coupling, COUPLINGS, "cnf.coupling")
    choice(c.sampler, CNF_SAMPLERS, "cnf.sampler")
    _net_fits(c.net, target, "cnf.net")
    choice(c.dtype, DTYPES, "cnf.dtype")
    particles = target.space.kind == "centred_particles"
    if c.coupling == "equivariant_ot" and not particles:
        raise UserError("cnf.coupling=equivariant_ot aligns particles; use ot for "
                        f"{target.name}")
    if c.coupling != "independent":
        from heatbath.generative.couplings import ot_permutation

        ot_permutation(torch.zeros(1, 1), torch.zeros(1, 1))   # UserError if POT is missing


def _net_fits(kind: str, target, where: str) -> None:
    """A `*.net` choice that can learn the target's configurations (the chart for non-particle
    spaces)."""
    from heatbath.nets import NETS, fits, fitting, space_modality

    choice(kind, ("auto", *NETS), where)
    modality = space_modality(target.space)   # other spaces than particles: the flat chart
    if kind != "auto" and not fits(kind, modality):
        raise UserError(f"{where}={kind} does not fit {target.name} (a {target.space.kind} "
                        f"space); use {where}=auto or {' or '.join(fitting(modality))}")


def _check_transport(config: EnergyRunConfig, target) -> None:
    _net_fits(config.transport.net, target, "transport.net")
    choice(config.transport.dtype, DTYPES, "transport.dtype")
    choice(config.transport.divergence, DIVERGENCES, "transport.divergence")
    if config.transport.divergence != "exact" and config.method.name != "nets":
        raise UserError(f"transport.divergence is NETS's PINN loss; --method "
                        f"{config.method.name} takes no divergence: drop the setting")


def _check_idem(config: EnergyRunConfig, target) -> None:
    """iDEM's own settings, and the refit flow's (it is `--method cnf`'s)."""
    c = config.idem
    _net_fits(c.net, target, "idem.net")
    choice(c.dtype, DTYPES, "idem.dtype")
    if not c.sigma_min < c.sigma_max:
        raise UserError(f"idem.sigma_min must be below idem.sigma_max, got {c.sigma_min:g} and "
                        f"{c.sigma_max:g}")
    per_step = c.batch_size * c.mc_samples
    if config.method.budget and config.method.budget < per_step:
        raise UserError(f"method.budget={config.method.budget} is less than one iDEM step "
                        f"(idem.batch_size x idem.mc_samples = {per_step} evaluations), so "
                        f"nothing would train; raise the budget or lower those two")
    _check_cnf(config, target)


def _check_beta_range(config: EnergyRunConfig, target) -> None:
    """method.beta_range: off ([0, 0]), or LO < HI around the target's β for a method that
    conditions on β."""
    values = [float(v) for v in config.method.beta_range]
    if values == [0.0, 0.0]:
        return
    name = config.method.name
    if not METHODS[name].beta_conditioned:
        takers = ", ".join(n for n, entry in METHODS.items() if entry.beta_conditioned)
        raise UserError(f"method.beta_range trains a beta-conditioned model, which {name} does "
                        f"not; methods that take it: {takers}")
    if len(values) != 2 or not values[0] < values[1]:
        raise UserError(f"method.beta_range must be LO,HI with LO < HI, got {values}")
    if not values[0] <= target.beta <= values[1]:
        raise UserError(f"the target's beta={target.beta:g} lies outside method.beta_range="
                        f"{values[0]:g},{values[1]:g}; widen the range to include it")


def _check_spin_model(config: EnergyRunConfig, target) -> None:
    name, s = config.method.name, spin_section(config)
    if name == "autoregressive" and s.kernel % 2 == 0:
        raise UserError(f"autoregressive.kernel must be odd (a centre site), got {s.kernel}")
    if name == "autoregressive" and target.num_states != 2:
        raise UserError(f"--method autoregressive models two states per site; {target.name} "
                        f"has {target.num_states}: use --method masked")
    choice(s.dtype, DTYPES, f"{name}.dtype")
    if name == "masked":
        choice(s.order, ORDERS, "masked.order")
    if s.z2 and target.h != 0:
        raise UserError(f"{name}.z2 symmetrises q under relabelling every site, which "
                        f"exp(-beta*H) is not with a field (h={target.h:g}); set {name}.z2=false")
    if target.L % s.translations or target.M % s.translations:
        raise UserError(f"{name}.translations={s.translations} averages q over translations "
                        f"by multiples of L/{s.translations} and M/{s.translations}, which needs "
                        f"a lattice whose sides it divides (got {target.L}x{target.M}): pick a "
                        f"divisor of both")
    if s.mcmc_steps and config.method.chains < 2:
        raise UserError(f"neural MCMC ({name}.mcmc_steps) needs method.chains >= 2 for "
                        f"its error bars")


def _check_method_sizes(m: MethodSection) -> None:
    """Sizes below which a method has nothing to compute (or no error bar)."""
    if m.name in ("ais", "smc") and m.steps < 2:
        raise UserError(f"method.steps must be at least 2 for {m.name} (annealing steps), "
                        f"got {m.steps}")
    if m.name == "pt" and m.temperatures < 2:
        raise UserError(f"method.temperatures must be at least 2 for pt, got {m.temperatures}")
    if m.name == "ti" and m.chains < 2:
        raise UserError(f"method.chains must be at least 2 for ti (it sets the error bar), "
                        f"got {m.chains}")
    if m.name == "smc" and m.replicas < 2:
        raise UserError("method.replicas must be at least 2 for SMC (it sets the error bar)")
    if m.name == "ti" and m.temperatures < 3:
        raise UserError("method.temperatures must be at least 3 for thermodynamic integration")
