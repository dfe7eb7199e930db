"""Modality feature files: reading, hash checks and provenance.

A feature file holds one ``[num_entities, d]`` float tensor in entity-id
order; all-zero rows mark entities that lack the modality. Accepted formats
are ``.pth`` / ``.pt`` (a tensor saved with :func:`torch.save`) and ``.npy``.

The MMKGC papers (DHNS, NativE, AdaMF-MAT) publish ``<NAME>-visual.pth`` and
``<NAME>-textual.pth`` for DB15K, MKG-W and MKG-Y; :data:`PAPER_FEATURES`
holds their published sha256 and shape. A file may come with a JSON sidecar
(``<file>.json``, written by ``dhns features text``) that says how it was
made; its ``source`` is recorded as the file's provenance.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from torch_geometric.data import HeteroData

from dhns_geo.data.mmkg import MODALITIES, attach_features, num_entities
from dhns_geo.errors import DataFormatError, DHNSError

#: ``{dataset: {modality: (sha256, shape)}}`` of the papers' feature files.
PAPER_FEATURES: dict[str, dict[str, tuple[str, tuple[int, int]]]] = {
    "DB15K": {
        "visual": ("d9cd551878b053195a42620d6c9c9e6b16ade258aee862fadd5ab07fb6e4ac36",
                   (12842, 4096)),
        "textual": ("912b08f8548e517b5f469330e15b1f6dde0ef345864aa0f412eb39f281459ce1",
                    (12842, 768)),
    },
    "MKG-W": {
        "visual": ("9cf9346fb7bcd1d7027a35a8e8bc637ca42f38b72e48f11495ef8c9c9d880afc",
                   (15000, 383)),
        "textual": ("13b765b5bddceaefeebe1ce5b2e99e4b6e0cffe2539a3d2490adcfefde012a2e",
                    (15000, 384)),
    },
    "MKG-Y": {
        "visual": ("d461c913ef25c744fc473e1f6473e9e3940116d16ae2290ab5972c2321bae4a7",
                   (15000, 383)),
        "textual": ("a736a6c2506de6dab31ed83552c401f74543e14d2d1ddc650ad27702a69aa37e",
                    (15000, 384)),
    },
}

SUFFIXES = (".pth", ".pt", ".npy")


def file_sha256(path: str | Path) -> str:
    """The hex sha256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def paper_feature_path(raw_dir: str | Path, name: str, modality: str) -> Path:
    """Where a benchmark's paper feature file is looked for."""
    return Path(raw_dir) / f"{name}-{modality}.pth"


def computed_text_path(raw_dir: str | Path, name: str) -> Path:
    """Where ``dhns features text`` writes a benchmark's textual features."""
    return Path(raw_dir) / f"{name}-textual-computed.pt"


def sidecar_path(path: str | Path) -> Path:
    path = Path(path)
    return path.with_name(path.name + ".json")


def read_feature_file(path: str | Path, num_rows: int,
                      modality: str = "features") -> Tensor:
    """Reads a ``[num_rows, d]`` floating-point feature tensor.

    Raises:
        DataFormatError: naming the file, when it is missing, unreadable, of
            an unknown type, not 2-D, of the wrong row count, or not floating
            point.
    """
    path = Path(path)
    if not path.is_file():
        raise DataFormatError(path, f"{modality} feature file not found")
    if path.suffix not in SUFFIXES:
        raise DataFormatError(path, f"unsupported feature file type "
                              f"{path.suffix!r}; use {', '.join(SUFFIXES)}")
    try:
        if path.suffix == ".npy":
            x = torch.from_numpy(np.load(path, allow_pickle=False))
        else:
            x = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch/numpy raise many types
        raise DataFormatError(path, f"cannot read {modality} features "
                              f"({type(exc).__name__}: {exc})") from None
    if isinstance(x, np.ndarray):
        x = torch.from_numpy(x)
    if not isinstance(x, Tensor):
        raise DataFormatError(path, f"expected a tensor, found a "
                              f"{type(x).__name__}")
    if x.dim() != 2:
        raise DataFormatError(path, f"{modality} features must be a 2-D "
                              f"[num_entities, d] tensor, got shape "
                              f"{list(x.shape)}")
    if x.size(0) != num_rows:
        raise DataFormatError(path, f"{modality} features have {x.size(0)} "
                              f"rows but the dataset has {num_rows} entities")
    if not x.is_floating_point():
        raise DataFormatError(path, f"{modality} features must be floating "
                              f"point, got {x.dtype}")
    return x.float()


