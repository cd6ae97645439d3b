"""Estimates of an energy run: log Z, free energy per site, ESS, energy, magnetisation.

Importance-weighted methods (flow, snf, ais, smc) give self-normalised observables, Kish ESS
and a weight-tail diagnostic; Markov-chain methods (mcmc, pt, ti) give chain-mean estimates
whose errors come from independent chains, and an ESS from the integrated autocorrelation time.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from heatbath.core.errors import UserError
from heatbath.core.estimate import Estimate
from heatbath.estimators.autocorr import chain_mean_estimate, mcmc_ess
from heatbath.estimators.importance import (kish_ess, log_z_importance, self_normalized,
                                            self_normalized_variance)
from heatbath.estimators.tail import weight_tail_diagnostic
from heatbath.estimators.profiles import chain_free_energy_profile, free_energy_profile
from heatbath.core.records import EnergyResultRecord
from heatbath.energy.run import load_energy_run


# The unit and definition of every key `estimate --json` can print for an energy run.
ENERGY_CONVENTIONS = {
    "log_z": "ln Z of exp(-U), U in kT (natural log), Z an integral over the state space's "
             "measure (see 'measure')",
    "measure": "the measure Z and every density refer to (particles: the zero-centre-of-mass "
               "subspace; lattices of spins: counting measure)",
    "delta_log_z": "ln Z(beta) - ln Z(from_beta * beta), natural log",
    "free_energy_per_site": "-ln Z / N (dimensionless, beta*F/N; N = lattice sites)",
    "log_z_per_site": "ln Z / N (dimensionless)",
    "energy": "mean reduced energy <U>, U = beta*H in kT, total over the system",
    "energy_per_site": "<U> / N in kT (the unit of energy, per site)",
    "heat_capacity": "Var(U) in units of k_B, total",
    "heat_capacity_per_site": "Var(U) / N in units of k_B",
    "abs_magnetisation": "<|m|>, m = mean spin in [-1, 1] (Ising); Potts: the order parameter "
                         "m = (q max_k n_k / N - 1) / (q - 1) in [0, 1], n_k sites in state k",
    "ess": "effective sample size as a fraction of n (weighted: Kish (sum w)^2 / (n sum w^2); "
           "chains: n / tau_int)",
    "forward_ess": "Kish ESS fraction of w = p/q on exact target samples (flows)",
    "tail": "Pareto k-hat of the largest importance weights (reliable: k-hat < 0.7)",
    "energy_evals": "configurations whose energy was evaluated (a spin sweep of one "
                    "configuration counts as one)",
    "n": "samples the estimates use",
    "energy_w2": "W2 (not squared; W2^2 in extra.w2_squared) between the energies of the "
                 "method's unweighted samples and those of the training samples it drew from "
                 "the energy, kT; exact 1-D Wasserstein-2 of the empirical distributions",
    "energy_w2_reweighted": "the same W2 with the method's samples reweighted: their "
                            "self-normalised importance weights make a weighted empirical "
                            "distribution of U (extra.kish_ess its effective size), kT",
    "distance_w2": "W2 (not squared) between the pooled interparticle-distance histograms "
                   "(all pairs i<j) of the unweighted samples and of up to 5000 training "
                   "samples, in the target's length unit",
    "free_energy_profiles": "beta*F(v) = -ln P(v) in nats, not shifted, of the order "
                            "parameter m (Ising: the signed mean spin; Potts: as in "
                            "abs_magnetisation) and of U/N (kT per site) over their distinct "
                            "values; P the self-normalised weight of the samples at v "
                            "(stderr: delta method), or for Markov chains the mean over "
                            "chains of each chain's fraction of time at v (stderr: spread of "
                            "the chains); only visited values; 'exact' (enumeration of small "
                            "lattices) at the same values",
    "neural_mcmc": "independence Metropolis-Hastings chains whose proposals are the trained "
                   "model's draws, accepted with min(1, w'/w), w = exp(-U)/q: 'acceptance' the "
                   "fraction of accepted proposals after burn-in; 'tau_int' integrated "
                   "autocorrelation times in chain steps (Sokal window c = 5 on the "
                   "autocorrelation averaged over chains) of U and of |m| (spins) or |M|, "
                   "M = sum_x phi_x (lattice fields: 'abs_total_magnetisation'), and "
                   "'tau_int_stderr' (Madras-Sokal: var = 2(2W+1) tau^2 / (chains*steps), W "
                   "the window); 'ess' chains*steps/tau_int of each; chain means 'energy' "
                   "(<U>, kT, total), 'abs_magnetisation' (<|m|>) or 'abs_total_magnetisation' "
                   "(<|M|>) with stderr from the spread of the chains' means; 'energy_evals' "
                   "the proposals' energy evaluations; not used by the importance-weighted keys",
    "latent_hmc": "HMC in a flow's latent space: z with x = T(z), U_latent(z) = U(T(z)) - "
                  "log|det dT/dz|, unit mass, 'n_leapfrog' leapfrog steps of 'step_size' "
                  "(tuned by dual averaging during burn-in), exact Metropolis test; "
                  "'acceptance' after burn-in; 'tau_int', 'ess' and the chain means as in "
                  "neural_mcmc, in HMC trajectories; 'energy_evals' and 'force_evals' of U and "
                  "grad U, burn-in included; not used by the importance-weighted keys",
    "weights": "what the importance weights are: the density or path measure q that w = "
               "exp(-U)/q divides by (present where it is not the returned samples' own "
               "density, e.g. idem: a CNF refit to the sampler's draws)",
    "unadjusted_kernel": "present when the MCMC kernel has no accept/reject (BAOAB): estimates "
                         "carry a step-size bias that the error bars do not include",
}


def _weighted_estimates(log_w, energy, seed: int) -> tuple[dict, dict]:
    lw = log_w.numpy()
    out = {"log_z_is": log_z_importance(lw), "ess": kish_ess(lw),
           "energy": self_normalized(energy.numpy(), lw, seed=seed),
           "heat_capacity": self_normalized_variance(energy.numpy(), lw, seed=seed)}
    tail = weight_tail_diagnostic(lw)
    return out, {"k_hat": float(tail.k_hat), "reliable": bool(tail.reliable),
                 "max_weight_fraction": float(tail.max_weight_fraction),
                 "message": tail.message}


def _chain_estimates(arrays: dict) -> dict:
    traces = arrays["energy_traces"]
    # Var(U) about the pooled mean, each chain's mean square deviation an independent
    # replicate: the error bar comes from the spread of the chains, as for ⟨U⟩
    squares = (traces - traces.mean()) ** 2
    out = {"ess": mcmc_ess(traces), "energy": chain_mean_estimate(traces),
           "heat_capacity": chain_mean_estimate(squares)}
    if "abs_magnetisation_traces" in arrays:
        out["abs_magnetisation"] = chain_mean_estimate(arrays["abs_magnetisation_traces"])
    return out


@dataclass(frozen=True)
class EnergyEstimates:
    """The estimates of an energy run, typed; `to_json` is what `estimate --json` prints (units
    in ENERGY_CONVENTIONS). Absent quantities are None, never a number that is not defined."""

    n: int
    energy_evals: int
    ess: Estimate
    energy: Estimate
    log_z: Estimate | None = None
    delta_log_z: Estimate | None = None       # ln Z(β) − ln Z(from_beta·β)
    from_beta: float | None = None
    free_energy_per_site: Estimate | None = None
    abs_magnetisation: Estimate | None = None
    heat_capacity: Estimate | None = None     # Var(U), k_B units
    heat_capacity_per_site: Estimate | None = None
    tail: dict | None = None                  # Pareto k̂ of the weights (weighted methods)
    exact: dict = field(default_factory=dict)
    forward_ess: dict | None = None
    unadjusted_kernel: str | None = None
    measure: str = ""                         # the state space's measure that Z refers to
    energy_w2: Estimate | None = None         # vs the training samples' energies (cnf)
    energy_w2_reweighted: Estimate | None = None   # the same after importance reweighting
    distance_w2: Estimate | None = None       # vs their pair distances (cnf on particles)
    profiles: dict | None = None              # βF(m), βF(U/N): weighted spin-lattice runs
    neural_mcmc: dict | None = None           # the learned model as an independence proposal
    latent_hmc: dict | None = None            # HMC in a flow's latent space
    weights: str | None = None                # where log_w comes from (diagnostics' log_w)

    def to_json(self) -> dict:
        report = {}
        if self.delta_log_z is not None:
            report["delta_log_z"] = {**self.delta_log_z.to_json(), "from_beta": self.from_beta}
        for key in ("log_z", "free_energy_per_site", "ess", "energy", "heat_capacity",
                    "heat_capacity_per_site", "abs_magnetisation", "energy_w2",
                    "energy_w2_reweighted", "distance_w2"):
            if getattr(self, key) is not None:
                report[key] = getattr(self, key).to_json()
        if self.exact:
            report["exact"] = json.loads(json.dumps(self.exact, default=str))
        if self.tail is not None:
            report["tail"] = self.tail
        if self.profiles is not None:
            report["free_energy_profiles"] = self.profiles
        report.update(energy_evals=self.energy_evals, n=self.n)
        if self.log_z is not None or self.delta_log_z is not None:
            report["measure"] = self.measure
        if self.forward_ess is not None:
            report["forward_ess"] = self.forward_ess
        for key in ("neural_mcmc", "latent_hmc"):
            if getattr(self, key) is not None:
                report[key] = getattr(self, key)
        if self.weights is not None:
            report["weights"] = self.weights
        if self.unadjusted_kernel is not None:
            report["unadjusted_kernel"] = {
                "kernel": self.unadjusted_kernel,
                "warning": "no Metropolis correction: the step-size bias is in no error bar; "
                           "rerun with half method.step_size to see its size, or use hmc/mala"}
        report["conventions"] = {key: text for key, text in ENERGY_CONVENTIONS.items()
                                 if key in report or key in report.get("exact", {})}
        return report


def _stored_estimate(record: dict | None, n: int) -> Estimate | None:
    if record is None:
        return None
    return Estimate(record["value"], record["stderr"], n, ci95=tuple(record["ci95"]))


def estimate_energy(target, x, log_w, energy, arrays: dict, stored: EnergyResultRecord,
                    n: int | None = None, seed: int = 0) -> EnergyEstimates:
    """Estimates from an energy method's samples (the first n of them, if n is given)."""
    if n is not None:
        x, log_w, energy = x[:n], log_w[:n], energy[:n]
    log_w = torch.as_tensor(log_w, dtype=torch.float64)
    energy = torch.as_tensor(energy, dtype=torch.float64)
    tail = None
    if stored.weighted:
        found, tail = _weighted_estimates(log_w, energy, seed)
        if target.discrete:
            m = target.magnetisation(torch.as_tensor(x)).double()
            found["abs_magnetisation"] = self_normalized(m.abs().numpy(), log_w.numpy(),
                                                         seed=seed)
            found["profiles"] = spin_profiles(target, m, energy, log_w)
        log_z = found.pop("log_z_is")
        if stored.log_z is not None and n is None:   # SMC/AIS's own estimate (replica-aware)
            log_z = _stored_estimate(stored.log_z, len(log_w))
    else:
        found = _chain_estimates(arrays)
        log_z = _stored_estimate(stored.log_z, len(log_w))
        chains = arrays["energy_traces"].shape[0] if "energy_traces" in arrays else 0
        if target.discrete and n is None and chains >= 2:   # the error bar needs two chains
            m = target.magnetisation(torch.as_tensor(x)).double()   # stored chain-major
            found["profiles"] = spin_profiles(target, m.reshape(chains, -1),
                                              energy.reshape(chains, -1), None)
    if "reference_energy" in arrays:
        weights = log_w if stored.weighted else None
        found.update(_reference_distances(target, x, energy, weights, arrays, seed))
    return _typed(target, found, log_z, tail, len(log_w), stored.diagnostics)


