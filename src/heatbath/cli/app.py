"""The typer application every subcommand module registers on, and helpers they share."""

from __future__ import annotations

import typer

from heatbath.core.errors import UserError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  rich_markup_mode=None,
                  help="heatbath: generative models from data and samplers from energies.")


def echo(text: str, quiet: bool = False) -> None:
    if not quiet:
        typer.echo(text)


def check_device(device: str) -> None:
    """`--device`: cpu, cuda or cuda:N, and a CUDA device only where one exists."""
    import torch

    if device not in ("cpu", "cuda") and not device.startswith("cuda:"):
        raise UserError(f"unknown --device '{device}'; use cpu or cuda")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise UserError("--device cuda was asked for but no CUDA GPU is available; use --device cpu")


def refuse_gpu_for_energy(device: str | None) -> None:
    """Energy methods run their targets on the CPU (OpenMM, plug-ins, lattices): say so rather
    than silently ignoring --device."""
    if device is not None and device != "cpu":
        raise UserError(f"--device {device}: energy runs compute on the CPU; drop --device "
                        f"(it applies to data runs)")
