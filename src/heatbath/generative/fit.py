"""`heatbath fit` for data: load, validate, create the run directory, train, sample, report.

Everything that can fail on user input (data, config, run directory) is checked before the
first byte is written, so a bad invocation leaves nothing behind and never touches an
existing run.
"""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import numpy as np
import torch

from heatbath import __version__
from heatbath.core.checkpoint import save_model
from heatbath.generative.config import RunConfig, load_config
from heatbath.core.settings import to_toml
from heatbath.datasets import DataSet, load_source, split_holdout
from heatbath.core.errors import UserError
from heatbath.core.records import (RUN_JSON, DataRunRecord, DataSummary, read_run_record,
                                   write_record)
from heatbath.generative.corruptions import residual_scale
from heatbath.generative.elastic import mark_launch, restarted_into
from heatbath.generative.run import load_run, run_corruption
from heatbath.generative.resolve import (make_net, make_path, net_options, network_shape,
                                        resolve_config)
from heatbath.core.runs import (DTYPES, atomic_save_npz, atomic_save_tensors, atomic_write_text,
                                check_out_dir, default_run_dir, staged_directory)
from heatbath.generative.train import TrainingJob, distributed_context, train


def load_data(config: RunConfig) -> tuple[DataSet, DataSet]:
    if not config.data.source:
        raise UserError("no data given: pass --data SOURCE (a .npz/.npy file or builtin:NAME)")
    data = load_source(config.data.source, n=config.data.n or None, seed=config.train.seed,
                       kind=config.data.kind)
    config.data.kind = data.kind   # resolved: config.toml records what the samples were read as
    return split_holdout(data, config.data.holdout, seed=config.train.seed)


def _run_record(config: RunConfig, train_set: DataSet, heldout: DataSet, options: dict,
                sigma_data: float, mean: torch.Tensor) -> DataRunRecord:
    data = DataSummary(
        name=train_set.name, source=config.data.source, kind=train_set.kind,
        n_train=len(train_set), n_heldout=len(heldout), sigma_data=sigma_data,
        mean=mean.flatten().tolist(), min=train_set.x.flatten(1).min(0).values.tolist(),
        max=train_set.x.flatten(1).max(0).values.tolist(), levels=train_set.levels,
        data_range=list(train_set.data_range) if train_set.data_range else None)
    return DataRunRecord(
        name=train_set.name, status="training", step=0, event_shape=list(train_set.event_shape),
        data=data, net=options,
        path={"name": config.path.name, "prediction": config.path.prediction,
              "base": config.path.base},
        cond_kind=train_set.cond_kind, num_classes=train_set.num_classes,
        cond_dim=_condition_width(train_set), heatbath_version=__version__)


def _condition_width(ds: DataSet) -> int | None:
    if ds.cond_kind != "continuous":
        return None
    return 1 if ds.c.dim() == 1 else int(ds.c.shape[1])


def prepare_job(config: RunConfig, run_dir: Path) -> tuple[TrainingJob, DataRunRecord, DataSet]:
    train_set, heldout = load_data(config)
    resolve_config(config, train_set.event_shape, train_set.kind, train_set.x0 is not None)
    if train_set.kind == "lattice":   # integer states: no scale, mean shift or corruption
        from heatbath.generative.lattice import lattice_job

        job, options = lattice_job(config, run_dir, train_set)
        mean = train_set.x.double().mean(0)   # per-site mean state, for the record only
        return job, _run_record(config, train_set, heldout, options, 1.0, mean), heldout
    dtype = DTYPES[config.train.dtype]
    x = train_set.x.to(dtype)
    x0 = None if train_set.x0 is None else train_set.x0.to(dtype)
    mean = x.mean(0)
    corruption = run_corruption(config, mean)
    sigma_data = (float(x.std()) if corruption is None
                  else residual_scale(corruption, x, x0, config.train.seed)) or 1.0
    options = net_options(config, network_shape(config, train_set.event_shape),
                          train_set.cond_kind,
                          train_set.num_classes, _condition_width(train_set))
    net = make_net(options, seed=config.train.seed, dtype=dtype)
    path = make_path(config, sigma_data, mean, train_set.kind, train_set.event_shape)
    job = TrainingJob(config, run_dir, x, train_set.c, train_set.cond_kind, path, net,
                      corruption, x0, (float(x.min()), float(x.max())))
    return job, _run_record(config, train_set, heldout, options, sigma_data, mean), heldout


