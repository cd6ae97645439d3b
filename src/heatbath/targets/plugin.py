"""User energies from a Python file: `path/to/file.py:NAME[:key=value,...]`.

The plug-in protocol
--------------------
The file defines NAME as one of:

(a) a class. It is instantiated with the key=value parameters as keyword arguments, so its
    `__init__` arguments are the accepted parameter names (unknown keys are refused). Either
    subclass `heatbath.targets.base.EnergyTarget` (then it is used as it is), or write any class
    whose instances have
        event_shape          a tuple of ints, e.g. (2,) or (8, 8)
        energy(x)            x: (N, *event_shape) tensor -> (N,) tensor, U in units of kT
    and optionally
        log_z                a float, the exact ln Z = ln ∫ exp(−U) dx, if known
        sample(n, generator) exact samples (n, *event_shape) drawn with the torch.Generator
        discrete = True      for ±1 spin systems (no forces; probes are random ±1 spins)
        translation_invariant = True
                             for particles, event_shape (P, d), whose energy does not change
                             when all of them move together: methods then run on the
                             zero-centre-of-mass subspace and log Z refers to it

(b) a plain function `energy(x) -> (N,)` with the same attributes set on it:
        def double_well(x):
            return (x[:, 0] ** 2 - 1) ** 2 * 4 + 0.5 * x[:, 1] ** 2
        double_well.event_shape = (2,)
        double_well.log_z = 1.234        # optional
        double_well.sample = my_sampler  # optional: my_sampler(n, generator)
    A function takes no key=value parameters; make NAME a class to accept some.

The energy must work on batches, keep the input dtype (float64 in, float64 out) and be
differentiable with torch autograd if gradient-based samplers are to use it. heatbath counts
its evaluations; do not count them yourself.

On loading, the energy is called once on a probe batch of 4 configurations (exact samples if
`sample` is given, else standard-normal draws, or random ±1 spins for discrete targets) and
must return 4 finite values. Every problem — missing file, a file that is not .py, an error
while importing it, NAME not defined, no event_shape, a wrong output shape, non-finite
energies — is reported as one UserError line.
"""

from __future__ import annotations

import hashlib
import importlib.util
import math
import sys
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any, Callable

import torch

from heatbath.core.errors import UserError
from heatbath.core.spec import call_with_params
from heatbath.spaces import CentredParticles
from heatbath.targets.base import EnergyTarget, ExactValues

PROBE_SIZE = 4


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def _import_file(path: Path) -> ModuleType:
    """Execute the file as a fresh module; its name is unique per absolute path."""
    digest = hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:10]
    module_name = f"heatbath_plugin_{path.stem}_{digest}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    module = importlib.util.module_from_spec(spec)
    # Registered before execution so that dataclasses and pickling inside the file work.
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except (Exception, SystemExit) as exc:
        sys.modules.pop(module_name, None)
        raise UserError(f"could not import plug-in {path}: {_one_line(exc)}") from None
    return module


def _event_shape(owner: Any, label: str) -> tuple[int, ...]:
    shape = getattr(owner, "event_shape", None)
    if shape is None:
        raise UserError(f"plug-in {label} has no event_shape; set it, e.g. "
                        f"{label.split(':')[-1]}.event_shape = (2,)")
    shape = (shape,) if isinstance(shape, int) else shape
    try:
        shape = tuple(shape)
    except TypeError:
        raise UserError(f"plug-in {label}: event_shape must be a tuple of ints, "
                        f"got {shape!r}") from None
    positive_ints = all(isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in shape)
    if not shape or not positive_ints:
        raise UserError(f"plug-in {label}: event_shape must be a tuple of positive ints, "
                        f"got {shape!r}")
    return shape


def _log_z(owner: Any, label: str) -> float | None:
    value = getattr(owner, "log_z", None)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise UserError(f"plug-in {label}: log_z must be a finite float, got {value!r}")
    return float(value)


