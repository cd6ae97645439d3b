"""Exponential moving average of a module's weights (the weights you usually sample with).

    shadow <- d * shadow + (1 - d) * current,   d = min(decay, (1 + n) / (10 + n)) with warmup

where n is the number of updates done before this one. Warmup lets the average forget the random
initialisation quickly at the start of training instead of dragging it along for ~1/(1-decay) steps.

Every float parameter and float buffer is averaged (integer buffers such as counters are left to the
model). The update is a fixed sequence of in-place ops with a Python-float decay, so the shadow is
bit-for-bit reproducible: save `state_dict()` + `num_updates`, load them, and a resumed run matches.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import Tensor, nn


def _float_tensors(model: nn.Module) -> dict[str, Tensor]:
    """Name -> tensor for every float parameter and buffer, in a stable (registration) order."""
    named = list(model.named_parameters()) + list(model.named_buffers())
    return {name: tensor for name, tensor in named if tensor.is_floating_point()}


class EMA:
    """Shadow copy of `model`'s float parameters and buffers, updated by `update(model)`."""

    def __init__(self, model: nn.Module, decay: float = 0.999, warmup: bool = True):
        if not 0.0 <= decay <= 1.0:
            raise ValueError(f"decay must lie in [0, 1], got {decay}")
        self.decay = float(decay)
        self.warmup = warmup
        self.num_updates = 0
        with torch.no_grad():
            self.shadow = {name: t.detach().clone() for name, t in _float_tensors(model).items()}

    def effective_decay(self) -> float:
        """The decay the next `update` will use."""
        if not self.warmup:
            return self.decay
        n = self.num_updates
        return min(self.decay, (1.0 + n) / (10.0 + n))

    def _matched(self, model: nn.Module) -> Iterator[tuple[Tensor, Tensor]]:
        """(shadow, model tensor) pairs; refuse a model whose float tensors differ from the shadow's."""
        current = _float_tensors(model)
        if current.keys() != self.shadow.keys():
            missing = sorted(self.shadow.keys() ^ current.keys())
            raise ValueError(f"model does not match the EMA shadow; differing tensors: {missing[:5]}")
        for name, shadow in self.shadow.items():
            if current[name].shape != shadow.shape or current[name].dtype != shadow.dtype:
                raise ValueError(
                    f"tensor {name!r}: model has {current[name].dtype} {tuple(current[name].shape)}, "
                    f"shadow has {shadow.dtype} {tuple(shadow.shape)}"
                )
            yield shadow, current[name]

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """shadow <- d * shadow + (1 - d) * model, in place."""
        decay = self.effective_decay()
        for shadow, current in self._matched(model):
            shadow.mul_(decay).add_(current.detach(), alpha=1.0 - decay)
        self.num_updates += 1

    @torch.no_grad()
    def copy_to(self, model: nn.Module) -> None:
        """Overwrite the model's float parameters and buffers with the averaged values."""
        for shadow, current in self._matched(model):
            current.copy_(shadow)

    @contextmanager
    def applied_to(self, model: nn.Module) -> Iterator[nn.Module]:
        """Temporarily swap the averaged weights into `model` (e.g. for evaluation), then restore."""
        backup = {name: t.detach().clone() for name, t in _float_tensors(model).items()}
        self.copy_to(model)
        try:
            yield model
        finally:
            with torch.no_grad():
                for name, tensor in _float_tensors(model).items():
                    tensor.copy_(backup[name])

    def state_dict(self) -> dict[str, Tensor]:
        """Contiguous clones of the shadow tensors (safe to hand to safetensors.save_file)."""
        return {name: t.detach().clone().contiguous() for name, t in self.shadow.items()}

    @torch.no_grad()
    def load_state_dict(self, state: dict[str, Tensor], num_updates: int) -> None:
        """Restore the shadow exactly; names, shapes and dtypes must match (no silent casts)."""
        if num_updates < 0:
            raise ValueError(f"num_updates must be >= 0, got {num_updates}")
        if state.keys() != self.shadow.keys():
            raise ValueError(f"EMA state names differ: {sorted(state.keys() ^ self.shadow.keys())[:5]}")
        for name, shadow in self.shadow.items():
            loaded = state[name]
            if loaded.shape != shadow.shape or loaded.dtype != shadow.dtype:
                raise ValueError(
                    f"EMA tensor {name!r}: got {loaded.dtype} {tuple(loaded.shape)}, "
                    f"expected {shadow.dtype} {tuple(shadow.shape)}"
                )
        for name, shadow in self.shadow.items():
            shadow.copy_(state[name])
        self.num_updates = int(num_updates)