def describe_file(path: str | Path, digest: str | None = None) -> str:
    """Provenance of a feature file: its sidecar's ``source`` (when there is
    one), the file name and a short hash."""
    path = Path(path)
    digest = digest or file_sha256(path)
    sidecar = sidecar_path(path)
    origin = ""
    if sidecar.is_file():
        try:
            origin = json.loads(sidecar.read_text()).get("source", "")
        except (json.JSONDecodeError, AttributeError):
            raise DataFormatError(sidecar, "not a JSON object") from None
    where = f"{origin}; " if origin else ""
    return f"{where}file {path.name} sha256:{digest[:12]}"


def attach_feature_file(data: HeteroData, modality: str, path: str | Path,
                        kind: str = "user") -> None:
    """Reads ``path`` and attaches it as ``modality`` (mask from zero rows).

    Args:
        kind: Provenance prefix, e.g. ``"user"`` or ``"computed"``.
    """
    if modality not in MODALITIES:
        raise DHNSError(f"unknown modality {modality!r}; choose from "
                        f"{MODALITIES}")
    x = read_feature_file(path, num_entities(data), modality)
    attach_features(data, modality, x, f"{kind}: {describe_file(path)}")


def attach_benchmark_features(data: HeteroData, raw_dir: str | Path,
                              name: str, trust: bool = False) -> None:
    """Attaches the feature files found in a benchmark's raw folder.

    The paper files ``<NAME>-{visual,textual}.pth`` are checked against
    :data:`PAPER_FEATURES` (shape and sha256); a mismatch is an error unless
    ``trust`` is set. Without a paper textual file, the one written by
    ``dhns features text`` (``<NAME>-textual-computed.pt``) is used.
    """
    known = PAPER_FEATURES.get(name, {})
    for modality in MODALITIES:
        path = paper_feature_path(raw_dir, name, modality)
        if path.is_file():
            digest = file_sha256(path)
            x = read_feature_file(path, num_entities(data), modality)
            expected = known.get(modality)
            if expected is not None and (digest != expected[0] or
                                         tuple(x.shape) != expected[1]):
                if not trust:
                    raise DataFormatError(
                        path, f"sha256 {digest[:12]}... and shape "
                        f"{list(x.shape)} do not match the published file "
                        f"(sha256 {expected[0][:12]}..., shape "
                        f"{list(expected[1])}); pass --trust-features to use "
                        "it anyway")
                kind = "paper (unverified: hash differs)"
            else:
                kind = "paper" if expected is not None else "user"
            attach_features(data, modality, x,
                            f"{kind}: {describe_file(path, digest)}")
        elif modality == "textual" and computed_text_path(raw_dir, name).is_file():
            attach_feature_file(data, modality, computed_text_path(raw_dir, name),
                                "computed")


def describe_sources(sources: dict[str, str]) -> str:
    """One line per modality of a run's ``feature_sources``."""
    if not sources:
        return "features: none (structure only)"
    return "\n".join(f"features: {m}: {sources[m]}" for m in MODALITIES
                     if m in sources)


def feature_files_key(raw_dir: str | Path, name: str, trust: bool) -> str:
    """A short key that changes when the feature files of a benchmark
    change (name, size, modification time), for processed-file names."""
    parts = [str(trust)]
    for path in (paper_feature_path(raw_dir, name, "visual"),
                 paper_feature_path(raw_dir, name, "textual"),
                 computed_text_path(raw_dir, name)):
        if path.is_file():
            stat = path.stat()
            parts.append(f"{path.name}:{stat.st_size}:{stat.st_mtime_ns}")
    if len(parts) == 1:
        return "structure"
    return hashlib.sha1("|".join(parts).encode()).hexdigest()[:10]
