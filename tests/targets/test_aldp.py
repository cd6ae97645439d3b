"""Alanine dipeptide through OpenMM: energies, exact gradients, dihedrals, registry specs."""

import json
import math
import sys

import numpy as np
import pytest
import torch

pytest.importorskip("openmm")
pytest.importorskip("pdbfixer")

from heatbath.core.errors import UserError  # noqa: E402
from heatbath.targets.aldp import AlanineDipeptide  # noqa: E402
from heatbath.targets.aldp_geometry import dihedral  # noqa: E402
from heatbath.targets.registry import build_target  # noqa: E402

R_KJ_PER_MOL_K = 8.314462618e-3   # CODATA 2018 molar gas constant


@pytest.fixture(scope="module")
def vacuum():
    return AlanineDipeptide()


@pytest.fixture(scope="module")
def implicit():
    return AlanineDipeptide(solvent="implicit")


def _perturbed(target, n, scale=0.002, seed=0):
    """n configurations a thermal-sized jiggle (~0.002 nm) away from the minimum."""
    generator = torch.Generator().manual_seed(seed)
    x0 = target.minimised_positions()
    return x0 + scale * torch.randn(n, *x0.shape, generator=generator, dtype=torch.float64)


def _openmm(target, x):
    """OpenMM's own (energy kJ/mol, forces kJ/mol/nm) for one flattened configuration."""
    return target.engine.raw(x.reshape(22, 3).numpy())


def test_energy_at_minimum_is_openmm_energy_over_kt(vacuum):
    x0 = vacuum.minimised_positions()
    assert x0.shape == (22, 3) and x0.dtype == torch.float64
    assert vacuum.kt == pytest.approx(R_KJ_PER_MOL_K * 300.0, rel=1e-6)
    energy = vacuum.energy(x0[None])
    assert energy.dtype == torch.float64 and torch.isfinite(energy).all()
    assert energy.item() == pytest.approx(_openmm(vacuum, x0)[0] / vacuum.kt, rel=1e-8)
    hot = AlanineDipeptide(temperature=600.0)   # U scales as 1/T
    assert hot.energy(x0[None]).item() == pytest.approx(energy.item() / 2, rel=1e-8)
    assert vacuum.sample_exact(3, torch.Generator()) is None


@pytest.mark.parametrize("name", ["vacuum", "implicit"])
def test_gradient_is_openmm_force_and_finite_difference(name, request):
    target = request.getfixturevalue(name)
    x = _perturbed(target, 1)
    energy, force = target.energy_and_force(x)
    openmm_energy, openmm_force = _openmm(target, x[0])
    assert energy.item() == pytest.approx(openmm_energy / target.kt, rel=1e-8)
    assert torch.allclose(force[0], torch.from_numpy(openmm_force) / target.kt,
                          rtol=1e-12, atol=0)
    direction = torch.randn(22, 3, generator=torch.Generator().manual_seed(1),
                            dtype=torch.float64)
    direction /= direction.norm()
    step = 1e-6
    ends = target.energy(torch.stack([x[0] + step * direction, x[0] - step * direction]))
    finite_difference = (ends[0] - ends[1]).item() / (2 * step)
    assert finite_difference == pytest.approx(-(force[0] * direction).sum().item(), rel=1e-4)


def test_batch_equals_one_by_one(vacuum):
    x = _perturbed(vacuum, 4)
    energies, forces = vacuum.energy_and_force(x)
    for row in range(4):
        energy, force = vacuum.energy_and_force(x[row:row + 1])
        assert torch.equal(energies[row:row + 1], energy)
        assert torch.equal(forces[row:row + 1], force)
    assert torch.equal(vacuum.energy(x), energies)   # the no-gradient path agrees too


def test_counters_count(vacuum):
    vacuum.reset_counters()
    x = _perturbed(vacuum, 3)
    vacuum.energy(x)
    assert (vacuum.energy_evals, vacuum.force_evals) == (3, 0)
    vacuum.energy_and_force(x[:2])
    assert (vacuum.energy_evals, vacuum.force_evals) == (5, 2)


