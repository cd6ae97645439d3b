"""`heatbath fit --target SPEC --method NAME`: run a method, then write the run directory.

The method runs before anything is written; the directory appears only complete (every file
atomic), so an interrupted or failed run leaves nothing partial and never touches another run.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from heatbath import __version__
from heatbath.core.settings import to_toml
from heatbath.energy.chart import to_original, working_target
from heatbath.energy.config import EnergyRunConfig, resolved_kernel
from heatbath.energy.methods import METHODS
from heatbath.mcmc import CONTINUOUS_KERNELS
from heatbath.energy.validate import validate
from heatbath.energy.problem import Problem
from heatbath.energy.results import EnergyResult
from heatbath.core.errors import UserError
from heatbath.core.records import (RESULT_JSON, RUN_JSON, EnergyResultRecord, EnergyRunRecord,
                                   PluginCopy, write_record)
from heatbath.core.runs import (DTYPES, atomic_save_npz, atomic_save_tensors, atomic_write_bytes,
                                atomic_write_json, atomic_write_text, check_out_dir,
                                default_run_dir, staged_directory)
from heatbath.targets.plugin import file_sha256, user_code_guard
from heatbath.targets.registry import build_target, plugin_file

def run_method(config: EnergyRunConfig, target=None) -> tuple[EnergyResult, Problem]:
    """Build the target and run the configured method (library entry point)."""
    target = target or build_target(config.target.spec)
    validate(config, target)
    dtype = DTYPES[config.method.dtype]
    working = working_target(target)   # particles: the zero-CoM subspace's chart
    problem = Problem(working, config, dtype, torch.Generator().manual_seed(config.method.seed),
                      original=None if working is target else target)
    target.reset_counters()
    try:
        with user_code_guard(target, f"running {config.method.name}"):
            result = METHODS[config.method.name].run(problem)
    except ValueError as exc:
        raise UserError(f"{config.method.name} on {target.name}: {exc}") from None
    result.x = to_original(working, result.x)
    if not torch.isfinite(result.energy).all():
        bad = int((~torch.isfinite(result.energy)).sum())
        raise UserError(f"the target returned non-finite energies for {bad} sample(s); check "
                        f"the energy function (or lower method.step_size)")
    result.diagnostics["energy_evals"] = problem.energy_evals()
    if not target.discrete and not CONTINUOUS_KERNELS[problem.kernel_name].adjusted:
        # No accept/reject: the samples follow the discretised dynamics' law, whose step-size
        # bias no error bar contains. Flag it wherever the results go.
        result.diagnostics["unadjusted_kernel"] = problem.kernel_name
    return result, problem


def _run_record(config: EnergyRunConfig, target, plugin: PluginCopy | None,
                transferred_from: dict | None) -> EnergyRunRecord:
    described = json.loads(json.dumps(target.describe(), default=str))
    return EnergyRunRecord(
        name=f"{target.name}-{config.method.name}", status="complete", step=0,
        event_shape=list(target.event_shape), method=config.method.name,
        kernel=resolved_kernel(config, target.discrete),
        target={**described, "spec": config.target.spec}, plugin=plugin,
        transferred_from=transferred_from, heatbath_version=__version__)


def _keep_plugin(config: EnergyRunConfig, run_dir: Path) -> PluginCopy | None:
    """Copy a plug-in energy file into the run (plugin/NAME.py) with its SHA-256."""
    source = plugin_file(config.target.spec)
    if source is None:
        return None
    copy = Path("plugin") / source.name
    atomic_write_bytes(run_dir / copy, source.read_bytes())
    return PluginCopy(file=str(copy), sha256=file_sha256(run_dir / copy),
                      original=str(source.resolve()))


def sample_arrays(result: EnergyResult, target=None) -> dict:
    """What samples.npz holds; targets with `observables(x)` (aldp: φ, ψ) add their own."""
    arrays = {"x": result.x.detach().cpu().numpy(), "log_w": result.log_w.detach().cpu().numpy(),
              "energy": result.energy.detach().cpu().numpy()}
    if result.energy_traces is not None:
        arrays["energy_traces"] = result.energy_traces.detach().cpu().numpy()
    if result.abs_magnetisation_traces is not None:
        arrays["abs_magnetisation_traces"] = result.abs_magnetisation_traces.detach().cpu().numpy()
    arrays.update({key: value.detach().cpu().numpy() for key, value in result.arrays.items()})
    if target is not None:
        arrays.update(target.observables(result.x.detach()))
    return arrays


def result_record(result: EnergyResult) -> EnergyResultRecord:
    return EnergyResultRecord(weighted=result.weighted, diagnostics=result.diagnostics,
                              log_z=None if result.log_z is None else result.log_z.to_json())


def fit_energy(config: EnergyRunConfig, out: Path | None = None) -> Path:
    if out is not None:
        check_out_dir(out)
    result, problem = run_method(config)
    target = problem.user_target
    return write_energy_run(out or default_run_dir(f"{target.name}-{config.method.name}"),
                            config, target, result)


def write_energy_run(run_dir: Path, config: EnergyRunConfig, target, result: EnergyResult, *,
                     model_file: Path | None = None,
                     transferred_from: dict | None = None) -> Path:
    """Estimate `result` and write it as the energy run `run_dir` (staged: the directory
    appears only complete). `model_file`: weights to keep when `result.model` is None (a
    transfer keeps its source's); `transferred_from`: run.json's note of that source."""
    from heatbath.energy.estimate import estimate_energy_result

    arrays = sample_arrays(result, target)
    estimate = estimate_energy_result(target, result.x, result.log_w, result.energy,
                                      arrays, result_record(result), n=None)
    with staged_directory(run_dir) as stage:
        if model_file is not None:
            atomic_write_bytes(stage / "model.safetensors", Path(model_file).read_bytes())
        _write_run(stage, config, target, result, arrays, estimate, transferred_from)
    return run_dir


def _write_run(run_dir: Path, config: EnergyRunConfig, target, result: EnergyResult,
               arrays: dict, estimate: dict, transferred_from: dict | None) -> None:
    from heatbath.report import write_report

    plugin = _keep_plugin(config, run_dir)
    atomic_write_text(run_dir / "config.toml", to_toml(config))
    atomic_save_npz(run_dir / "samples.npz", arrays)
    write_record(run_dir / RESULT_JSON, result_record(result))
    atomic_write_text(run_dir / "metrics.jsonl",
                      "".join(json.dumps(record) + "\n" for record in result.metrics))
    atomic_write_json(run_dir / "estimate.json", estimate)
    if result.model is not None:   # trained flow / SNF weights, rebuildable from config.toml
        atomic_save_tensors(run_dir / "model.safetensors", result.model.state_dict())
    write_record(run_dir / RUN_JSON, _run_record(config, target, plugin, transferred_from))
    write_report(run_dir)
