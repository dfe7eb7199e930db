"""``dhns tune``: hyper-parameter search with Optuna."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from dhns_geo.cli.app import app
from dhns_geo.cli.options import config_from
from dhns_geo.cli.output import format_table
from dhns_geo.config import read_config_file
from dhns_geo.errors import OptionError
from dhns_geo.validation import check, integer, number, optional


@app.command()
def tune(
    config: Optional[Path] = typer.Option(None, "--config", help="Base options (YAML or JSON, as for dhns train); the space's values replace them."),
    dataset: Optional[str] = typer.Option(None, "--dataset", help="Dataset (overrides the base config)."),
    scorer: Optional[str] = typer.Option(None, "--scorer", help="Scorer (overrides the base config)."),
    sampler: Optional[str] = typer.Option(None, "--sampler", help="Sampler (overrides the base config)."),
    epochs: Optional[int] = typer.Option(None, "--epochs", help="Epochs per trial (overrides the base config)."),
    space: Optional[Path] = typer.Option(None, "--space", help="Search space (YAML); default: a space for the scorer, loss and sampler."),
    trials: int = typer.Option(20, "--trials", help="Finished trials the study should hold (an interrupted study resumes)."),
    timeout: Optional[float] = typer.Option(None, "--timeout", help="Stop starting trials after this many seconds."),
    out: Path = typer.Option(Path("runs/tune"), "--out", help="Study folder: study.db, trials.csv, best.yaml, trial-N run folders."),
) -> None:
    """Search hyper-parameters on valid MRR (median pruning, never test);
    writes best.yaml for dhns train --config."""
    from dhns_geo.tune import check_space, default_space
    from dhns_geo.tune import tune as run_tune

    check("--trials", trials, integer(1))
    check("--timeout", timeout, optional(number(0, above=True)))
    check("--epochs", epochs, optional(integer(1)))
    if space is not None and not space.is_file():
        raise OptionError("--space", str(space), "an existing YAML file")
    values = read_config_file(config) if config is not None else {}
    flags = {k: v for k, v in (("dataset", dataset), ("scorer", scorer),
                               ("sampler", sampler), ("epochs", epochs)) if v is not None}
    base = config_from(values, flags, str(config))
    import yaml
    grid = (check_space(yaml.safe_load(space.read_text()), str(space))
            if space is not None else default_space(base))
    typer.echo(f"searching {', '.join(grid)} for {base.dataset} {base.scorer} "
               f"{base.sampler}: {trials} trials in {out}")
    result = run_tune(base, grid, out, trials, timeout, log=typer.echo)
    typer.echo(f"\nbest valid MRR {result['best_value']:.4f}:")
    typer.echo(format_table(["option", "value"], sorted(result["best_params"].items())))
    typer.echo(f"\ntrain it: dhns train --config {out / 'best.yaml'}")