def spin_profiles(target, m: torch.Tensor, energy: torch.Tensor,
                  log_w: torch.Tensor | None) -> dict:
    """βF(m) and βF(U/N) from weighted spin configurations (log_w), or from (chains, steps)
    Markov-chain values (log_w None), with the exact values beside them where the target
    enumerates its states."""
    exact = target.exact_profiles() or {}
    out = {}
    for name, values in (("m", m), ("energy_per_site", energy / target.space.sites)):
        if log_w is None:
            profile = chain_free_energy_profile(values.numpy()).to_json()
        else:
            profile = free_energy_profile(values.numpy(), log_w.numpy()).to_json()
        if name in exact:
            support, beta_f = exact[name]
            lookup = dict(zip(np.round(support, 9).tolist(), beta_f.tolist()))
            profile["exact"] = [lookup.get(v) for v in np.round(profile["values"], 9).tolist()]
        out[name] = profile
    return out


def _reference_distances(target, x, energy, log_w, arrays: dict, seed: int) -> dict:
    """W2s between the samples (unweighted, and reweighted by log_w where the method has
    weights) and the training samples a learned sampler drew."""
    from heatbath.estimators.particles import distance_w2, energy_w2

    reference = arrays["reference_energy"]
    out = {"energy_w2": energy_w2(energy, reference, seed=seed)}
    if log_w is not None:
        out["energy_w2_reweighted"] = energy_w2(energy, reference, log_weights_a=log_w,
                                                seed=seed)
    if target.space.kind == "centred_particles" and "reference_x" in arrays:
        out["distance_w2"] = distance_w2(torch.as_tensor(x), arrays["reference_x"], seed=seed)
    return out


