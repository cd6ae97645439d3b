"""Categorical lattices (data.kind=lattice): integer arrays (N, L, M) of states 0..q-1.

States are labels, not numbers: they stay int64 (the masked path reads them as one-hot), and
q is the largest state + 1. Anything else is refused with one line naming the file.
"""

from __future__ import annotations

import numpy as np
import torch

from heatbath.core.errors import UserError
from heatbath.datasets.dataset import DataSet


def lattice_dataset(x: np.ndarray, c: np.ndarray | None, x0: np.ndarray | None, name: str,
                    where: str) -> DataSet:
    if c is not None or x0 is not None:
        raise UserError(f"{where} holds {'c' if c is not None else 'x0'} beside x; lattice "
                        f"models are unconditional: save only x")
    if x.dtype.kind not in "biuf":
        raise UserError(f"x in {where} has dtype {x.dtype}; data.kind=lattice needs integer "
                        f"states 0..q-1")
    if x.ndim != 3 or x.size == 0:
        raise UserError(f"x in {where} has shape {x.shape}; data.kind=lattice needs (N, L, M) "
                        f"integer states")
    if x.dtype.kind == "f" and not (np.isfinite(x).all() and (x == np.round(x)).all()):
        raise UserError(f"x in {where} has non-integer values; data.kind=lattice needs integer "
                        f"states 0..q-1")
    states = x.astype(np.int64)
    if states.min() < 0:
        raise UserError(f"x in {where} has negative states (min {states.min()}); relabel them "
                        f"0..q-1")
    q = int(states.max()) + 1
    if q < 2:
        raise UserError(f"x in {where} has a single state on every site (q = 1); a lattice "
                        f"model needs q >= 2 states")
    return DataSet(x=torch.from_numpy(states), name=name, kind="lattice", num_states=q)
