"""`heatbath sample`: options -> SamplerSettings -> samples -> .npz (written atomically)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from heatbath.cli.app import app, check_device, echo, refuse_gpu_for_energy
from heatbath.core.errors import UserError


@app.command()
def sample(run_dir: Path = typer.Argument(..., metavar="RUN_DIR"),
           n: Optional[int] = typer.Option(None, "-n", min=1,
                                           help="number of samples (default 1000; with --from, "
                                                "one per observation)"),
           sampler: Optional[str] = typer.Option(None, "--sampler"),
           nfe: Optional[int] = typer.Option(None, "--nfe", help="network evaluations per sample"),
           guidance: Optional[float] = typer.Option(None, "--guidance",
                                                    help="classifier-free guidance weight (default: sample.guidance of the run)"),
           cond: Optional[str] = typer.Option(None, "--cond", help="labels '3' / '0,1' or rows 'a,b;c,d'"),
           seed: int = typer.Option(0, "--seed"),
           log_q: bool = typer.Option(False, "--log-q", help="also compute log q(x)"),
           out: Optional[Path] = typer.Option(None, "--out",
                                              help="FILE.npz; with --target a new run directory"),
           target: Optional[str] = typer.Option(
               None, "--target", help="energy runs (autoregressive, masked): draw for another "
                                      "beta or size of the run's target, e.g. ising2d:L=32,beta=0.5, "
                                      "into the new run --out NEW_RUN"),
           grid: Optional[str] = typer.Option(
               None, "--grid", help="uniform, karras, logsnr or quadratic"),
           eta: Optional[float] = typer.Option(None, "--eta"),
           churn: Optional[float] = typer.Option(None, "--churn"),
           conjugate_lambda: Optional[float] = typer.Option(
               None, "--conjugate-lambda", help="λ of --sampler conjugate (0 = DDIM)"),
           clip: Optional[bool] = typer.Option(None, "--clip/--no-clip",
                                               help="clamp denoised estimates to the data range"),
           device: str = typer.Option("cpu", "--device", help="cpu or cuda (data runs)"),
           shape: Optional[str] = typer.Option(
               None, "--shape", metavar="L,M",
               help="lattice runs (data.kind=lattice): draw lattices of another size"),
           order: Optional[str] = typer.Option(
               None, "--order", help="masked lattice runs: raster, sublattice (exact at fewer "
                                     "steps) or random (seeded by sample.order_seed); default: "
                                     "sample.order of the run, the order estimate scores"),
           from_file: Optional[Path] = typer.Option(
               None, "--from", help="coupled runs (path.base): FILE.npz of observations c (or "
                                    "clean points x to corrupt, for PSNR) to restore"),
           quiet: bool = typer.Option(False, "--quiet")):
    """Draw samples from a trained run (optionally with per-sample log q); with --target, an
    autoregressive or masked energy run's model for another beta or lattice size, into a new
    run."""
    from heatbath.core.records import read_run_record

    check_device(device)
    _check_out(out, transfer=target is not None)
    energy = read_run_record(run_dir).kind == "energy"
    if from_file is not None and energy:
        raise UserError("--from restores observations with a data run trained with path.base; "
                        f"{run_dir} is an energy run")
    if n is None and (energy or from_file is None):
        n = 1000
    if target is not None and not energy:
        raise UserError(f"--target draws an energy run's model for another target; {run_dir} "
                        f"is a data run")
    if energy:
        from heatbath.energy.sample import sample_energy_run

        refuse_gpu_for_energy(device)
        _refuse_data_options(sampler=sampler, nfe=nfe, guidance=guidance, cond=cond,
                             log_q=log_q or None, grid=grid, eta=eta, churn=churn,
                             conjugate_lambda=conjugate_lambda, clip=clip, shape=shape,
                             order=order)
        if target is not None:
            from heatbath.energy.transfer import transfer_energy_run

            path = transfer_energy_run(run_dir, target, n=n, seed=seed, out=out)
            echo(f"{n} weighted samples of {target} -> new run {path} (heatbath estimate "
                 f"{path})", quiet)
            return
        path = sample_energy_run(run_dir, n=n, seed=seed, out=out)
        echo(f"{n} weighted samples -> {path}", quiet)
        return
    sample_data_command(run_dir=run_dir, n=n, sampler=sampler, nfe=nfe, guidance=guidance,
                        cond=cond, seed=seed, log_q=log_q, out=out, grid=grid, eta=eta,
                        churn=churn, conjugate_lambda=conjugate_lambda, clip=clip,
                        device=device, quiet=quiet, from_file=from_file, shape=shape,
                        order=order)


def _check_out(out: Optional[Path], transfer: bool) -> None:
    """--out is FILE.npz, or with --target the new run directory (required)."""
    if transfer and out is None:
        raise UserError("--target writes a new energy run: give its directory with --out NEW_RUN")
    if out is None:
        return
    if transfer and out.suffix == ".npz":
        raise UserError(f"with --target, --out names a new run directory, not a .npz file: {out}")
    if not transfer and out.suffix != ".npz":
        raise UserError(f"--out must end in .npz, got {out}")
    if not out.parent.exists():
        raise UserError(f"the folder of --out does not exist: {out.parent}")


def sample_data_command(*, run_dir, n, sampler, nfe, guidance, cond, seed, log_q, out, grid,
                        eta, churn, conjugate_lambda, clip, device, quiet,
                        from_file=None, shape=None, order=None) -> None:
    import numpy as np

    from heatbath.core.progress import counter_bar
    from heatbath.core.runs import atomic_save_npz
    from heatbath.generative.run import load_run
    from heatbath.generative.sample import parse_condition, sample_run

    run = load_run(run_dir, device)
    if run.is_discrete:
        continuous = dict(sampler=sampler, guidance=guidance, cond=cond, grid=grid, eta=eta,
                          churn=churn, conjugate_lambda=conjugate_lambda, clip=clip,
                          from_=from_file)
        named = [f"--{k.strip('_').replace('_', '-')}" for k, v in continuous.items()
                 if v is not None]
        if named:
            raise UserError(f"{', '.join(named)} do(es) not apply to a lattice run "
                            f"(path.name={run.config.path.name}; options: -n, --nfe, --log-q, "
                            f"--shape, --order, --seed, --out)")
        return sample_lattice_command(run, n=n, nfe=nfe, seed=seed, log_q=log_q, out=out,
                                      shape=shape, quiet=quiet, order=order)
    if shape is not None:
        raise UserError("--shape applies to lattice runs (data.kind=lattice)")
    if order is not None:
        raise UserError("--order orders the sites of a masked lattice run (data.kind=lattice, "
                        "path.name=masked)")
    s = run.config.sample
    settings = s.settings(name=sampler, nfe=nfe, grid=grid, eta=eta, churn=churn,
                          conjugate_lambda=conjugate_lambda)
    observed = _observed(run, from_file, n, seed)
    n = n if observed is None else len(observed.observation)
    condition = parse_condition(run, cond, n)
    if guidance is None:   # [sample] guidance is the run's default, used only with --cond
        guidance = s.guidance if condition is not None else 0.0
    with counter_bar("sampling", n, quiet) as advance:
        result = sample_run(run, n, settings, seed=seed, cond=condition, guidance=guidance,
                            with_log_q=log_q, clip=s.clip if clip is None else clip,
                            progress=advance,
                            observation=None if observed is None else observed.observation)
    arrays = {"x": result.x.numpy(), "nfe": np.array(result.nfe)}
    quality = ""
    if observed is not None:
        extra, quality = restoration_arrays(run, result.x, observed)
        arrays.update(extra)
    if condition is not None:
        arrays["c"] = condition.numpy()
    if log_q:
        arrays.update(log_q_arrays(result))
    target = out or run_dir / f"samples-{settings.name}-{settings.nfe}-seed{seed}.npz"
    atomic_save_npz(target, arrays)
    extra = f", {LOG_Q_SUMMARY[result.log_q_kind]}" if log_q else ""
    what = "restorations" if observed is not None else "samples"
    echo(f"{n} {what} with {settings.name}, NFE {result.nfe}{quality}{extra} -> {target}", quiet)


def sample_lattice_command(run, *, n, nfe, seed, log_q, out, shape, quiet, order=None) -> None:
    """A lattice run's samples: integer x, and with --log-q (masked path) their exact log q;
    a masked run's .npz records the site order it was drawn in."""
    import numpy as np

    from heatbath.core.progress import counter_bar
    from heatbath.core.runs import atomic_save_npz
    from heatbath.generative.lattice import (exact_log_q_meaning, masked_order, sample_lattice,
                                             sampler_name)

    size = None
    if shape is not None:
        try:
            size = tuple(int(v) for v in shape.split(","))
        except ValueError:
            raise UserError(f"--shape needs two integers L,M, got '{shape}'") from None
    with counter_bar("sampling", n, quiet) as advance:
        result = sample_lattice(run, n, seed=seed, nfe=nfe, with_log_q=log_q, shape=size,
                                progress=advance, order=order)
    arrays = {"x": result.x.numpy(), "nfe": np.array(result.nfe)}
    sampler = sampler_name(run)
    if run.path.exact_log_q:   # masked: which of its models drew (and, with --log-q, scored)
        order = masked_order(run, order)
        arrays["order"] = np.array(order)
        sampler = sampler if order == "raster" else f"{sampler}-{order}"
    if log_q:
        arrays.update(log_q=result.log_q.numpy(), log_q_density=np.array(
            exact_log_q_meaning(order)))
    target = out or run.run_dir / f"samples-{sampler}-{result.nfe}-seed{seed}.npz"
    atomic_save_npz(target, arrays)
    extra = ", log_q: exact log-probability of these samples" if log_q else ""
    lattice = "x".join(map(str, result.x.shape[1:]))
    echo(f"{n} {lattice} lattices with the {sampler} sampler, NFE {result.nfe}{extra} -> "
         f"{target}", quiet)


