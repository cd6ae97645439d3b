"""`load_source`: turn a user's data spec (a .npz/.npy file or `builtin:NAME[:k=v,...]`) into a
validated `DataSet`. Every problem with the input becomes one `UserError` line naming the file.
"""

from __future__ import annotations

import zipfile
from functools import partial
from pathlib import Path

import numpy as np
import torch

from heatbath.datasets.clouds import CLOUDS
from heatbath.datasets.dataset import DataSet
from heatbath.datasets.images import IMAGES
from heatbath.datasets.lattice import lattice_dataset
from heatbath.datasets.toys import TOYS, toy_log_density
from heatbath.core.errors import UserError
from heatbath.core.spec import call_with_params, parse_spec

BUILTIN_PREFIX = "builtin:"
DEFAULT_TOY_SIZE = 20000
MAX_IMAGE_CHANNELS = 4   # (N, C, H, W) with more "channels" than this is more likely a vector


def builtin_names() -> list[str]:
    return list(TOYS) + list(IMAGES) + list(CLOUDS)


def builtin_descriptions() -> dict[str, str]:
    """One line per built-in data set, for docs and `--help`."""
    descriptions = {name: toy.description for name, toy in TOYS.items()}
    descriptions.update({name: text for name, (_, text) in IMAGES.items()})
    descriptions.update({name: text for name, (_, text) in CLOUDS.items()})
    return descriptions


def load_source(spec: str, *, n: int | None = None, seed: int = 0,
                kind: str = "auto") -> DataSet:
    """Load a data set. `n` is the number of toy samples to draw (default 20000) or, for files
    and images, the size of a random subset chosen by `seed`; toys are also drawn with `seed`.
    `kind` (data.kind) says how a file's arrays are read where the shape does not decide it.
    """
    if kind not in DATA_KINDS:
        raise UserError(f"unknown data.kind '{kind}'; choose one of {', '.join(DATA_KINDS)}")
    if not isinstance(spec, str) or not spec.strip():
        raise UserError("empty data spec: give a .npz/.npy file or builtin:NAME "
                        f"(one of {', '.join(builtin_names())})")
    if spec.startswith(BUILTIN_PREFIX):
        data = _load_builtin(spec[len(BUILTIN_PREFIX):], n, seed)
        if kind not in ("auto", data.kind):
            raise UserError(f"{spec} holds {data.kind}s, so data.kind={kind} does not apply; "
                            f"drop it (model.net=mlp reads images as vectors)")
        return data
    return _subsample(_load_file(Path(spec), kind), n, seed, where=f"'{spec}'")


# --- built-ins -------------------------------------------------------------------------------

def _load_builtin(rest: str, n: int | None, seed: int) -> DataSet:
    name, params = parse_spec(rest)
    if name not in TOYS and name not in IMAGES and name not in CLOUDS:
        raise UserError(f"unknown built-in data set '{name}'; known: {', '.join(builtin_names())}")
    if "n" in params:
        if n is not None and params["n"] != n:
            raise UserError(f"builtin:{name} got n={params['n']} in the spec but n={n} as an "
                            "option; give it once")
        n = params.pop("n")
    if name in TOYS:
        return _load_toy(name, params, DEFAULT_TOY_SIZE if n is None else n, seed)
    if name in CLOUDS:
        loader = partial(CLOUDS[name][0], **({} if n is None else {"n": n}), seed=seed)
        return call_with_params(loader, params, f"builtin:{name}")
    if params:
        raise UserError(f"unknown parameter(s) {', '.join(sorted(params))} for builtin:{name}; "
                        "accepted: n")
    loader, _ = IMAGES[name]
    return _subsample(loader(), n, seed, where=f"builtin:{name}")


def _load_toy(name: str, params: dict, n: int, seed: int) -> DataSet:
    generator = torch.Generator().manual_seed(int(seed))
    sampler = partial(TOYS[name].sampler, n, generator=generator)
    x = call_with_params(sampler, params, f"builtin:{name}")
    return DataSet(x=x.float(), name=name, kind="vector",
                   log_density=toy_log_density(name, params))


def _subsample(ds: DataSet, n: int | None, seed: int, where: str) -> DataSet:
    """A random subset of n rows (chosen by seed), or everything when n is None."""
    if n is None:
        return ds
    if isinstance(n, bool) or not isinstance(n, (int, float)) or n != int(n) or n < 1:
        raise UserError(f"n must be a positive integer, got {n!r}")
    if n > len(ds):
        raise UserError(f"asked for n={int(n)} samples but {where} has only {len(ds)}")
    generator = torch.Generator().manual_seed(int(seed))
    return ds.subset(torch.randperm(len(ds), generator=generator)[: int(n)])


# --- files -----------------------------------------------------------------------------------

