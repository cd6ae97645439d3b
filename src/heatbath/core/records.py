"""Typed, versioned run records: `run.json` and `result.json`, written and read by this code only.

A record is a dataclass; `to_json` writes it, `from_json` reads it back and refuses, in one line,
a file that lacks a field or holds the wrong type, so no command downstream has to guard its
lookups. `record_version` counts layout changes: files without it were written by heatbath 0.1
before records existed, with the same keys, and load as version 0. A newer version than this
code knows is refused with a request to upgrade.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from heatbath.core.errors import UserError

RECORD_VERSION = 1
RUN_JSON = "run.json"
RESULT_JSON = "result.json"
_MISSING = object()


class _Reader:
    """Field access on a parsed JSON object with one-line errors naming the file and the key."""

    def __init__(self, raw: Any, where: str) -> None:
        if not isinstance(raw, dict):
            raise UserError(f"{where} is not a JSON object; it was not written by heatbath")
        self.raw, self.where = raw, where

    def get(self, key: str, types, default=_MISSING, nullable: bool = False):
        value = self.raw.get(key, default)
        if value is _MISSING:
            raise UserError(f"{self.where} lacks '{key}'; it is corrupt or not a heatbath run "
                            f"(re-run heatbath fit)")
        if value is None and (nullable or default is None):
            return None
        if not isinstance(value, types) or (isinstance(value, bool) and bool not in _tuple(types)):
            raise UserError(f"{self.where}: '{key}' has the wrong type ({type(value).__name__}); "
                            f"the file is corrupt (re-run heatbath fit)")
        return value

    def shape(self, key: str) -> list[int]:
        shape = self.get(key, list)
        if not all(isinstance(n, int) and not isinstance(n, bool) and n > 0 for n in shape):
            raise UserError(f"{self.where}: '{key}' must be a list of positive integers, "
                            f"got {shape}")
        return shape


def _tuple(types) -> tuple:
    return types if isinstance(types, tuple) else (types,)


def _check_version(reader: _Reader) -> int:
    version = reader.get("record_version", int, default=0)
    if version > RECORD_VERSION:
        raise UserError(f"{reader.where} was written by a newer heatbath (record version "
                        f"{version}, this one reads up to {RECORD_VERSION}); upgrade heatbath")
    return version


def _with_kind(record) -> dict:
    """A run record's JSON: its fields, with the `kind` that says which record it is first."""
    return {"kind": record.kind, **dataclasses.asdict(record)}


@dataclass
class DataSummary:
    """What a data run keeps about its training data (to rebuild the model and score it)."""

    name: str
    source: str
    kind: str                          # vector | image | ...
    n_train: int
    n_heldout: int
    sigma_data: float                  # the path's data scale: std of x, or for a coupled run
                                       # (path.base) the RMS of the residual x − b(c)
    mean: list                         # flattened per-element mean of the training data
    min: list | None = None            # per-element range (for sample.clip)
    max: list | None = None
    levels: int | None = None          # images: quantisation levels (bits/dim)
    data_range: list | None = None     # images: the range the levels span

    @classmethod
    def from_json(cls, raw, where: str) -> "DataSummary":
        r = _Reader(raw, where)
        number = (int, float)
        return cls(name=r.get("name", str), source=r.get("source", str), kind=r.get("kind", str),
                   n_train=r.get("n_train", int), n_heldout=r.get("n_heldout", int),
                   sigma_data=float(r.get("sigma_data", number)), mean=r.get("mean", list),
                   min=r.get("min", list, None), max=r.get("max", list, None),
                   levels=r.get("levels", int, None), data_range=r.get("data_range", list, None))


@dataclass
class DataRunRecord:
    """run.json of a data run."""

    kind: ClassVar[str] = "data"
    name: str
    status: str                        # training | complete
    step: int
    event_shape: list
    data: DataSummary
    net: dict                          # the keyword arguments of nets.build_net
    path: dict                         # {"name", "prediction"}
    cond_kind: str | None = None       # None | class | continuous
    num_classes: int | None = None
    cond_dim: int | None = None
    heatbath_version: str = ""
    record_version: int = RECORD_VERSION

    @classmethod
    def from_json(cls, raw, where: str) -> "DataRunRecord":
        r = _Reader(raw, where)
        version = _check_version(r)
        net = r.get("net", dict)
        if not isinstance(net.get("kind"), str) or not isinstance(net.get("event_shape"), list):
            raise UserError(f"{where}: 'net' lacks its kind or event_shape; the file is corrupt")
        path = dict(r.get("path", dict))
        # heatbath 0.1 also wrote the prediction at the top level; a copy is not kept now.
        path.setdefault("prediction", r.get("prediction", str, default=None))
        if not isinstance(path.get("name"), str) or not isinstance(path.get("prediction"), str):
            raise UserError(f"{where}: 'path' lacks its name or prediction; the file is corrupt")
        return cls(name=r.get("name", str), status=r.get("status", str), step=r.get("step", int),
                   event_shape=r.shape("event_shape"),
                   data=DataSummary.from_json(r.get("data", dict), f"{where} (data)"),
                   net=net, path=path, cond_kind=r.get("cond_kind", str, None),
                   num_classes=r.get("num_classes", int, None),
                   cond_dim=r.get("cond_dim", int, None),
                   heatbath_version=r.get("heatbath_version", str, ""), record_version=version)

    def to_json(self) -> dict:
        return _with_kind(self)