def _per_site(total: Estimate | None, sites: int) -> Estimate | None:
    """A total divided by the number of sites (lattices only)."""
    if total is None or not sites:
        return None
    return Estimate(total.value / sites, total.stderr / sites, total.n,
                    ci95=(total.ci95[0] / sites, total.ci95[1] / sites))


def _typed(target, found: dict, log_z, tail, n: int, diagnostics: dict) -> EnergyEstimates:
    sites = target.space.sites      # lattices only: per-site quantities
    delta_from = diagnostics.get("delta_from_beta")
    per_site = None
    if log_z is not None and delta_from is None and sites:
        per_site = Estimate(-log_z.value / sites, log_z.stderr / sites, n,
                            ci95=(-log_z.ci95[1] / sites, -log_z.ci95[0] / sites))
    exact = target.exact.to_json()
    if sites and exact.get("log_z") is not None:
        exact["free_energy_per_site"] = -exact["log_z"] / sites
    relative = delta_from is not None   # annealed from chains at another β with unknown ln Z
    return EnergyEstimates(
        n=n, energy_evals=int(diagnostics.get("energy_evals", 0)), ess=found["ess"],
        energy=found["energy"], log_z=None if relative else log_z,
        delta_log_z=log_z if relative else None, from_beta=delta_from,
        free_energy_per_site=per_site, abs_magnetisation=found.get("abs_magnetisation"),
        heat_capacity=found.get("heat_capacity"),
        heat_capacity_per_site=_per_site(found.get("heat_capacity"), sites),
        tail=tail, exact=exact, forward_ess=diagnostics.get("forward_ess"),
        unadjusted_kernel=diagnostics.get("unadjusted_kernel"), measure=target.space.measure,
        energy_w2=found.get("energy_w2"), distance_w2=found.get("distance_w2"),
        energy_w2_reweighted=found.get("energy_w2_reweighted"),
        profiles=found.get("profiles"), neural_mcmc=diagnostics.get("neural_mcmc"),
        latent_hmc=diagnostics.get("latent_hmc"), weights=diagnostics.get("log_w"))