class PluginTarget(EnergyTarget):
    """Adapter that turns a user energy function (plus attributes) into a counted target."""

    def __init__(self, energy_fn: Callable[[torch.Tensor], torch.Tensor],
                 event_shape: tuple[int, ...], label: str, log_z: float | None = None,
                 sampler: Callable | None = None, discrete: bool = False,
                 params: dict | None = None, translation_invariant: bool = False) -> None:
        super().__init__(event_shape, params)
        self.translation_invariant = translation_invariant
        self.energy_fn, self.sampler, self.log_z = energy_fn, sampler, log_z
        self.name, self.discrete = label, discrete
        self.convention = f"user plug-in {label}: U(x) in kT as returned by the user's energy"

    def _energy(self, x: torch.Tensor) -> torch.Tensor:
        out = self.energy_fn(x)
        if not isinstance(out, torch.Tensor) or out.shape != (x.shape[0],):
            got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
            raise UserError(f"plug-in {self.name}: energy must return a torch tensor of shape "
                            f"({x.shape[0]},) for a batch of {x.shape[0]}, got {got}")
        return out

    @property
    def exact(self) -> ExactValues:
        return ExactValues(log_z=self.log_z)

    @property
    def space(self):
        if not self.translation_invariant:
            return super().space
        return CentredParticles(*self.event_shape)

    def sample_exact(self, n: int, generator: torch.Generator) -> torch.Tensor | None:
        if self.sampler is None:
            return None
        out = self.sampler(n, generator)
        if not isinstance(out, torch.Tensor) or tuple(out.shape) != (n, *self.event_shape):
            got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
            raise UserError(f"plug-in {self.name}: sample(n, generator) must return a tensor of "
                            f"shape {(n, *self.event_shape)}, got {got}")
        return out


def _wrap(owner: Any, energy_fn: Callable, label: str, params: dict) -> PluginTarget:
    sampler = getattr(owner, "sample", None)
    if sampler is not None and not callable(sampler):
        raise UserError(f"plug-in {label}: sample must be a function sample(n, generator)")
    shape = _event_shape(owner, label)
    invariant = bool(getattr(owner, "translation_invariant", False))
    if invariant and (len(shape) != 2 or shape[0] < 2):
        raise UserError(f"plug-in {label}: translation_invariant needs event_shape (P, d) with "
                        f"P >= 2 particles, got {shape}")
    return PluginTarget(energy_fn, shape, label, _log_z(owner, label), sampler,
                        bool(getattr(owner, "discrete", False)), params, invariant)


def _from_class(cls: type, params: dict, label: str) -> EnergyTarget:
    instance = call_with_params(cls, params, f"plug-in {label}")
    if isinstance(instance, EnergyTarget):
        if instance.name == EnergyTarget.name:   # the base-class default: name it after the file
            instance.name = label
        return instance
    energy = getattr(instance, "energy", None)
    if not callable(energy):
        raise UserError(f"plug-in {label}: the class must define a method energy(x) -> (N,)")
    return _wrap(instance, energy, label, params)


def make_target(obj: Any, params: dict, label: str) -> EnergyTarget:
    """Turn the object the file defines under NAME into an EnergyTarget (not yet probed)."""
    if isinstance(obj, type):
        return _from_class(obj, params, label)
    if params:
        raise UserError(f"plug-in {label} is not a class, so it takes no parameters "
                        f"(got {', '.join(params)}); make it a class to accept key=value")
    if isinstance(obj, EnergyTarget):
        return obj
    if callable(obj):
        return _wrap(obj, obj, label, {})
    raise UserError(f"plug-in {label} is a {type(obj).__name__}; it must be a class or a "
                    f"function energy(x)")


def _probe_batch(target: EnergyTarget) -> tuple[torch.Tensor, str]:
    generator = torch.Generator().manual_seed(0)
    try:
        samples = target.sample_exact(PROBE_SIZE, generator)
    except UserError:
        raise
    except Exception as exc:
        raise UserError(f"plug-in {target.name}: sample(n, generator) failed: "
                        f"{_one_line(exc)}") from None
    if samples is not None:
        return samples, "its exact samples"
    shape = (PROBE_SIZE, *target.event_shape)
    if target.discrete:
        spins = 2.0 * torch.randint(0, 2, shape, generator=generator) - 1.0
        return spins.to(torch.get_default_dtype()), "random +-1 spins"
    return torch.randn(shape, generator=generator), "standard-normal probes"