def _check_out_dir(out: Path, resume: bool) -> None:
    if resume:
        read_run_record(out)
        return
    check_out_dir(out, hint=", or continue that run with --resume")


def resumed_config(out: Path, overrides_applied: RunConfig | None) -> RunConfig:
    """The stored config of a run, with only the step count taken from the new invocation."""
    config = load_config(out / "config.toml")
    if overrides_applied is not None:
        config.train.steps = overrides_applied.train.steps
    return config


def fit_data(config: RunConfig, out: Path | None = None, *, resume: bool = False,
             progress=None, on_ready=None) -> Path:
    """Train a generative model; returns the run directory."""
    if resume and out is None:
        raise UserError("--resume needs --out RUN_DIR (the run to continue)")
    if not resume and out is not None and restarted_into(out):
        resume = True   # torchrun restarted this launch after a failure: continue its own run
    if out is not None:
        _check_out_dir(out, resume)
    ctx = distributed_context(config.train.device)
    if out is None and ctx.world > 1:
        raise UserError("with torchrun, pass --out RUN_DIR so that every process uses one run")
    run_dir = out
    job, info, heldout = prepare_job(config, run_dir or Path("."))
    if run_dir is None:
        run_dir = default_run_dir(info.name)
        job.run_dir = run_dir
    created = False
    if ctx.is_main and not resume:
        created = not run_dir.exists()
        _write_new_run(run_dir, config, info, heldout, job.train_x.dtype)
    if ctx.world > 1:
        torch.distributed.barrier()
    if on_ready is not None:
        on_ready(run_dir)
    try:
        ema_state = train(job, resume, progress)
    except Exception:
        if created and ctx.is_main and not (run_dir / "checkpoint" / "state.json").exists():
            shutil.rmtree(run_dir, ignore_errors=True)
        raise
    if ctx.is_main:
        _finish(run_dir, config, ema_state)
    if ctx.world > 1:
        # Every rank waits for rank 0's files, then all leave the group together: a rank that
        # exits while a peer still holds gloo connections can make that peer abort.
        torch.distributed.barrier()
        torch.distributed.destroy_process_group()
    return run_dir


def _write_new_run(run_dir: Path, config: RunConfig, info: DataRunRecord, heldout: DataSet,
                   dtype: torch.dtype) -> None:
    """The files a run starts with, renamed into place together: a restarted torchrun launch
    (elastic.py) then finds either no run or one it can resume, never half of one."""
    with staged_directory(run_dir) as stage:
        atomic_write_text(stage / "config.toml", to_toml(config))
        write_record(stage / RUN_JSON, info)
        tensors = {"x": heldout.x.to(dtype)}
        if heldout.c is not None:
            tensors["c"] = heldout.c
        if heldout.x0 is not None:
            tensors["x0"] = heldout.x0.to(dtype)
        atomic_save_tensors(stage / "heldout.safetensors", tensors)
        mark_launch(stage)


def _finish(run_dir: Path, config: RunConfig, ema_state: dict) -> None:
    from heatbath.generative.restore import cycled, heldout_observed
    from heatbath.generative.sample import sample_run
    from heatbath.report import write_report

    save_model(run_dir / "model.safetensors", ema_state)
    info = dataclasses.replace(read_run_record(run_dir), status="complete",
                               step=config.train.steps)
    write_record(run_dir / RUN_JSON, info)
    run = load_run(run_dir)
    s = config.sample
    arrays = {}
    observed = None
    if config.path.base != "noise":   # restore the held-out points' observations
        observed = cycled(heldout_observed(run, config.train.seed), config.eval.samples)
        arrays = {"base": observed.observation.base.numpy(), "truth": observed.truth.numpy()}
    result = sample_run(run, config.eval.samples, s.settings(), seed=config.train.seed,
                        clip=s.clip, observation=None if observed is None
                        else observed.observation)
    atomic_save_npz(run_dir / "samples.npz", {"x": result.x.numpy(),
                                              "nfe": np.array(result.nfe), **arrays})
    write_report(run_dir)
