"""Resolves a dataset argument (built-in name, ``toy``, ``pyg:<class>`` or a
folder)."""

from __future__ import annotations

from pathlib import Path

from torch_geometric.data import HeteroData, InMemoryDataset

from dhns_geo.data.features import attach_feature_file
from dhns_geo.data.io import read_kg
from dhns_geo.data.mmkg import to_hetero_data
from dhns_geo.data.pyg import PYG_PREFIX, load_pyg_dataset
from dhns_geo.datasets.benchmarks import (DB15K, MKGW, MKGY, FB15k237,
                                         default_root)
from dhns_geo.errors import DHNSError

BENCHMARKS: dict[str, type[InMemoryDataset]] = {
    cls.name: cls for cls in (DB15K, MKGW, MKGY, FB15k237)}


def _key(name: str) -> str:
    return name.replace("-", "").replace("_", "").lower()


def resolve_name(name: str) -> str | None:
    """The canonical built-in name (``"DB15K"``, ``"MKG-W"``, ``"MKG-Y"``,
    ``"FB15k-237"``, ``"toy"``) of ``name``, or ``None`` when it is not built in."""
    if _key(name) == "toy":
        return "toy"
    for canonical in BENCHMARKS:
        if _key(canonical) == _key(name):
            return canonical
    return None


def load_dataset(name_or_path: str, root: str | Path | None = None,
                 seed: int = 0, visual: str | Path | None = None,
                 textual: str | Path | None = None,
                 trust_features: bool = False) -> HeteroData:
    """Loads a built-in dataset by name, ``toy``, or a user's KG folder.

    Args:
        name_or_path: ``DB15K``, ``MKG-W``, ``MKG-Y``, ``FB15k-237`` (case
            and dashes do not matter), ``toy``, ``pyg:<class>`` (a
            ``torch_geometric.datasets`` knowledge graph, e.g.
            ``pyg:FB15k_237``, read from ``<root>/<class>``), or a folder in
            OpenKE or TSV format.
        root: Dataset root for the benchmarks.
        seed: Seed of the toy dataset.
        visual: A user's ``[N, d]`` visual feature file (``.pth``, ``.pt``
            or ``.npy``); replaces the dataset's own.
        textual: A user's textual feature file; replaces the dataset's own.
        trust_features: Accept paper feature files with an unknown hash.
    """
    data = _load_graph(name_or_path, root, seed, trust_features)
    for modality, path in (("visual", visual), ("textual", textual)):
        if path is not None:
            attach_feature_file(data, modality, Path(path).expanduser())
    return data


def _load_graph(name_or_path: str, root: str | Path | None, seed: int,
                trust_features: bool) -> HeteroData:
    from dhns_geo.datasets.toy import ToyMMKG

    canonical = resolve_name(name_or_path)
    if canonical == "toy":
        return ToyMMKG(seed=seed)[0]
    if canonical is not None:
        dataset = BENCHMARKS[canonical](root, trust_features=trust_features)
        data = dataset[0]
        data.processed_dir = dataset.processed_dir   # where samplers cache what they derive
        return data
    if name_or_path.startswith(PYG_PREFIX):
        return load_pyg_dataset(name_or_path[len(PYG_PREFIX):],
                                root if root is not None else default_root())
    path = Path(name_or_path).expanduser()
    if path.is_dir():
        return to_hetero_data(read_kg(path))
    choices = ", ".join([*BENCHMARKS, "toy", "pyg:<class>"])
    raise DHNSError(f"unknown dataset {name_or_path!r}: not one of {choices} "
                    "and not a folder")
