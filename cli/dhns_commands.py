"""``dhns sample-negatives``: DHNS as a hard-negative miner for a run."""

from __future__ import annotations

import csv
import sys
from pathlib import Path
from typing import Optional

import torch
import typer

from dhns_geo.cli.app import app
from dhns_geo.cli.options import TSV_OUT_OPTION, comma_list
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
    generator = torch.Generator(device=dev).manual_seed(seed)
    show = sys.stderr.isatty() if progress is None else progress
    sampler = _trained_generator(config, data, model, checkpoint, generator_epochs,
                                 generator, show)
    positives = split_triples(data, split).to(dev)
    if limit:
        positives = positives[:limit]
    mined = mine_hard_negatives(sampler, model, positives,
                                build_filter_index(data).to(dev), generator, k,
                                _parse_levels(levels, sampler))
    handle = open(out, "w", newline="") if out else sys.stdout
    try:
        count = _write_rows(handle, positives, mined, sampler, data.entity_names or [])
    finally:
        if out:
            handle.close()
    if out:
        typer.echo(f"wrote {count} negatives for {positives.size(0)} positives to {out}")


def _trained_generator(config, data, model, checkpoint, epochs: int,
                       generator: torch.Generator, show: bool) -> DHNSSampler:
    """The run's DHNS generator: its trained state, or (a run trained
    without DHNS) one trained now on the frozen model with the run's DHNS
    options (their defaults)."""
    sampler = DHNSSampler.from_run(config, data).to(model.device)
    if config.sampler == "dhns":              # sampled negatives or 1-vs-all columns
        sampler.load_state_dict(objective_state(checkpoint))
        return sampler
    how = "1-vs-all" if config.training == "1vsall" else f"--sampler {config.sampler}"
    typer.echo(f"run trained with {how}: training the DHNS generator on "
               f"the frozen model ({epochs} epochs)", err=True)
    train_generator(sampler, model, split_triples(data, "train").to(model.device),
                    epochs, config.batch_size, generator, show)
    return sampler


def _write_rows(handle, positives, mined: dict, sampler: DHNSSampler,
                names: list[str]) -> int:
    """Writes the TSV of mined negatives; returns their number."""
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
        writer.writerow([h, r, t, side, position, lvl, sampler.levels[lvl],
                         sampler.margin_factors[lvl], rank, e,
                         names[e] if names else "", f"{dist:.6f}"])
    return len(cols["entity"])
