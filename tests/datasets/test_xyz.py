"""(Extended) XYZ files are particle data sets, read through ASE."""

import sys

import numpy as np
import pytest

from heatbath.core.errors import UserError
from heatbath.datasets.sources import load_source

ase_io = pytest.importorskip("ase.io")


def _write(path, frames):
    from ase import Atoms

    ase_io.write(str(path), [Atoms("Ar" * len(f), positions=f) for f in frames])


def test_xyz_frames_become_centred_particle_configurations(tmp_path):
    rng = np.random.default_rng(0)
    frames = rng.normal(size=(5, 7, 3)) + 10.0
    _write(tmp_path / "argon.xyz", frames)
    data = load_source(str(tmp_path / "argon.xyz"))
    assert data.kind == "particles" and data.x.shape == (5, 7, 3)
    expected = frames - frames.mean(axis=1, keepdims=True)
    assert np.allclose(data.x.numpy(), expected, atol=1e-5)


def test_frames_of_different_sizes_and_missing_ase_are_one_line_errors(tmp_path, monkeypatch):
    rng = np.random.default_rng(1)
    _write(tmp_path / "mixed.xyz", [rng.normal(size=(3, 3)), rng.normal(size=(4, 3))])
    with pytest.raises(UserError, match="same number of atoms"):
        load_source(str(tmp_path / "mixed.xyz"))
    monkeypatch.setitem(sys.modules, "ase.io", None)      # as if ASE were not installed
    with pytest.raises(UserError, match=r"heatbath\[particles\]"):
        load_source(str(tmp_path / "mixed.xyz"))
