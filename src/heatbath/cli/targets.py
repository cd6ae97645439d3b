"""`heatbath targets`: the built-in energy targets with conventions, parameters, exact values."""

from __future__ import annotations

import json

import typer

from heatbath.cli.app import app


@app.command()
def targets(as_json: bool = typer.Option(False, "--json")):
    """List the built-in energy targets with conventions, parameters and exact values."""
    from heatbath.targets.registry import list_targets

    entries = list_targets()
    if as_json:
        typer.echo(json.dumps(entries, default=str))
        return
    for entry in entries:
        typer.echo(f"{entry['name']:<12} {entry.get('description', '')}")
        if entry.get("exact"):
            typer.echo(f"{'':<12} exact: {json.dumps(entry['exact'], default=str)}")