def test_implicit_solvent_changes_the_energy(vacuum, implicit):
    x0 = vacuum.minimised_positions()
    assert abs(implicit.energy(x0[None]).item() - vacuum.energy(x0[None]).item()) > 1.0


def test_non_finite_or_overlapping_positions_give_infinite_energy(vacuum):
    x = _perturbed(vacuum, 3)
    x[0, 5] = float("nan")
    x[1] = 0.0                       # every atom on top of every other
    energies, forces = vacuum.energy_and_force(x)
    assert torch.isinf(energies[:2]).all() and (energies[:2] > 0).all()
    assert (forces[:2] == 0).all() and torch.isfinite(energies[2])


def test_float32_in_float32_out(vacuum):
    x = _perturbed(vacuum, 2).float()
    energy, force = vacuum.energy_and_force(x)
    assert energy.dtype == torch.float32 and force.dtype == torch.float32


def _numpy_dihedral(p0, p1, p2, p3):
    """Independent (projection) formula for the IUPAC dihedral angle."""
    b0, b1, b2 = p0 - p1, p2 - p1, p3 - p2
    b1 = b1 / np.linalg.norm(b1)
    v, w = b0 - (b0 @ b1) * b1, b2 - (b2 @ b1) * b1
    return math.atan2(np.cross(b1, v) @ w, v @ w)


def _index(topology, residue, atom):
    (found,) = [a.index for a in topology.atoms() if a.residue.name == residue and a.name == atom]
    return found


def test_dihedrals_match_direct_computation(vacuum):
    x0 = vacuum.minimised_positions()
    positions = x0.reshape(22, 3).numpy()
    names = {"phi": [("ACE", "C"), ("ALA", "N"), ("ALA", "CA"), ("ALA", "C")],
             "psi": [("ALA", "N"), ("ALA", "CA"), ("ALA", "C"), ("NME", "N")]}
    phi, psi = vacuum.dihedrals(x0[None])
    for angle, key in ((phi, "phi"), (psi, "psi")):
        atoms = [positions[_index(vacuum.topology, *pair)] for pair in names[key]]
        assert angle.item() == pytest.approx(_numpy_dihedral(*atoms), abs=1e-12)
    many = _perturbed(vacuum, 50, scale=0.3)
    observables = vacuum.observables(many)
    for values in observables.values():
        assert values.shape == (50,) and values.dtype == np.float64
        assert (values > -math.pi).all() and (values <= math.pi).all()
    assert np.allclose(observables["phi"], vacuum.dihedrals(many)[0].numpy(), rtol=0, atol=0)


def test_trans_dihedral_is_plus_pi():
    trans = torch.tensor([[[0.0, 1.0, 0.0], [0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [1.0, -1.0, 0.0]]],
                         dtype=torch.float64)
    assert dihedral(trans, (0, 1, 2, 3)).item() == pytest.approx(math.pi, abs=1e-15)
    assert dihedral(trans, (0, 1, 2, 3)).item() > 0


def test_registry_specs():
    target = build_target("aldp:solvent=implicit,temperature=310,forcefield=amber99sbildn")
    assert isinstance(target, AlanineDipeptide) and target.event_shape == (22, 3)
    assert (target.solvent, target.temperature, target.forcefield) == ("implicit", 310.0,
                                                                       "amber99sbildn")
    json.dumps(target.describe())
    with pytest.raises(UserError, match="solvent must be one of vacuum, implicit"):
        build_target("aldp:solvent=water")
    with pytest.raises(UserError, match="temperature must be > 0"):
        build_target("aldp:temperature=-5")
    with pytest.raises(UserError, match="forcefield must be one of amber14, amber99sbildn"):
        build_target("aldp:forcefield=charmm36")


def test_missing_openmm_is_a_user_error(monkeypatch):
    target = AlanineDipeptide()            # building the target itself needs no OpenMM
    monkeypatch.setitem(sys.modules, "openmm", None)
    with pytest.raises(UserError, match=r"pip install 'heatbath\[molecules\]'"):
        target.energy(torch.zeros(1, 22, 3, dtype=torch.float64))
