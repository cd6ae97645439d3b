"""Sampling from a trained run: conditions, guidance, and per-sample log q."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from heatbath.core.errors import UserError
from heatbath.generative.run import LoadedRun
from heatbath.samplers import PHASE_DENSITY_REFUSAL, SamplerSettings, draw_samples


DENSITY_BATCH = 64   # samples per batch when --log-q differentiates through the sampler


@dataclass
class GeneratedSamples:
    x: torch.Tensor
    nfe: int
    cond: torch.Tensor | None = None
    log_q: torch.Tensor | None = None
    log_q_stderr: torch.Tensor | None = None
    likelihood_nfe: int = 0
    likelihood_method: str | None = None
    log_q_kind: str | None = None   # "map", "path" or "ode": samplers.DENSITY_MEANING;
                                    # "exact": a lattice run's probability (generative.lattice)


def parse_condition(run: LoadedRun, text: str | None, n: int) -> torch.Tensor | None:
    """--cond: class labels '3' or '0,1,2' (cycled over samples); continuous rows 'a,b;c,d'."""
    if text is None:
        return None
    kind = run.info.cond_kind
    if kind is None:
        raise UserError("this model was trained without conditions; drop --cond")
    try:
        if kind == "class":
            labels = [int(v) for v in text.split(",")]
            classes = run.info.num_classes
            if any(not 0 <= v < classes for v in labels):
                raise UserError(f"--cond labels must be in 0..{classes - 1}, got {text}")
            return torch.tensor(labels)[torch.arange(n) % len(labels)]
        rows = [[float(v) for v in row.split(",")] for row in text.split(";")]
    except ValueError:
        raise UserError(f"bad --cond '{text}': give numbers separated by commas "
                        f"(rows separated by ';' for continuous conditions)") from None
    width = run.info.cond_dim
    if any(len(row) != width for row in rows):
        raise UserError(f"--cond rows need {width} value(s) each, got '{text}'")
    values = torch.tensor(rows, dtype=run.dtype)
    return values[torch.arange(n) % len(rows)]


def sample_run(run: LoadedRun, n: int, settings: SamplerSettings, *, seed: int = 0,
               cond: torch.Tensor | None = None, guidance: float = 0.0, with_log_q: bool = False,
               batch_size: int = 1000, clip: bool = False,
               progress=None, observation=None) -> GeneratedSamples:
    """Draw n samples; with_log_q adds the density of what the sampler returned
    (`samplers.returned`): exact for a deterministic fixed-step sampler, a path log-weight for
    a stochastic one, the probability-flow ODE's (Hutchinson probes and tolerances from
    [eval]) for an adaptive one. `out.log_q_kind` says which.

    clip clamps the denoised estimate to the training data's range while sampling; the
    clamped map has no density, so with_log_q refuses it for fixed-step samplers.

    A coupled run (path.base) restores one `observation` row per sample (n rows): x = b(c) + y
    with y drawn on the unknown subspace, and log q is log q(x | c) there.

    A lattice run (path.name=masked | uniform) ignores `settings`: masked reveals its sites in
    the run's sample.order (raster, sublattice or random), its log q exact; uniform takes the path's default CTMC steps, no
    log q (`generative.lattice.sample_lattice` for other step counts and lattice sizes).
    """
    if run.is_discrete:
        if cond is not None or guidance or clip or observation is not None:
            raise UserError("lattice models are unconditional: drop --cond, --guidance, --clip "
                            "and --from")
        from heatbath.generative.lattice import sample_lattice

        return sample_lattice(run, n, seed=seed, with_log_q=with_log_q, batch_size=batch_size,
                              progress=progress)
    if (observation is None) != (run.config.path.base == "noise"):
        raise UserError("this model restores observations: pass them with --from FILE"
                        if observation is None else "--from FILE needs a model trained with "
                        "path.base=inpaint, superres or paired")
    if observation is not None and len(observation) != n:
        raise ValueError(f"{len(observation)} observations for {n} samples")
    if observation is not None and clip:
        raise UserError(f"--clip clamps x̂₁ to the data's range, but a path.base="
                        f"{run.config.path.base} model predicts the residual x − b(c); drop --clip")
    if n < 1:
        raise UserError(f"-n must be at least 1, got {n}")
    if not math.isfinite(guidance):
        raise UserError(f"--guidance must be a finite number, got {guidance}")
    if guidance != 0.0 and cond is None:
        raise UserError("--guidance needs --cond (guidance mixes conditional and unconditional)")
    try:
        settings.validate()
    except ValueError as exc:
        raise UserError(str(exc)) from None
    if run.path.is_phase_space and (with_log_q or clip):
        raise UserError(PHASE_DENSITY_REFUSAL + "; drop --log-q" if with_log_q else
                        "--clip clamps a predicted x̂₁, which phase-space models do not "
                        "predict; drop --clip")
    kind = settings.sampler.density(settings) if with_log_q else None
    if kind in ("map", "path") and clip:
        raise UserError("--log-q with --clip: clamping makes the sampler's map lose its "
                        "density; drop --clip (or use --sampler dopri5 for the ODE density)")
    if kind in ("map", "path"):
        # The Jacobian's backward passes hold the whole sampler's graph: digits U-Net, Heun at
        # 35 NFE, 64 samples took 1.6 GB. Samples do not depend on the batching.
        batch_size = min(batch_size, DENSITY_BATCH)
    outputs, log_qs, nfe = [], [], 0
    for start in range(0, n, batch_size):
        stop = min(n, start + batch_size)
        rows = None if cond is None else cond[start:stop]
        part = None if observation is None else observation.rows(slice(start, stop))
        field = (run.field(rows, guidance, clip) if part is None
                 else run.coupled_field(part, rows, guidance))
        try:
            result = draw_samples(field, stop - start, run.event_shape, settings, seed=seed,
                                  batch_size=stop - start, first_index=start, dtype=run.dtype,
                                  device=run.device, with_log_q=kind in ("map", "path"))
        except ValueError as exc:
            raise UserError(str(exc)) from None
        outputs.append(result.x.cpu() if part is None
                       else part.base.cpu() + part.project(result.x.cpu()))
        if result.log_q is not None:
            log_qs.append(result.log_q.cpu())
        nfe = max(nfe, result.nfe)
        if progress is not None:
            progress(stop - start)
    out = GeneratedSamples(torch.cat(outputs), nfe, cond, log_q_kind=kind)
    if kind == "ode":
        _attach_log_q(run, out, cond, guidance, seed, batch_size, observation)
    elif kind is not None:
        out.log_q = torch.cat(log_qs)
    return out


def _attach_log_q(run, out: GeneratedSamples, cond, guidance, seed, batch_size,
                  observation=None) -> None:
    found = run.log_likelihood(out.x, cond=cond, guidance=guidance, seed=seed,
                               batch_size=batch_size, observation=observation)
    out.log_q, out.log_q_stderr = found.log_q, found.stderr
    out.likelihood_nfe, out.likelihood_method = found.nfe, found.method
