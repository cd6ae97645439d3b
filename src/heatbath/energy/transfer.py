"""`heatbath sample RUN -n N --target SPEC --out NEW_RUN`: a trained model drawn for another β or
lattice size of its target's family, written as a new energy run.

Only methods whose saved model runs at any size and knows the β it was trained over transfer
(`Method.transfers`: the spin models, autoregressive and masked). Its weights log w = −U − log q
are exact on any lattice, so the new run's estimates are unbiased wherever the draw lands and
its ESS says how well the model carries over. Outside the β the model was trained over, q is an untested
extrapolation: that is refused rather than reported with a collapsed ESS.

The new run is written by the same code as `fit`'s (`write_energy_run`), so `estimate`,
`report`, `--versus` and `sample` read it like any other; it keeps a copy of the weights.
"""

from __future__ import annotations

import copy
import math
from pathlib import Path

import torch

from heatbath.core.errors import UserError
from heatbath.core.runs import check_out_dir
from heatbath.energy.fit import write_energy_run
from heatbath.energy.methods import METHODS
from heatbath.energy.methods.spin_models import trained_betas
from heatbath.energy.results import EnergyResult
from heatbath.energy.run import energy_run_target
from heatbath.energy.sample import learned_run
from heatbath.energy.validate import validate
from heatbath.targets.registry import build_target

SAMPLE_KEYS = ("x", "log_w", "energy")


def transfer_energy_run(run_dir: Path, spec: str, *, n: int, out: Path, seed: int = 0) -> Path:
    """Draw n weighted samples of `spec` from the model of `run_dir` into the new run `out`."""
    run_dir, out = Path(run_dir), Path(out)
    check_out_dir(out, " (a transfer writes a new run; nothing is overwritten)")
    info, method, config = learned_run(run_dir, n)
    if not method.transfers:
        takers = ", ".join(name for name, m in METHODS.items() if m.transfers)
        raise UserError(f"{run_dir} ran '{info.method}', whose model is tied to its target's "
                        f"size and temperature; --target draws for another lattice only from "
                        f"{takers} runs (use heatbath sample {run_dir} without --target, or fit "
                        f"a new run)")
    source, target = energy_run_target(run_dir, info), build_target(spec)
    _check_same_family(run_dir, source, target)
    betas = trained_betas(config, source)
    _check_beta(run_dir, target.beta, betas)
    moved = copy.deepcopy(config)
    moved.target.spec, moved.method.samples = spec, n
    validate(moved, target)
    weights = run_dir / "model.safetensors"
    target.reset_counters()
    drawn = method.redraw(moved, target, target, weights, n, torch.Generator().manual_seed(seed))
    result = EnergyResult(drawn["x"], drawn["log_w"], drawn["energy"], weighted=True,
                          diagnostics={"energy_evals": target.energy_evals},
                          arrays={k: v for k, v in drawn.items() if k not in SAMPLE_KEYS})
    origin = {"run": str(run_dir.resolve()), "spec": info.spec, "beta": source.beta,
              "L": source.L, "M": source.M, "trained_betas": list(betas), "seed": seed}
    return write_energy_run(out, moved, target, result, model_file=weights,
                            transferred_from=origin)


def _check_same_family(run_dir: Path, source, target) -> None:
    """Another β, L or M of the same lattice: the model learned these couplings only."""
    if target.name != source.name:
        raise UserError(f"{run_dir} learned {source.name}; --target must be {source.name} with "
                        f"another beta, L or M, got {target.name}")
    if target.num_states != source.num_states:
        raise UserError(f"{run_dir} learned {source.num_states} states per site; --target must "
                        f"keep them (got {target.num_states})")
    if (target.J, target.h) != (source.J, source.h):
        raise UserError(f"{run_dir} was trained at J={source.J:g}, h={source.h:g}; --target may "
                        f"change only beta, L and M (got J={target.J:g}, h={target.h:g})")


def _check_beta(run_dir: Path, beta: float, betas: tuple[float, float]) -> None:
    low, high = betas
    if low == high:
        if not math.isclose(beta, low, rel_tol=1e-9):
            raise UserError(f"the model of {run_dir} was trained at beta={low:g} only (it is "
                            f"not conditioned on beta), so --target must keep beta={low:g}; "
                            f"fit with --set method.beta_range=LO,HI for a model that covers "
                            f"a range")
    elif not low <= beta <= high:
        raise UserError(f"beta={beta:g} lies outside the range the model of {run_dir} was "
                        f"trained over, beta_range={low:g},{high:g}; choose a beta inside it")
