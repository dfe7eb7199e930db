"""``dhns datasets`` and ``dhns datasets check``."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Optional

import typer

from dhns_geo.cli.app import app
from dhns_geo.cli.output import format_table
from dhns_geo.data import (MODALITIES, num_entities, num_relations,
                           quality_report)
from dhns_geo.cli.options import ROOT_OPTION
from dhns_geo.datasets import BENCHMARKS, default_root, load_dataset

datasets_app = typer.Typer(help="List and check datasets.",
                           invoke_without_command=True, rich_markup_mode=None)
app.add_typer(datasets_app, name="datasets")


#: Published statistics of the built-in benchmarks.
STATS = {"DB15K": (12842, 279, 79222, 9904, 9902),
         "MKG-W": (15000, 169, 34196, 4276, 4274),
         "MKG-Y": (15000, 28, 21310, 2665, 2663),
         "FB15k-237": (14541, 237, 272115, 17535, 20466)}


@datasets_app.callback()
def list_datasets(ctx: typer.Context, root: Optional[Path] = ROOT_OPTION) -> None:
    """A table of the built-in datasets with their statistics."""
    if ctx.invoked_subcommand is not None:
        return
    root = root or default_root()
    rows = []
    for name, stats in STATS.items():
        raw = root / name / "raw"
        local = all((raw / f).is_file() for f in BENCHMARKS[name].raw_files)
        rows.append([name, *stats, "yes" if local else "no (downloads)"])
    toy = load_dataset("toy")
    report = quality_report(toy)
    rows.append(["toy", num_entities(toy), num_relations(toy),
                 *(report[s]["rows"] for s in ("train", "valid", "test")),
                 "generated"])
    typer.echo(format_table(["name", "entities", "relations", "train",
                             "valid", "test", "local files"], rows))
    typer.echo(f"\nroot: {root}")


@datasets_app.command("check")
def check(name_or_path: str = typer.Argument(
        ..., help="DB15K, MKG-W, MKG-Y, FB15k-237, toy or a folder (OpenKE or TSV)."),
        root: Optional[Path] = ROOT_OPTION) -> None:
    """Counts, duplicates, split leakage and modality coverage."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        data = load_dataset(name_or_path, root)
    n = num_entities(data)
    typer.echo(f"dataset: {name_or_path}")
    typer.echo(f"entities: {n}  relations: {num_relations(data)}")
    report = quality_report(data)
    rows = [[split, e["rows"], e["distinct"], e["duplicates"],
             e.get("in_train", "-"), e.get("unseen_entities", "-")]
            for split, e in report.items()]
    typer.echo(format_table(["split", "rows", "distinct", "duplicates",
                             "distinct in train", "entities not in train"],
                            rows))
    store = data["entity"]
    cov = []
    for m in MODALITIES:
        if m in store:
            have = int(store[f"{m}_mask"].sum())
            cov.append([m, list(store[m].shape), have, f"{100 * have / n:.1f}%",
                        (data.feature_sources or {}).get(m, "")])
        else:
            cov.append([m, "-", 0, "0.0%", "none"])
    typer.echo("\nmodality coverage (structural: all entities)")
    typer.echo(format_table(["modality", "shape", "entities", "coverage",
                             "source"], cov))
