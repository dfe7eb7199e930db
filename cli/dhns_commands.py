"""``dhns sample-negatives``: DHNS as a hard-negative miner for a run."""

from __future__ import annotations

import csv
import sys
from pathlib import Path
from typing import Optional

import torch
import typer

from dhns_geo.cli.main import app
from dhns_geo.cli.options import TSV_OUT_OPTION, comma_list
from dhns_geo.build import build_dhns_sampler
from dhns_geo.data import build_filter_index, split_triples
from dhns_geo.diffusion import (SIDES, DHNSSampler, mine_hard_negatives,
                                train_generator)
from dhns_geo.errors import OptionError
from dhns_geo.runs import load_run
from dhns_geo.training import objective_state
from dhns_geo.validation import (check, choice, device_rule, integer,
                                 optional)


def _parse_levels(text: str | None, sampler: DHNSSampler) -> list[int]:
    """``--levels 1,5,25`` (diffusion steps) -> level indices."""
    if text is None:
        return list(range(len(sampler.levels)))
    steps = comma_list(text, int, "--levels")
    unknown = [s for s in steps if s not in sampler.levels]
    if unknown:
        raise OptionError("--levels", text, "steps among the run's levels "
                          f"{sampler.levels}")
    return [sampler.levels.index(s) for s in steps]


@app.command("sample-negatives")
def sample_negatives(
    run_dir: Path = typer.Argument(..., help="A run folder written by dhns train."),
    split: str = typer.Option("test", "--split", help="train, valid or test."),
    limit: Optional[int] = typer.Option(100, "--limit", help="Number of positives (0: all)."),
    levels: Optional[str] = typer.Option(None, "--levels", help="Comma-separated diffusion steps (default: all levels)."),
    k: int = typer.Option(5, "--k", help="Nearest real entities per generated embedding."),
    out: Optional[Path] = TSV_OUT_OPTION,
    generator_epochs: int = typer.Option(3, "--generator-epochs", help="Epochs of generator training when the run has no trained generator."),
    device: Optional[str] = typer.Option(None, "--device", help="auto, cpu or cuda."),
    seed: int = typer.Option(0, "--seed", help="Random seed of the sampling."),
    progress: Optional[bool] = typer.Option(None, "--progress/--no-progress"),
) -> None:
    """Generate hierarchical negatives for a run's triples and map them to
    their nearest real entities (filtered); writes a TSV."""
    check("--split", split, choice("train", "valid", "test"))
    check("--limit", limit, optional(integer(0)))
    check("--k", k, integer(1))
    check("--generator-epochs", generator_epochs, integer(1))
    check("--device", device, optional(device_rule))
    check("--seed", seed, integer(0, 2 ** 63 - 1))
    if levels is not None:
        comma_list(levels, int, "--levels")
    config, data, model, checkpoint = load_run(run_dir, device)
    dev = model.device
    for p in model.parameters():
        p.requires_grad_(False)
    filter_index = build_filter_index(data).to(dev)
    # The run's DHNS options (their defaults for a run trained without DHNS).
    sampler = build_dhns_sampler(config, data).to(dev)
    generator = torch.Generator(device=dev).manual_seed(seed)
    show = sys.stderr.isatty() if progress is None else progress
    trained = config.training == "negatives" and config.sampler == "dhns"
    if trained:
        sampler.load_state_dict(objective_state(checkpoint))
    else:
        how = ("1-vs-all" if config.training == "1vsall"
               else f"--sampler {config.sampler}")
        typer.echo(f"run trained with {how}: training the DHNS generator on "
                   f"the frozen model ({generator_epochs} epochs)", err=True)
        train_generator(sampler, model, split_triples(data, "train").to(dev),
                        generator_epochs, config.batch_size, generator, show)
    positives = split_triples(data, split).to(dev)
    if limit:
        positives = positives[:limit]
    chosen = _parse_levels(levels, sampler)
    mined = mine_hard_negatives(sampler, model, positives, filter_index,
                                generator, k, chosen)
    names = data.entity_names or []
    handle = open(out, "w", newline="") if out else sys.stdout
    try:
        writer = csv.writer(handle, delimiter="\t", lineterminator="\n")
        writer.writerow(["head", "relation", "tail", "side", "position", "level",
                         "step", "margin_factor", "rank", "negative_id",
                         "negative_name", "distance"])
        pos = positives.cpu()
        cols = {c: v.cpu().tolist() for c, v in mined.items()}
        for p, s, lvl, rank, e, dist in zip(*(cols[c] for c in (
                "positive", "side", "level", "rank", "entity", "distance"))):
            h, r, t = pos[p].tolist()
            side, position = SIDES[s]
            writer.writerow([h, r, t, side,
                             position, lvl, sampler.levels[lvl],
                             sampler.margin_factors[lvl], rank, e,
                             names[e] if names else "", f"{dist:.6f}"])
    finally:
        if out:
            handle.close()
    if out:
        typer.echo(f"wrote {len(cols['entity'])} negatives for "
                   f"{positives.size(0)} positives to {out}")