def _observed(run, from_file, n, seed):
    """--from's observations, cycled to -n rows when given; None without --from."""
    from heatbath.generative.restore import cycled, read_observed

    if from_file is None:
        if run.config.path.base != "noise":
            raise UserError(f"this model restores observations (path.base="
                            f"{run.config.path.base}): pass them with --from FILE.npz")
        return None
    if run.config.path.base == "noise":
        raise UserError("--from restores observations: it needs a model trained with "
                        "path.base=inpaint, superres or paired")
    observed = read_observed(run, from_file, seed)
    return cycled(observed, n or len(observed.observation))


def restoration_arrays(run, restored, observed) -> tuple[dict, str]:
    """The .npz arrays of a restoration (its base and missing map; with clean points, the
    truth and per-sample PSNR) and the summary for the terminal."""
    from heatbath.generative.restore import restoration_quality

    obs = observed.observation
    arrays = {"base": obs.base.numpy(), "missing": obs.missing.numpy()}
    quality = restoration_quality(run, restored, observed)
    if quality is None:
        return arrays, ""
    arrays.update(truth=observed.truth.numpy(), psnr=quality["psnr"].numpy(),
                  psnr_base=quality["psnr_base"].numpy())
    return arrays, (f", PSNR {float(quality['psnr'].mean()):.2f} dB (base "
                    f"{float(quality['psnr_base'].mean()):.2f} dB)")


