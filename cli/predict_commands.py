"""``dhns predict``: the top entities for queries on a trained run."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path
from typing import Optional

import torch
import typer

from dhns_geo.cli.app import app
from dhns_geo.cli.options import TSV_OUT_OPTION
from dhns_geo.cli.output import format_table
from dhns_geo.errors import DHNSError, OptionError
from dhns_geo.predict import Predictor
from dhns_geo.validation import check, device_rule, integer, optional

COLUMNS = ["query", "head", "relation", "tail", "rank", "id", "name", "score",
           "known_in"]


def _read_queries(path: Path, predictor: Predictor) -> list[tuple[int, int, str]]:
    """Queries of a TSV file: ``head<TAB>relation<TAB>?`` or
    ``?<TAB>relation<TAB>tail`` per line (names or ids; ``#`` comments)."""
    queries = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        cells = line.split("\t")
        if len(cells) != 3 or [c.strip() for c in cells].count("?") != 1:
            raise DHNSError(f"{path}, line {number}: expected 'head<TAB>relation"
                            "<TAB>?' or '?<TAB>relation<TAB>tail'")
        head, relation, tail = (None if c.strip() == "?" else c for c in cells)
        try:
            queries.append(predictor.parse_query(head, relation, tail))
        except DHNSError as exc:
            raise DHNSError(f"{path}, line {number}: {exc}") from None
    if not queries:
        raise DHNSError(f"{path}: no queries in it")
    return queries


@app.command()
def predict(
    run_dir: Path = typer.Argument(..., help="A run folder written by dhns train."),
    head: Optional[str] = typer.Option(None, "--head", help="Given head (name or id): predict tails."),
    relation: Optional[str] = typer.Option(None, "--relation", help="Relation (name or id)."),
    tail: Optional[str] = typer.Option(None, "--tail", help="Given tail (name or id): predict heads."),
    queries: Optional[Path] = typer.Option(None, "--queries", help="TSV of queries: 'head<TAB>relation<TAB>?' or '?<TAB>relation<TAB>tail' per line."),
    top: int = typer.Option(10, "--top", help="Entities per query."),
    out: Optional[Path] = TSV_OUT_OPTION,
    as_json: bool = typer.Option(False, "--json", help="Print JSON records instead of a table."),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", help="Queries scored at once."),
    device: Optional[str] = typer.Option(None, "--device", help="auto, cpu or cuda."),
) -> None:
    """Top entities for (head, relation, ?) or (?, relation, tail), marking
    answers already known in train, valid or test."""
    check("--top", top, integer(1))
    check("--batch-size", batch_size, optional(integer(1)))
    check("--device", device, optional(device_rule))
    if queries is None:
        if relation is None or (head is None) == (tail is None):
            raise OptionError("--relation", relation, "given with exactly one of "
                              "--head and --tail (or use --queries FILE)")
    elif head is not None or relation is not None or tail is not None:
        raise OptionError("--queries", str(queries), "used without --head, "
                          "--relation and --tail")
    elif not queries.is_file():
        raise OptionError("--queries", str(queries), "an existing file")
    predictor = Predictor.from_run(run_dir, device, batch_size)
    parsed = (_read_queries(queries, predictor) if queries is not None
              else [predictor.parse_query(head, relation, tail)])
    known, rel, side = zip(*parsed)
    result = predictor.predict(torch.tensor(known), torch.tensor(rel), side, top)
    names = predictor.entities.name
    records = []
    for q, answers in enumerate(predictor.rows(result)):
        given, missing = names(known[q]), "?"
        h, t = (missing, given) if side[q] == "head" else (given, missing)
        records += [{"query": q + 1, "head": h,
                     "relation": predictor.relations.name(rel[q]), "tail": t, **a}
                    for a in answers]
    if as_json:
        text = json.dumps(records, indent=2)
        (out.write_text(text + "\n") if out else typer.echo(text))
    elif out is not None or queries is not None:
        handle = open(out, "w", newline="") if out else sys.stdout
        try:
            writer = csv.DictWriter(handle, COLUMNS, delimiter="\t", lineterminator="\n")
            writer.writeheader()
            writer.writerows({**r, "score": f"{r['score']:.6f}"} for r in records)
        finally:
            if out:
                handle.close()
    else:
        typer.echo(f"({records[0]['head']}, {records[0]['relation']}, "
                   f"{records[0]['tail']})")
        typer.echo(format_table(["rank", "entity", "id", "score", "known"],
                                [[r["rank"], r["name"], r["id"], r["score"],
                                  r["known_in"] or "-"] for r in records]))
    if out is not None:
        typer.echo(f"wrote {len(records)} predictions for {len(parsed)} queries "
                   f"to {out}", err=True)
