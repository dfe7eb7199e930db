"""``dhns presets`` and ``dhns samplers``: what a run can start from."""

from __future__ import annotations

import typer

from dhns_geo.cli.app import app
from dhns_geo.presets import PRESETS
from dhns_geo.sampling.registry import SAMPLERS


@app.command("presets")
def presets() -> None:
    """List the presets: what each sets, its source and the command that
    reproduces its row."""
    for name, preset in PRESETS.items():
        typer.echo(f"{name}: {preset.summary}")
        typer.echo(f"  source:  {preset.source}")
        if preset.row:
            typer.echo(f"  row:     {preset.row}")
        typer.echo(f"  command: {preset.command(name)}")


@app.command("samplers")
def samplers() -> None:
    """List the negative samplers of --sampler: paper, what each draws and
    its cost (MKG-Y, RotatE, 64 negatives per positive)."""
    for name, entry in SAMPLERS.items():
        agnostic = "any model (KGEAdapter)" if entry.model_agnostic else "dhns-geo models"
        typer.echo(f"{name}: {entry.summary}")
        variants = "".join(f", variant {variant} {cost:g}x"
                           for variant, cost in entry.variant_costs.items())
        typer.echo(f"  paper: {entry.paper}; serves {agnostic}; an epoch costs about "
                   f"{entry.cost:g}x self-adversarial uniform negatives'{variants}")
