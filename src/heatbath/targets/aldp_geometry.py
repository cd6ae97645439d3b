"""Alanine dipeptide structure: the starting PDB, its hydrogens, and backbone dihedrals.

The heavy-atom ACE-ALA-NME structure is the one pdbfixer ships as test data
(`pdbfixer/tests/data/alanine-dipeptide.pdb`, 10 heavy atoms); OpenMM's Modeller completes it
to the 22-atom molecule. Dihedrals use the IUPAC sign convention (as MDTraj and OpenMM do).
"""

from __future__ import annotations

import importlib.resources
import math
import random
from contextlib import contextmanager

import torch

from heatbath.core.errors import UserError

PDB_PACKAGE = "pdbfixer"
PDB_RELATIVE_PATH = ("tests", "data", "alanine-dipeptide.pdb")
N_ATOMS = 22
OPENMM_HINT = "the aldp target needs OpenMM: pip install 'heatbath[molecules]'"

# Backbone dihedrals as four (residue name, atom name) pairs, found in the topology by name.
PHI_ATOMS = (("ACE", "C"), ("ALA", "N"), ("ALA", "CA"), ("ALA", "C"))
PSI_ATOMS = (("ALA", "N"), ("ALA", "CA"), ("ALA", "C"), ("NME", "N"))

# Modeller.addHydrogens draws starting positions from Python's global `random`; a fixed seed
# makes the completed structure (and hence the minimised one) the same on every run.
HYDROGEN_SEED = 20240601


def pdb_path() -> str:
    """Path of the heavy-atom alanine dipeptide PDB inside the installed pdbfixer."""
    try:
        location = importlib.resources.files(PDB_PACKAGE).joinpath(*PDB_RELATIVE_PATH)
    except ModuleNotFoundError:
        raise UserError(OPENMM_HINT) from None
    if not location.is_file():
        raise UserError(f"this pdbfixer does not ship {'/'.join(PDB_RELATIVE_PATH)}; "
                        f"install pdbfixer>=1.9: pip install 'heatbath[molecules]'")
    return str(location)


@contextmanager
def _seeded_python_random(seed: int):
    """Seed Python's global `random` for the block, then put the caller's state back."""
    saved = random.getstate()
    random.seed(seed)
    try:
        yield
    finally:
        random.setstate(saved)


def complete_structure(app, openmm, forcefield):
    """(topology, positions) of the PDB with hydrogens added for `forcefield`, reproducibly."""
    pdb = app.PDBFile(pdb_path())
    modeller = app.Modeller(pdb.topology, pdb.positions)
    reference = openmm.Platform.getPlatformByName("Reference")   # deterministic H relaxation
    with _seeded_python_random(HYDROGEN_SEED):
        modeller.addHydrogens(forcefield, platform=reference)
    if modeller.topology.getNumAtoms() != N_ATOMS:
        raise UserError(f"alanine dipeptide should have {N_ATOMS} atoms after adding hydrogens, "
                        f"got {modeller.topology.getNumAtoms()}; check the pdbfixer version")
    return modeller.topology, modeller.positions


def atom_indices(topology, named_atoms) -> tuple[int, ...]:
    """Indices of the given (residue name, atom name) pairs; each must occur exactly once."""
    lookup: dict[tuple[str, str], list[int]] = {}
    for atom in topology.atoms():
        lookup.setdefault((atom.residue.name, atom.name), []).append(atom.index)
    indices = []
    for key in named_atoms:
        found = lookup.get(key, [])
        if len(found) != 1:
            raise UserError(f"expected one atom {key[1]} in residue {key[0]}, found {len(found)}")
        indices.append(found[0])
    return tuple(indices)


def dihedral(positions: torch.Tensor, quadruple: tuple[int, int, int, int]) -> torch.Tensor:
    """Dihedral angle in (−π, π] for positions (N, n_atoms, 3) and four atom indices -> (N,).

    φ = atan2(|b2| b1·(b2×b3), (b1×b2)·(b2×b3)) with b_k the bond vectors (IUPAC sign).
    """
    p0, p1, p2, p3 = (positions[:, i] for i in quadruple)
    b1, b2, b3 = p1 - p0, p2 - p1, p3 - p2
    n1, n2 = torch.linalg.cross(b1, b2), torch.linalg.cross(b2, b3)
    y = b2.norm(dim=-1) * (b1 * n2).sum(dim=-1)
    x = (n1 * n2).sum(dim=-1)
    angle = torch.atan2(y, x)
    # atan2 returns −π for y = −0.0; the documented range is half-open at −π.
    return torch.where(angle <= -math.pi, torch.full_like(angle, math.pi), angle)