# One line each for the terminal; the .npz carries samplers.DENSITY_MEANING in full.
LOG_Q_SUMMARY = {"map": "log_q: exact density of these samples (the sampler's own map)",
                 "path": "log_q_path: path log-weight (log p(x) - log_q_path is an unbiased "
                         "log importance weight; a stochastic sampler's x has no density)",
                 "ode": "log_q: density of the probability-flow ODE (adaptive solver)"}


def log_q_arrays(result) -> dict:
    """`--log-q`'s arrays: `log_q` (a density of x) or `log_q_path` (a path log-weight), what
    it is in words, and for the ODE density its cost and Hutchinson error."""
    import numpy as np

    from heatbath.samplers import DENSITY_MEANING

    key = "log_q_path" if result.log_q_kind == "path" else "log_q"
    arrays = {key: result.log_q.numpy(), "log_q_density": np.array(
        DENSITY_MEANING[result.log_q_kind])}
    if result.log_q_kind == "ode":
        arrays["likelihood_nfe"] = np.array(result.likelihood_nfe)
        if result.likelihood_method == "hutchinson":
            arrays["log_q_stderr"] = result.log_q_stderr.numpy()
    return arrays


def _refuse_data_options(**given) -> None:
    """Energy runs draw from a flow: the data samplers' options would be silently ignored."""
    named = [f"--{name.replace('_', '-')}" for name, value in given.items() if value is not None]
    if named:
        raise UserError(f"{', '.join(named)} appl{'ies' if len(named) == 1 else 'y'} to data "
                        f"runs; an energy run's samples come from its trained flow (use -n, "
                        f"--seed, --out)")