def _load_file(path: Path, kind: str) -> DataSet:
    where = f"'{path}'"
    if not path.exists():
        raise UserError(f"no such file: {where} (for a built-in data set write builtin:NAME, "
                        f"one of {', '.join(builtin_names())})")
    if path.is_dir():
        raise UserError(f"{where} is a directory; give a .npz or .npy file")
    suffix = path.suffix.lower()
    if suffix in XYZ_SUFFIXES:
        return _dataset_from_arrays(read_xyz_positions(path, where), None, name=path.stem,
                                    where=where, kind="particles" if kind == "auto" else kind)
    if suffix not in (".npz", ".npy"):
        raise UserError(f"{where} is not a .npz, .npy or .xyz file; save your data with "
                        "numpy.savez (arrays x and optional c) or numpy.save")
    if kind == "lattice":   # integer states: validated and kept as int64, never as floats
        arrays = (_read_npy(path, where), None, None) if suffix == ".npy" else _read_npz(
            path, where)
        return lattice_dataset(*arrays, name=path.stem, where=where)
    if suffix == ".npy":
        return _dataset_from_arrays(_read_npy(path, where), None, name=path.stem, where=where,
                                    kind=kind)
    x, c, x0 = _read_npz(path, where)
    ds = _dataset_from_arrays(x, c, name=path.stem, where=where, kind=kind)
    if x0 is not None:
        _attach_sources(ds, x, x0, where)
    return ds


XYZ_SUFFIXES = (".xyz", ".extxyz")
ASE_HINT = "reading .xyz files needs ASE: pip install 'heatbath[particles]'"


def read_xyz_positions(path: Path, where: str) -> np.ndarray:
    """Every frame of an (extended) XYZ file as positions (frames, atoms, 3), through ASE.
    All frames must hold the same number of atoms (a data set of one system's configurations);
    atom types are not read (the model treats the particles as identical)."""
    try:
        from ase.io import read
    except ImportError:
        raise UserError(ASE_HINT) from None
    try:
        frames = read(str(path), index=":")
    except Exception as exc:  # noqa: BLE001 - ASE raises many types for a malformed file
        raise UserError(f"cannot read {where} as an (extended) XYZ file: {exc}") from None
    if not frames:
        raise UserError(f"{where} holds no frames")
    sizes = sorted({len(frame) for frame in frames})
    if len(sizes) != 1:
        raise UserError(f"{where} has frames of {sizes} atoms; a particle data set needs the "
                        f"same number of atoms in every frame")
    return np.stack([frame.get_positions() for frame in frames])


def _unreadable(where: str, exc: Exception) -> UserError:
    if "Object arrays" in str(exc):   # numpy's wording for a pickled dtype=object array
        return UserError(f"{where} holds Python objects, not numbers; save a numeric array")
    if isinstance(exc, MemoryError):   # a header claiming a shape far beyond the file's size
        return UserError(f"cannot read {where}: its header claims an array too large for "
                         f"memory (a corrupt or truncated file?)")
    return UserError(f"cannot read {where}: it is not a valid numpy file ({type(exc).__name__})")


_READ_ERRORS = (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError, MemoryError)


def _read_npy(path: Path, where: str) -> np.ndarray:
    try:
        array = np.load(path, allow_pickle=False)
    except _READ_ERRORS as exc:
        raise _unreadable(where, exc) from None
    if not isinstance(array, np.ndarray):
        array.close()
        raise UserError(f"{where} is a .npz archive saved under a .npy name; rename it to .npz")
    return array


def _read_npz(path: Path, where: str) -> tuple[np.ndarray, np.ndarray | None,
                                               np.ndarray | None]:
    try:
        archive = np.load(path, allow_pickle=False)
    except _READ_ERRORS as exc:
        raise _unreadable(where, exc) from None
    if isinstance(archive, np.ndarray):
        raise UserError(f"{where} is a single array saved with numpy.save; rename it to .npy "
                        "or save it with numpy.savez(file, x=samples)")
    with archive:
        names = list(archive.files)
        if "x" not in names:
            raise UserError(f"{where} has no array 'x' (it has: {', '.join(names) or 'none'}); "
                            "save it with numpy.savez(file, x=samples)")
        try:
            return tuple(archive[key] if key in names else None for key in ("x", "c", "x0"))
        except _READ_ERRORS as exc:
            raise _unreadable(where, exc) from None


# --- validation ------------------------------------------------------------------------------

def _dataset_from_arrays(x: np.ndarray, c: np.ndarray | None, name: str, where: str,
                         kind: str = "auto") -> DataSet:
    _check_samples(x, where)
    samples, kind = _shape_samples(torch.from_numpy(x.astype(np.float32)), kind, where)
    ds = DataSet(x=samples, name=name, kind=kind)
    if c is not None:
        _attach_condition(ds, c, where)
    return ds