def probe(target: EnergyTarget) -> None:
    """Evaluate the energy once on a small batch and insist on (N,) finite values."""
    batch, source = _probe_batch(target)
    try:
        with torch.no_grad():
            energy = target.energy(batch)
    except UserError:
        raise
    except Exception as exc:
        raise UserError(f"plug-in {target.name}: energy failed on {source} of shape "
                        f"{tuple(batch.shape)}: {_one_line(exc)}") from None
    if not isinstance(energy, torch.Tensor) or energy.shape != (PROBE_SIZE,):
        got = tuple(energy.shape) if isinstance(energy, torch.Tensor) else type(energy).__name__
        raise UserError(f"plug-in {target.name}: energy must return shape ({PROBE_SIZE},) for "
                        f"a batch of {PROBE_SIZE}, got {got}")
    if not torch.isfinite(energy).all():
        raise UserError(f"plug-in {target.name}: energy returned non-finite values (nan or inf) "
                        f"on {source}: {energy.tolist()}")
    target.reset_counters()


def _defined_names(module: ModuleType) -> list[str]:
    return sorted(n for n, v in vars(module).items()
                  if not n.startswith("_") and (callable(v) or isinstance(v, EnergyTarget))
                  and getattr(v, "__module__", module.__name__) == module.__name__)


def load_plugin(path: str, name: str, params: dict) -> EnergyTarget:
    """Import `path`, build NAME with `params`, probe it, and return it with zeroed counters."""
    file = Path(path)
    if file.suffix != ".py":
        raise UserError(f"plug-in file must be a .py file, got '{path}'")
    if not file.is_file():
        raise UserError(f"plug-in file '{path}' not found (path is relative to {Path.cwd()})")
    if not name:
        raise UserError(f"no NAME given for plug-in '{path}': write {path}:NAME")
    module = _import_file(file)
    if not hasattr(module, name):
        defined = ", ".join(_defined_names(module)) or "no functions or classes"
        raise UserError(f"'{name}' is not defined in {path}; it defines: {defined}")
    target = make_target(getattr(module, name), params, f"{path}:{name}")
    probe(target)
    target.plugin_source = str(file)   # marks user code, for `user_code_guard`
    return target


@contextmanager
def user_code_guard(target, doing: str):
    """A plug-in energy that raises (or is not differentiable where forces are needed) after its
    probe is the user's code failing: one line naming it, not a traceback from inside a method."""
    source = getattr(target, "plugin_source", None)
    try:
        yield
    except UserError:
        raise
    except Exception as exc:
        if source is None:
            raise
        hint = (" (forces need an energy differentiable by torch.autograd)"
                if "grad" in str(exc) else "")
        raise UserError(f"the plug-in energy {target.name} failed while {doing}: "
                        f"{_one_line(exc)}{hint}") from None



def load_function(spec: str) -> tuple[str, Callable]:
    """`path/to/file.py:NAME` -> (NAME, the callable), for user observables."""
    path, sep, name = spec.rpartition(":")
    file = Path(path)
    if not sep or file.suffix != ".py":
        raise UserError(f"an observable is written path/to/file.py:NAME, got '{spec}'")
    if not file.is_file():
        raise UserError(f"observable file '{path}' not found (path is relative to {Path.cwd()})")
    module = _import_file(file)
    function = getattr(module, name, None)
    if not callable(function):
        defined = ", ".join(_defined_names(module)) or "no functions or classes"
        raise UserError(f"'{name}' is not a function in {path}; it defines: {defined}")
    return name, function


def file_sha256(path: Path) -> str:
    import hashlib

    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def verified_copy(run_dir: Path, plugin) -> Path:
    """The run's copy of its plug-in file, refused in one line if missing or changed."""
    copy = Path(run_dir) / plugin.file
    if not copy.is_file():
        raise UserError(f"{run_dir} has lost its copy of the plug-in energy ({copy}); "
                        f"restore it from {plugin.original} or re-run heatbath fit")
    if file_sha256(copy) != plugin.sha256:
        raise UserError(f"the plug-in energy {copy} changed after the run was made (SHA-256 "
                        f"differs from run.json); restore it or re-run heatbath fit")
    return copy
