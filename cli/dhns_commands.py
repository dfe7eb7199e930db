"""``dhns sample-negatives``: the negatives of a run, drawn by the run's own
sampler, or mined by DHNS (a generator mapped to its nearest entities)."""

from __future__ import annotations

import csv
import sys
from functools import partial
from pathlib import Path
from typing import Optional

import torch
import typer

from dhns_geo.cli.app import app
from dhns_geo.cli.options import TSV_OUT_OPTION, comma_list
from dhns_geo.data import build_filter_index, split_triples
from dhns_geo.diffusion import (SIDES, DHNSSampler, mine_hard_negatives,
                                train_generator)
from dhns_geo.build import build_objective
from dhns_geo.errors import OptionError
from dhns_geo.runs import load_run
from dhns_geo.sampling.draw import SIDE_NAMES, draw_negatives
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
    negatives: str = typer.Option("auto", "--negatives", help="run: the run's own sampler (its state at the checkpoint), dhns: DHNS levels mapped to nearest entities; auto: run for sampled negatives, dhns for DHNS and 1-vs-all runs."),
    levels: Optional[str] = typer.Option(None, "--levels", help="Comma-separated diffusion steps (default: all levels; dhns)."),
    k: int = typer.Option(5, "--k", help="Nearest real entities per generated embedding (dhns)."),
    out: Optional[Path] = TSV_OUT_OPTION,
    generator_epochs: int = typer.Option(3, "--generator-epochs", help="Epochs of generator training when the run has no trained generator (dhns)."),
    device: Optional[str] = typer.Option(None, "--device", help="auto, cpu or cuda."),
    seed: int = typer.Option(0, "--seed", help="Random seed of the sampling."),
    progress: Optional[bool] = typer.Option(None, "--progress/--no-progress"),
) -> None:
    """The negatives of a run's triples, as a TSV: drawn by the sampler the
    run trained with, or DHNS's hierarchical negatives mapped to their
    nearest real entities (filtered)."""
    check("--split", split, choice("train", "valid", "test"))
    check("--negatives", negatives, choice("auto", "run", "dhns"))
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
    positives = split_triples(data, split).to(dev)
    if limit:
        positives = positives[:limit]
    if negatives == "auto":
        negatives = ("dhns" if config.training == "1vsall" or config.sampler == "dhns"
                     else "run")
    if negatives == "run":
        if config.training == "1vsall":
            raise OptionError("--negatives", "run", "dhns: the run trained 1-vs-all, "
                              "with no sampler")
        objective = build_objective(config, data).to(dev)
        objective.load_state_dict(objective_state(checkpoint))
        with torch.no_grad():
            table = model.encode()
        drawn = draw_negatives(objective.sampler, model, table, positives, generator)
        write = partial(_write_drawn, positives=positives, drawn=drawn,
                        sampler=config.sampler, names=data.entity_names or [])
    else:
        sampler = _trained_generator(config, data, model, checkpoint, generator_epochs,
                                     generator, show)
        mined = mine_hard_negatives(sampler, model, positives,
                                    build_filter_index(data).to(dev), generator, k,
                                    _parse_levels(levels, sampler))
        write = partial(_write_rows, positives=positives, mined=mined,
                        sampler=sampler, names=data.entity_names or [])
    handle = open(out, "w", newline="") if out else sys.stdout
    try:
        count = write(handle)
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


def _write_tsv(handle, positives, columns: dict, header: list[str], row) -> int:
    """Writes a TSV of negatives, one line per entry of ``columns`` (equal
    length tensors with a ``positive`` row index): the positive's ``head
    relation tail``, then ``row(entry)`` (``entry``: one value per column).
    Returns the number of lines after the header."""
    writer = csv.writer(handle, delimiter="\t", lineterminator="\n")
    writer.writerow(["head", "relation", "tail", *header])
    pos = positives.cpu().tolist()
    cols = {c: v.cpu().tolist() for c, v in columns.items()}
    for values in zip(*cols.values()):
        entry = dict(zip(cols, values))
        writer.writerow([*pos[entry["positive"]], *row(entry)])
    return len(cols["positive"])


def _write_rows(handle, positives, mined: dict, sampler: DHNSSampler,
                names: list[str]) -> int:
    """Writes the TSV of mined negatives; returns their number."""
    def row(e: dict) -> list:
        side, position = SIDES[e["side"]]
        return [side, position, e["level"], sampler.levels[e["level"]],
                sampler.margin_factors[e["level"]], e["rank"], e["entity"],
                names[e["entity"]] if names else "", f"{e['distance']:.6f}"]
    return _write_tsv(handle, positives, mined,
                      ["side", "position", "level", "step", "margin_factor", "rank",
                       "negative_id", "negative_name", "distance"], row)


def _write_drawn(handle, positives, drawn: dict, sampler: str, names: list[str]) -> int:
    """Writes the TSV of a sampler's drawn negatives; returns their number."""
    def row(e: dict) -> list:
        known = e["entity"] >= 0                # an embedding made from no entity: -1
        return [sampler, e["group"], SIDE_NAMES[e["side"]], e["column"],
                e["entity"] if known else "", names[e["entity"]] if names and known else "",
                int(e["embedding"]), f"{e['score']:.6f}", f"{e['weight']:g}"]
    return _write_tsv(handle, positives, drawn,
                      ["sampler", "group", "side", "column", "negative_id", "negative_name",
                       "embedding", "score", "weight"], row)
