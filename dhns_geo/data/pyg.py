"""PyG knowledge-graph datasets in the library's ``HeteroData`` layout.

PyG gives a knowledge graph as one :class:`~torch_geometric.data.Data` per
split (``torch_geometric.datasets.FB15k_237``: ``edge_index`` ``[2, E]``
heads and tails, ``edge_type`` ``[E]`` relations, ``num_nodes``), or as one
``Data`` whose ``train_mask`` / ``val_mask`` / ``test_mask`` pick each
split's edges (``WordNet18RR``). :func:`from_pyg` turns either into the MMKG
layout of :mod:`dhns_geo.data.mmkg`; :func:`load_pyg_dataset` loads a
``torch_geometric.datasets`` class by name (``dhns train --dataset
pyg:FB15k_237``).
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Sequence

import torch
from torch import Tensor
from torch_geometric.data import Data, HeteroData

from dhns_geo.data.io import SPLITS, KnowledgeGraph
from dhns_geo.data.mmkg import attach_features, to_hetero_data
from dhns_geo.errors import DHNSError

#: The prefix of a ``--dataset`` that names a ``torch_geometric.datasets`` class.
PYG_PREFIX = "pyg:"
_MASKS = {"train": "train_mask", "valid": "val_mask", "test": "test_mask"}


def _triples(data: Data, split: str, mask: Tensor | None = None) -> Tensor:
    """``[E, 3]`` ``(head, relation, tail)`` rows of one split's ``Data``."""
    edge_index = getattr(data, "edge_index", None)
    edge_type = getattr(data, "edge_type", None)
    if edge_index is None or edge_type is None:
        raise DHNSError(f"the {split} split has no edge_index or no edge_type: "
                        "a PyG knowledge graph needs both")
    if edge_index.dim() != 2 or edge_index.size(0) != 2 \
            or edge_type.shape != (edge_index.size(1),):
        raise DHNSError(f"the {split} split's edge_index is "
                        f"{list(edge_index.shape)} and its edge_type "
                        f"{list(edge_type.shape)}: expected [2, E] and [E]")
    triples = torch.stack([edge_index[0], edge_type, edge_index[1]], 1).long()
    return triples if mask is None else triples[mask.bool()]


def _splits(data: Data | Sequence[Data]) -> dict[str, Tensor]:
    if isinstance(data, Data):
        missing = [m for m in _MASKS.values() if getattr(data, m, None) is None]
        if missing:
            raise DHNSError("one Data must carry train_mask, val_mask and "
                            f"test_mask over its edges (missing: {', '.join(missing)}); "
                            "or pass one Data per split")
        return {s: _triples(data, s, data[m]) for s, m in _MASKS.items()}
    if len(data) != 3:
        raise DHNSError(f"expected the train, valid and test Data, got {len(data)}")
    return {s: _triples(d, s) for s, d in zip(SPLITS, data)}


def from_pyg(data: Data | Sequence[Data], num_relations: int | None = None,
             features: dict[str, Tensor] | None = None,
             warn: bool = True) -> HeteroData:
    """A PyG knowledge graph as the library's MMKG ``HeteroData``.

    Args:
        data: ``(train, valid, test)`` ``Data`` (each with ``edge_index``,
            ``edge_type`` and ``num_nodes``), or one ``Data`` with edge masks
            ``train_mask``, ``val_mask``, ``test_mask``.
        num_relations: ``R`` (default: the largest relation id + 1).
        features: Optional modality features, ``{"visual" | "textual":
            [N, d]}`` in node order.
        warn: Report duplicate triples and valid/test triples in train.

    Returns:
        ``HeteroData`` with node type ``entity``, the train triples as its
        edges and ``valid_triples`` / ``test_triples`` kept apart.
    """
    splits = _splits(data)
    parts = [data] if isinstance(data, Data) else list(data)
    num_nodes = max(int(d.num_nodes) for d in parts)
    rels = max(int(s[:, 1].max()) + 1 if s.numel() else 0 for s in splits.values())
    num_relations = rels if num_relations is None else num_relations
    for split, triples in splits.items():
        _check_range(split, triples, num_nodes, num_relations)
    kg = KnowledgeGraph(num_nodes, num_relations, splits, source="PyG Data")
    out = to_hetero_data(kg, warn=warn)
    for modality, x in (features or {}).items():
        if x.size(0) != num_nodes:
            raise DHNSError(f"{modality} features have {x.size(0)} rows for "
                            f"{num_nodes} nodes")
        attach_features(out, modality, x, source="given with the PyG Data")
    return out


def _check_range(split: str, triples: Tensor, num_nodes: int,
                 num_relations: int) -> None:
    for name, col, bound in (("entity", triples[:, [0, 2]], num_nodes),
                             ("relation", triples[:, 1], num_relations)):
        bad = (col < 0) | (col >= bound)
        if bool(bad.any()):
            row = int(bad.reshape(len(triples), -1).any(1).nonzero()[0])
            article = "an" if name[0] in "aeiou" else "a"
            raise DHNSError(f"the {split} split's edge {row} has {article} {name} id "
                            f"out of range [0, {bound}): {triples[row].tolist()} "
                            "(head, relation, tail)")


def load_pyg_dataset(name: str, root: str | Path) -> HeteroData:
    """Loads ``torch_geometric.datasets.<name>`` from ``<root>/<name>`` (its
    ``raw/`` files, downloaded by PyG when absent) and converts it with
    :func:`from_pyg`: a class with a ``split`` argument is loaded once per
    split (``train``, ``val``, ``test``), any other as one ``Data`` with
    edge masks."""
    import torch_geometric.datasets as pyg_datasets

    cls = getattr(pyg_datasets, name, None)
    if not isinstance(cls, type):
        raise DHNSError(f"torch_geometric.datasets has no dataset {name!r}")
    folder = Path(root).expanduser() / name
    if "split" in inspect.signature(cls).parameters:
        return from_pyg([cls(str(folder), split=s)[0] for s in ("train", "val", "test")])
    return from_pyg(cls(str(folder))[0])