@dataclass
class PluginCopy:
    """A plug-in energy file kept inside the run directory, so the run is self-contained."""

    file: str                          # name inside the run directory (plugin/NAME.py)
    sha256: str                        # of that copy; a later command refuses a changed file
    original: str                      # where it was loaded from at fit time (for the record)

    @classmethod
    def from_json(cls, raw, where: str) -> "PluginCopy":
        r = _Reader(raw, where)
        return cls(file=r.get("file", str), sha256=r.get("sha256", str),
                   original=r.get("original", str))


@dataclass
class EnergyRunRecord:
    """run.json of an energy run."""

    kind: ClassVar[str] = "energy"
    name: str
    status: str
    step: int
    event_shape: list
    method: str
    kernel: str
    target: dict                       # the target's `describe()` plus its "spec"
    plugin: PluginCopy | None = None
    # `sample RUN --target SPEC --out NEW`: the run whose model drew these samples, its spec,
    # β and size, the β it was trained over, and the draw's seed (None: made by fit)
    transferred_from: dict | None = None
    heatbath_version: str = ""
    record_version: int = RECORD_VERSION

    @property
    def spec(self) -> str:
        return self.target["spec"]

    @classmethod
    def from_json(cls, raw, where: str) -> "EnergyRunRecord":
        r = _Reader(raw, where)
        version = _check_version(r)
        target = r.get("target", dict)
        if not isinstance(target.get("spec"), str):
            raise UserError(f"{where}: 'target' lacks its spec; the file is corrupt")
        plugin = r.get("plugin", dict, None)
        return cls(name=r.get("name", str), status=r.get("status", str), step=r.get("step", int),
                   event_shape=r.shape("event_shape"), method=r.get("method", str),
                   kernel=r.get("kernel", str), target=target,
                   plugin=None if plugin is None else PluginCopy.from_json(plugin, where),
                   transferred_from=r.get("transferred_from", dict, None),
                   heatbath_version=r.get("heatbath_version", str, ""), record_version=version)

    def to_json(self) -> dict:
        return _with_kind(self)


@dataclass
class EnergyResultRecord:
    """result.json of an energy run: what kind of weights samples.npz holds, and diagnostics."""

    weighted: bool                     # True: log_w are importance weights; False: equal weights
    diagnostics: dict = field(default_factory=dict)
    log_z: dict | None = None          # MCMC-type methods' own log Z estimate (TI), if any
    record_version: int = RECORD_VERSION

    @classmethod
    def from_json(cls, raw, where: str) -> "EnergyResultRecord":
        r = _Reader(raw, where)
        version = _check_version(r)
        return cls(weighted=r.get("weighted", bool), diagnostics=r.get("diagnostics", dict, {}),
                   log_z=r.get("log_z", dict, None), record_version=version)

    def to_json(self) -> dict:
        return dataclasses.asdict(self)


RunRecord = DataRunRecord | EnergyRunRecord
RUN_RECORDS = {"data": DataRunRecord, "energy": EnergyRunRecord}


def _load_json(path: Path, what: str):
    if not path.is_file():
        raise UserError(f"{what} is missing: {path}; re-run heatbath fit")
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError, OSError) as exc:
        raise UserError(f"{path} is corrupt: {exc}") from None


def read_run_record(run_dir: str | Path) -> RunRecord:
    """The typed run.json of a run directory, or one UserError saying what is wrong."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise UserError(f"run directory not found: {run_dir}")
    if not (run_dir / RUN_JSON).is_file():
        raise UserError(f"{run_dir} is not a heatbath run directory (no {RUN_JSON}); "
                        f"create one with 'heatbath fit'")
    from heatbath.core.runs import remove_stale_temporaries

    remove_stale_temporaries(run_dir)
    raw = _load_json(run_dir / RUN_JSON, RUN_JSON)
    kind = raw.get("kind") if isinstance(raw, dict) else None
    if kind not in RUN_RECORDS:
        raise UserError(f"{run_dir / RUN_JSON} is not a heatbath run description")
    return RUN_RECORDS[kind].from_json(raw, str(run_dir / RUN_JSON))


def read_result_record(run_dir: str | Path) -> EnergyResultRecord:
    path = Path(run_dir) / RESULT_JSON
    return EnergyResultRecord.from_json(_load_json(path, RESULT_JSON), str(path))


def write_record(path: Path, record) -> None:
    from heatbath.core.runs import atomic_write_json

    atomic_write_json(path, record.to_json())