def estimate_energy_result(target, x, log_w, energy, arrays: dict, stored: EnergyResultRecord,
                           n: int | None, seed: int = 0) -> dict:
    """The JSON-ready estimate of an energy run (see the module docstring)."""
    return estimate_energy(target, x, log_w, energy, arrays, stored, n, seed).to_json()


def estimate_energy_run(run_dir: Path, n: int | None = None, seed: int = 0,
                        observables: list[str] | None = None,
                        reference: Path | None = None) -> dict:
    """`heatbath estimate RUN --json`; `reference`: another run of the same target whose
    free-energy profiles are put beside this run's (`energy.reference`)."""
    info, target, arrays, stored = load_energy_run(run_dir)
    if n is not None and n > len(arrays["log_w"]):
        raise UserError(f"-n {n} is more than the run's {len(arrays['log_w'])} samples; "
                        f"use -n {len(arrays['log_w'])} or fewer")
    report = estimate_energy_result(target, torch.as_tensor(arrays["x"]),
                                    torch.as_tensor(arrays["log_w"]),
                                    torch.as_tensor(arrays["energy"]), arrays, stored, n, seed)
    if observables:
        from heatbath.energy.observables import estimate_observables

        report["observables"] = estimate_observables(observables, arrays,
                                                     stored.weighted, seed)
    if reference is not None:
        from heatbath.energy.reference import with_reference

        report = with_reference(report, Path(run_dir), Path(reference), target, seed)
    return report