def _check_samples(x: np.ndarray, where: str) -> None:
    if x.dtype.kind not in "biuf":
        raise UserError(f"x in {where} has dtype {x.dtype}; it must be numeric")
    if x.ndim < 2:
        raise UserError(f"x in {where} has shape {x.shape}; it needs one row per sample, "
                        "e.g. reshape a 1-D array to (N, 1) with x.reshape(-1, 1)")
    if x.size == 0:
        raise UserError(f"x in {where} is empty (shape {x.shape}); it needs at least one sample")
    finite = np.isfinite(x.reshape(x.shape[0], -1)).all(axis=1)
    if not finite.all():
        bad = np.flatnonzero(~finite)
        raise UserError(f"x in {where} has {bad.size} row(s) with NaN or inf (first: row "
                        f"{bad[0]}); remove or fix them")


DATA_KINDS = ("auto", "vector", "image", "particles", "lattice")
MIN_IMAGE_SIDE = 8   # smaller "images" are far likelier to be particles or feature tables


def _shape_samples(x: torch.Tensor, kind: str, where: str) -> tuple[torch.Tensor, str]:
    """Samples and their modality. (N, D) is a vector. `image`: (N, H, W) -> (N, 1, H, W) or
    (N, C ≤ 4, H, W). `vector`: any shape, flattened. `auto` reads images only when both sides
    are at least MIN_IMAGE_SIDE and otherwise asks, because an (N, 13, 3) array of particle
    positions is not a stack of 13×3 pictures."""
    if kind == "particles":
        return _particles(x, where), "particles"
    if x.ndim == 2 or kind == "vector":
        return x.reshape(x.shape[0], -1), "vector"
    image = x.unsqueeze(1) if x.ndim == 3 else x
    is_image_shape = image.ndim == 4 and image.shape[1] <= MAX_IMAGE_CHANNELS
    if kind == "image":
        if not is_image_shape:
            raise UserError(f"x in {where} has shape {tuple(x.shape)}; data.kind=image needs "
                            f"(N, H, W) or (N, C <= {MAX_IMAGE_CHANNELS}, H, W)")
        return image, "image"
    if is_image_shape and min(image.shape[2:]) >= MIN_IMAGE_SIDE:
        return image, "image"
    raise UserError(f"x in {where} has shape {tuple(x.shape)}, which does not say what a sample "
                    f"is: set data.kind=vector (flattened to {x[0].numel()} numbers)"
                    + (" or data.kind=image" if is_image_shape else "")
                    + (" or data.kind=particles" if x.ndim == 3 else ""))


def _particles(x: torch.Tensor, where: str) -> torch.Tensor:
    """(N, P, d) positions with their centre of mass removed: a translation-invariant model
    lives on the zero-CoM subspace (`heatbath.spaces.CentredParticles`)."""
    if x.ndim != 3 or x.shape[1] < 2:
        raise UserError(f"x in {where} has shape {tuple(x.shape)}; data.kind=particles needs "
                        f"(N, P, d) positions of P >= 2 particles in d dimensions")
    return x - x.mean(dim=1, keepdim=True)


def _attach_condition(ds: DataSet, c: np.ndarray, where: str) -> None:
    """Class labels for integer 1-D c, continuous properties (N, k) for float c."""
    if c.dtype.kind not in "biuf":
        raise UserError(f"c in {where} has dtype {c.dtype}; it must be integer labels or floats")
    if c.ndim not in (1, 2):
        raise UserError(f"c in {where} has shape {c.shape}; use (N,) labels or (N, k) properties")
    if c.shape[0] != len(ds):
        raise UserError(f"c in {where} has {c.shape[0]} rows but x has {len(ds)}; "
                        "give one condition row per sample")
    if c.dtype.kind in "biu" and c.ndim == 1:
        _attach_labels(ds, c.astype(np.int64), where)
        return
    values = c.astype(np.float32).reshape(len(ds), -1)
    if not np.isfinite(values).all():
        raise UserError(f"c in {where} has NaN or inf values; remove or fix them")
    ds.c, ds.cond_kind = torch.from_numpy(values), "continuous"


def _attach_sources(ds: DataSet, x: np.ndarray, x0: np.ndarray, where: str) -> None:
    """Paired data: x0[i] is the source of target x[i] (path.base=paired), same shape."""
    if x0.shape != x.shape:
        raise UserError(f"x0 in {where} has shape {x0.shape} but x has {x.shape}; give one "
                        f"source of the same shape per target")
    _check_samples(x0, where)
    ds.x0 = torch.from_numpy(x0.astype(np.float32)).reshape(ds.x.shape)


def _attach_labels(ds: DataSet, labels: np.ndarray, where: str) -> None:
    if labels.min() < 0:
        raise UserError(f"c in {where} has negative class labels; use labels 0..K-1")
    ds.c, ds.cond_kind = torch.from_numpy(labels), "class"
    ds.num_classes = int(labels.max()) + 1
