"""Alanine dipeptide (ACE-ALA-NME, 22 atoms) through OpenMM: energies in kT with exact forces.

Needs the optional extra `heatbath[molecules]` (openmm + pdbfixer). OpenMM is imported only on
first use, so the target can be listed and described without it; the first energy, force,
dihedral or minimisation call then raises a UserError saying how to install it.

Positions are in nanometres, event_shape (22, 3), in the atom order of the hydrogen-completed
topology (`target.topology`). U is invariant under translations, so densities and log Z refer
to the zero-centre-of-mass subspace (63 dimensions, unweighted centroid, lengths in nm); the
rotations left are a compact group and leave Z finite.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.autograd.function import once_differentiable

from heatbath.core.errors import UserError
from heatbath.core import checks as check
from heatbath.targets.aldp_geometry import (N_ATOMS, OPENMM_HINT, PHI_ATOMS, PSI_ATOMS,
                                            atom_indices, complete_structure, dihedral)
from heatbath.targets.particles import ParticleTarget

SOLVENTS = ("vacuum", "implicit")
FORCEFIELDS = {"amber14": "amber14-all.xml", "amber99sbildn": "amber99sbildn.xml"}
IMPLICIT_SOLVENT_XML = "implicit/obc2.xml"   # OBC2 generalised Born, works with both files
# Reference is OpenMM's double-precision platform; CPU is single precision (about 1e-5 relative
# error in energies, finite differences of energy disagree with its forces) but ~10x faster
# with implicit solvent. Default to Reference: double-precision energies and gradients.
PLATFORMS = ("Reference", "CPU")
MINIMISER_TOLERANCE = 1e-3   # kJ/mol/nm, RMS force at which LocalEnergyMinimizer stops
MINIMISER_MAX_STEPS = 20000


def _import_openmm():
    """(openmm, app, unit), or a UserError naming the extra to install."""
    try:
        import openmm
        import pdbfixer  # noqa: F401  (the starting PDB ships inside it)
        from openmm import app, unit
    except ImportError:
        raise UserError(OPENMM_HINT) from None
    return openmm, app, unit


def _make_context(openmm, system, platform: str):
    """(platform name used, Context); CPU runs on one thread and falls back to Reference.

    The Verlet integrator is only there because a Context needs one; it is never stepped.
    """
    if platform == "CPU":
        try:
            cpu = openmm.Platform.getPlatformByName("CPU")
            return "CPU", openmm.Context(system, openmm.VerletIntegrator(0.001), cpu,
                                         {"Threads": "1"})
        except openmm.OpenMMException:
            pass   # this OpenMM build has no CPU platform
    reference = openmm.Platform.getPlatformByName("Reference")
    return "Reference", openmm.Context(system, openmm.VerletIntegrator(0.001), reference)


class OpenMMEngine:
    """One OpenMM Context for the molecule; evaluates U (kT) and ∇U (kT/nm) one configuration
    at a time (OpenMM has no batch axis)."""

    def __init__(self, solvent: str, forcefield: str, temperature: float, platform: str):
        openmm, app, unit = _import_openmm()
        self._exception = openmm.OpenMMException
        self._minimizer = openmm.LocalEnergyMinimizer
        self.topology, positions = complete_structure(app, openmm,
                                                      app.ForceField(FORCEFIELDS[forcefield]))
        files = [FORCEFIELDS[forcefield]] + ([IMPLICIT_SOLVENT_XML] if solvent == "implicit"
                                             else [])
        # No constraints and no cut-off: U is then a smooth function of all 66 coordinates.
        system = app.ForceField(*files).createSystem(
            self.topology, nonbondedMethod=app.NoCutoff, constraints=None, rigidWater=False,
            removeCMMotion=False)
        self.platform, self.context = _make_context(openmm, system, platform)
        self.kt = (unit.MOLAR_GAS_CONSTANT_R * temperature * unit.kelvin).value_in_unit(
            unit.kilojoule_per_mole)
        self._energy_unit = unit.kilojoule_per_mole
        self._force_unit = unit.kilojoule_per_mole / unit.nanometer
        self._length_unit = unit.nanometer
        self.start_positions = np.asarray(positions.value_in_unit(unit.nanometer))
        self.phi_atoms = atom_indices(self.topology, PHI_ATOMS)
        self.psi_atoms = atom_indices(self.topology, PSI_ATOMS)

    def raw(self, positions: np.ndarray, with_forces: bool = True):
        """(E in kJ/mol, forces in kJ/mol/nm or None) straight from OpenMM, no guards."""
        self.context.setPositions(positions)
        state = self.context.getState(getEnergy=True, getForces=with_forces)
        energy = state.getPotentialEnergy().value_in_unit(self._energy_unit)
        forces = (state.getForces(asNumpy=True).value_in_unit(self._force_unit)
                  if with_forces else None)
        return energy, forces

    def _one(self, positions: np.ndarray, with_gradient: bool):
        """(U, ∇U) in kT for one (22, 3) configuration; (+inf, 0) where OpenMM cannot give a
        finite energy, so a sampler simply rejects the move instead of crashing."""
        if not np.isfinite(positions).all():
            return np.inf, None
        try:
            energy, forces = self.raw(positions, with_gradient)
        except self._exception:
            return np.inf, None
        if not np.isfinite(energy):
            return np.inf, None
        return energy / self.kt, None if forces is None else -forces / self.kt

    def evaluate(self, x: torch.Tensor, with_gradient: bool):
        """Batch (N, 66) -> (U (N,), ∇U (N, 66) or None), in x's dtype and device."""
        positions = x.detach().to("cpu", torch.float64).reshape(x.shape[0], N_ATOMS, 3).numpy()
        energies = np.empty(x.shape[0])
        gradients = np.zeros((x.shape[0], N_ATOMS, 3)) if with_gradient else None
        for row, configuration in enumerate(positions):
            energies[row], gradient = self._one(configuration, with_gradient)
            if gradient is not None:
                gradients[row] = gradient
        as_tensor = lambda array: torch.from_numpy(array).to(device=x.device, dtype=x.dtype)
        return as_tensor(energies), (None if gradients is None
                                     else as_tensor(gradients.reshape(x.shape[0], -1)))

    def minimise(self) -> np.ndarray:
        """The completed PDB relaxed to a local minimum with L-BFGS, (22, 3) in nm."""
        self.context.setPositions(self.start_positions)
        self._minimizer.minimize(self.context, MINIMISER_TOLERANCE, MINIMISER_MAX_STEPS)
        state = self.context.getState(getPositions=True)
        return np.asarray(state.getPositions(asNumpy=True).value_in_unit(self._length_unit))


