"""`heatbath sample`: options -> SamplerSettings -> samples -> .npz (written atomically)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from heatbath.errors import UserError
from heatbath.generate import parse_condition, sample_run
from heatbath.model_io import load_run
from heatbath.progress import counter_bar
from heatbath.runs import atomic_save_npz, read_run_info
from heatbath.samplers import SamplerSettings


def sample_command(run_dir: Path, n: int, sampler, nfe, guidance, cond, seed, log_q, out,
                   grid, eta, churn, clip, quiet) -> None:
    if out is not None and out.suffix != ".npz":
        raise UserError(f"--out must end in .npz, got {out}")
    if out is not None and not out.parent.exists():
        raise UserError(f"the folder of --out does not exist: {out.parent}")
    if read_run_info(run_dir)["kind"] == "energy":
        from heatbath.energy.sample import sample_energy_run

        path = sample_energy_run(run_dir, n, seed, out)
        if not quiet:
            print(f"{n} weighted samples -> {path}")
        return
    run = load_run(run_dir)
    s = run.config.sample
    settings = SamplerSettings(sampler or s.sampler, nfe if nfe is not None else s.nfe,
                               grid or s.grid, s.eta if eta is None else eta,
                               s.churn if churn is None else churn)
    condition = parse_condition(run, cond, n)
    with counter_bar("sampling", n, quiet) as advance:
        result = sample_run(run, n, settings, seed=seed, cond=condition, guidance=guidance,
                            with_log_q=log_q, clip=s.clip if clip is None else clip, progress=advance)
    arrays = {"x": result.x.numpy(), "nfe": np.array(result.nfe)}
    if condition is not None:
        arrays["c"] = condition.numpy()
    if log_q:
        arrays["log_q"] = result.log_q.numpy()
        arrays["likelihood_nfe"] = np.array(result.likelihood_nfe)
        if result.likelihood_method == "hutchinson":
            arrays["log_q_stderr"] = result.log_q_stderr.numpy()
    target = out or run_dir / f"samples-{settings.name}-{settings.nfe}-seed{seed}.npz"
    atomic_save_npz(target, arrays)
    extra = f", log q: {result.likelihood_method} ({result.likelihood_nfe} NFE)" if log_q else ""
    if not quiet:
        print(f"{n} samples with {settings.name}, NFE {result.nfe}{extra} -> {target}")
