"""Checkpoints as safetensors + JSON: weights, EMA, optimiser moments and RNG state.

Everything needed for `--resume` to continue to exactly the result of an uninterrupted run.
Nothing is pickled: tensors go to safetensors, scalars to JSON.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from heatbath.core.errors import UserError
from heatbath.core.runs import atomic_save_tensors, atomic_write_json, load_tensors

STATE_TENSORS = "checkpoint/state.safetensors"
STATE_JSON = "checkpoint/state.json"


def save_checkpoint(run_dir: Path, step: int, net, ema, optimizer, generator_states: list,
                    extra: dict) -> None:
    tensors = {f"net.{k}": v for k, v in net.state_dict().items()}
    tensors.update({f"ema.{k}": v for k, v in ema.state_dict().items()})
    for index, state in optimizer.state_dict()["state"].items():
        for key, value in state.items():
            tensors[f"opt.{index}.{key}"] = torch.as_tensor(value)
    for rank, state in enumerate(generator_states):
        tensors[f"rng.{rank}"] = state
    # The tensors carry their own step: a crash between the two writes leaves the previous
    # JSON beside the newer tensors, and resuming must count from the tensors' step.
    tensors["step"] = torch.tensor(step, dtype=torch.int64)
    tensors["ema_updates"] = torch.tensor(ema.num_updates, dtype=torch.int64)
    atomic_save_tensors(Path(run_dir) / STATE_TENSORS, tensors)
    atomic_write_json(Path(run_dir) / STATE_JSON,
                      {"step": step, "ema_updates": ema.num_updates, **extra})


def load_checkpoint(run_dir: Path, net, ema, optimizer) -> tuple[int, list, dict]:
    """Restore in place; returns (step, generator states per rank, the JSON extras)."""
    run_dir = Path(run_dir)
    json_path = run_dir / STATE_JSON
    if not json_path.is_file():
        raise UserError(f"{run_dir} has no checkpoint to resume from ({STATE_JSON} missing)")
    try:
        meta = json.loads(json_path.read_text())
        if not isinstance(meta, dict):
            raise ValueError("not a JSON object")
    except ValueError as exc:   # JSONDecodeError is a ValueError
        raise UserError(f"checkpoint {json_path} is corrupt: {exc}") from None
    tensors = load_tensors(run_dir / STATE_TENSORS, "checkpoint")
    meta = {**meta, **_counters(meta, tensors, run_dir)}
    _load_module(net, tensors, "net.")
    ema.load_state_dict({k[4:]: v for k, v in tensors.items() if k.startswith("ema.")},
                        meta["ema_updates"])
    _load_optimizer(optimizer, tensors)
    ranks = sorted(int(k.split(".")[1]) for k in tensors if k.startswith("rng."))
    return meta["step"], [tensors[f"rng.{r}"] for r in ranks], meta


def _counters(meta, tensors: dict, run_dir: Path) -> dict:
    """step and ema_updates: from the tensors, which carry them since a crash between the two
    writes can leave an older JSON beside them; from the JSON for older checkpoints."""
    source = tensors if "step" in tensors else meta
    try:
        return {key: int(source[key]) for key in ("step", "ema_updates")}
    except (KeyError, ValueError, TypeError, RuntimeError) as exc:
        raise UserError(f"checkpoint in {run_dir} is corrupt (its step or ema_updates: {exc!r}); "
                        f"start the run again without --resume") from None


def _load_module(module, tensors: dict, prefix: str) -> None:
    state = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).splitlines()[0]
        raise UserError(f"checkpoint does not match the configured network: {first}") from None


def _load_optimizer(optimizer, tensors: dict) -> None:
    state: dict[int, dict] = {}
    for key, value in tensors.items():
        if key.startswith("opt."):
            _, index, name = key.split(".", 2)
            state.setdefault(int(index), {})[name] = value
    current = optimizer.state_dict()
    optimizer.load_state_dict({"state": state, "param_groups": current["param_groups"]})


def save_model(path: Path, ema_state: dict[str, torch.Tensor]) -> None:
    atomic_save_tensors(path, ema_state)


def load_model_weights(net, path: Path) -> None:
    tensors = load_tensors(path, "model weights")
    try:
        net.load_state_dict(tensors, strict=True)
    except RuntimeError as exc:
        first = str(exc).splitlines()[0]
        raise UserError(f"model weights in {path} do not match run.json: {first}") from None