class _OpenMMEnergy(torch.autograd.Function):
    """U(x) whose backward reuses the gradient OpenMM computed in forward (one evaluation)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, engine: OpenMMEngine) -> torch.Tensor:
        energies, gradients = engine.evaluate(x, with_gradient=True)
        ctx.save_for_backward(gradients)
        return energies

    @staticmethod
    @once_differentiable   # OpenMM gives no Hessians
    def backward(ctx, grad_output: torch.Tensor):
        (gradients,) = ctx.saved_tensors
        return grad_output[:, None] * gradients, None


class AlanineDipeptide(ParticleTarget):
    """U(x) = E_pot(x) / k_B T for alanine dipeptide, x the 22 atom positions in nm."""

    name = "aldp"
    n_particles, spatial_dim = N_ATOMS, 3

    def __init__(self, solvent: str = "vacuum", temperature: float = 300.0,
                 forcefield: str = "amber14", platform: str = "Reference") -> None:
        self.solvent = _choice("solvent", solvent, SOLVENTS)
        self.forcefield = _choice("forcefield", forcefield, tuple(FORCEFIELDS))
        self.platform = _choice("platform", platform, PLATFORMS)
        self.temperature = check.positive("temperature", temperature, "aldp")
        super().__init__((N_ATOMS, 3), {"solvent": self.solvent,
                                          "temperature": self.temperature,
                                          "forcefield": self.forcefield,
                                          "platform": self.platform})
        self.convention = (
            f"alanine dipeptide (ACE-ALA-NME, 22 atoms: pdbfixer's alanine-dipeptide.pdb + "
            f"OpenMM hydrogens), {FORCEFIELDS[self.forcefield]}"
            f"{' + ' + IMPLICIT_SOLVENT_XML if self.solvent == 'implicit' else ', vacuum'}, "
            f"NoCutoff, no constraints (all bonds flexible: U smooth in all coordinates); "
            f"U = E_pot / (R T) in kT at T = {self.temperature:g} K; x (22, 3) in nm; "
            f"translation invariant: densities and log Z on the zero-centre-of-mass subspace "
            f"(63 dims, lengths in nm; the rotations left are compact); OpenMM "
            f"{self.platform} platform")
        self._engine: OpenMMEngine | None = None
        self._minimised: torch.Tensor | None = None

    @property
    def engine(self) -> OpenMMEngine:
        """Built on first use so listing the target needs no OpenMM."""
        if self._engine is None:
            self._engine = OpenMMEngine(self.solvent, self.forcefield, self.temperature,
                                        self.platform)
        return self._engine

    @property
    def topology(self):
        return self.engine.topology

    @property
    def kt(self) -> float:
        """k_B T in kJ/mol (the energy unit of U)."""
        return self.engine.kt

    def _energy(self, x: torch.Tensor) -> torch.Tensor:
        flat = x.reshape(x.shape[0], -1)
        if torch.is_grad_enabled() and flat.requires_grad:
            return _OpenMMEnergy.apply(flat, self.engine)
        return self.engine.evaluate(flat, with_gradient=False)[0]

    def minimised_positions(self) -> torch.Tensor:
        """(22, 3) float64 local minimum near the PDB structure (a good sampler start)."""
        if self._minimised is None:
            self._minimised = torch.from_numpy(self.engine.minimise().copy())
        return self._minimised.clone()

    def base_hint(self) -> tuple[torch.Tensor, float]:
        """(centre, scale) of a Gaussian base for annealing and chain starts: the minimised
        structure with 0.01 nm of spread (random Cartesian coordinates would overlap atoms)."""
        return self.minimised_positions(), 0.01

    def dihedrals(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Backbone (φ, ψ) in radians, each (N,) in (−π, π]; φ = C(ACE)-N-CA-C,
        ψ = N-CA-C-N(NME)."""
        positions = x.reshape(x.shape[0], N_ATOMS, 3)
        return (dihedral(positions, self.engine.phi_atoms),
                dihedral(positions, self.engine.psi_atoms))

    def observables(self, x: torch.Tensor) -> dict[str, np.ndarray]:
        """{'phi', 'psi'} per sample (radians, float64) for Ramachandran plots."""
        phi, psi = self.dihedrals(x.detach().to("cpu", torch.float64))
        return {"phi": phi.numpy(), "psi": psi.numpy()}


def _choice(name: str, value, choices: tuple[str, ...]) -> str:
    """`value` if it is one of `choices` (case-insensitive for convenience), else UserError."""
    lowered = {choice.lower(): choice for choice in choices}
    if not isinstance(value, str) or value.lower() not in lowered:
        raise UserError(f"aldp: {name} must be one of {', '.join(choices)}, got {value!r}")
    return lowered[value.lower()]
