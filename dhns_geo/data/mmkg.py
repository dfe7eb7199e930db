"""The multimodal knowledge graph (MMKG) as a PyG :class:`HeteroData`.

Layout (``N`` entities, ``R`` relations, ``E`` training triples)::

    data["entity"].num_nodes      int N
    data["entity"].visual         [N, d_v] float   (optional)
    data["entity"].visual_mask    [N] bool, True where the entity has it
    data["entity"].textual        [N, d_t] float   (optional)
    data["entity"].textual_mask   [N] bool
    data[EDGE_TYPE].edge_index    [2, E] long  (head, tail) of train triples
    data[EDGE_TYPE].edge_type     [E] long     relation ids
    data.num_relations            int R
    data.valid_triples            [n_valid, 3] long (head, relation, tail)
    data.test_triples             [n_test, 3] long
    data.entity_names             list[str] | None
    data.relation_names           list[str] | None
    data.feature_sources          dict[str, str]  modality -> provenance

The message-passing graph (``edge_index``/``edge_type``) holds training
triples only; validation and test triples are kept apart. The structural
modality is the entity id itself (a learned embedding per entity).
"""

from __future__ import annotations

import warnings

import torch
from torch import Tensor
from torch_geometric.data import HeteroData

from dhns_geo.data.io import SPLITS, KnowledgeGraph
from dhns_geo.errors import DataFormatError, DataQualityWarning, DHNSError

ENTITY = "entity"
EDGE_TYPE = (ENTITY, "relation", ENTITY)
MODALITIES = ("visual", "textual")


def to_hetero_data(kg: KnowledgeGraph, warn: bool = True) -> HeteroData:
    """Turns a :class:`KnowledgeGraph` into the MMKG ``HeteroData`` layout.

    Duplicate triples and valid/test triples that also occur in train are
    kept as they are and reported as a :class:`DataQualityWarning`.
    """
    data = HeteroData()
    data[ENTITY].num_nodes = kg.num_entities
    train = kg.splits["train"]
    data[EDGE_TYPE].edge_index = train[:, [0, 2]].t().contiguous()
    data[EDGE_TYPE].edge_type = train[:, 1].contiguous()
    data.num_relations = kg.num_relations
    data.valid_triples = kg.splits["valid"]
    data.test_triples = kg.splits["test"]
    data.entity_names = kg.entity_names
    data.relation_names = kg.relation_names
    data.feature_sources = {}
    if warn:
        warn_quality(data, kg.source)
    return data


def num_entities(data: HeteroData) -> int:
    return int(data[ENTITY].num_nodes)


def num_relations(data: HeteroData) -> int:
    return int(data.num_relations)


def split_triples(data: HeteroData, split: str) -> Tensor:
    """Returns the ``[n, 3]`` ``(head, relation, tail)`` rows of ``split``."""
    if split == "train":
        store = data[EDGE_TYPE]
        return torch.stack([store.edge_index[0], store.edge_type,
                            store.edge_index[1]], dim=1)
    if split not in SPLITS:
        raise DHNSError(f"unknown split {split!r}; choose from {SPLITS}")
    triples = getattr(data, f"{split}_triples", None)
    if triples is None:
        raise DHNSError(f"the dataset has no {split} split")
    return triples


def unseen_triples(data: HeteroData, split: str) -> Tensor:
    """The distinct triples of ``split`` that are not train triples (e.g.
    DB15K's valid split is mostly train triples: selecting on it measures
    memorisation), sorted."""
    triples, train = split_triples(data, split), split_triples(data, "train")
    n, r = num_entities(data), num_relations(data)

    def key(x: Tensor) -> Tensor:
        return (x[:, 0] * r + x[:, 1]) * n + x[:, 2]
    return torch.unique(triples[~torch.isin(key(triples), key(train))], dim=0)


def add_reciprocals(triples: Tensor, num_relations: int) -> Tensor:
    """``[n, 3]`` triples followed by their reciprocals ``(t, r + R, h)``,
    ``[2n, 3]``: a model with reciprocal relations learns ``(?, r, t)`` as
    ``(t, r + R, ?)``."""
    inverse = triples[:, [2, 1, 0]]
    inverse[:, 1] += num_relations
    return torch.cat([triples, inverse])


def training_triples(data: HeteroData, reciprocal: bool = False) -> Tensor:
    """The ``[E, 3]`` triples an epoch goes through: the train split, and
    with ``reciprocal`` their reciprocals too (``[2E, 3]``)."""
    train = split_triples(data, "train")
    return add_reciprocals(train, num_relations(data)) if reciprocal else train


def all_triples(data: HeteroData) -> Tensor:
    """All known true triples (train, valid, test), ``[n, 3]``."""
    return torch.cat([split_triples(data, s) for s in SPLITS], dim=0)


def attach_features(data: HeteroData, modality: str, x: Tensor,
                    source: str, mask: Tensor | None = None) -> None:
    """Attaches a ``[N, d]`` feature tensor of ``modality`` to ``data``.

    Args:
        modality: ``"visual"`` or ``"textual"``.
        x: ``[N, d]`` features in entity-id order.
        source: Where they came from (file and hash, model name, ...); it is
            recorded in ``data.feature_sources`` and in a run's config.
        mask: ``[N]`` bool, ``True`` where the entity has the modality.
            Derived from all-zero rows when omitted.
    """
    if modality not in MODALITIES:
        raise DHNSError(f"unknown modality {modality!r}; choose from "
                        f"{MODALITIES}")
    n = num_entities(data)
    if x.dim() != 2 or x.size(0) != n:
        raise DataFormatError(
            source, f"{modality} features must have shape [{n}, d] (one row "
            f"per entity), got {list(x.shape)}")
    if not x.is_floating_point():
        raise DataFormatError(source, f"{modality} features must be floating "
                              f"point, got {x.dtype}")
    x = x.float()
    if not torch.isfinite(x).all():
        raise DataFormatError(source, f"{modality} features contain NaN or "
                              "infinite values")
    if mask is None:
        mask = x.abs().sum(dim=1) > 0
    data[ENTITY][modality] = x
    data[ENTITY][f"{modality}_mask"] = mask.bool()
    data.feature_sources = {**(data.feature_sources or {}), modality: source}


def modality_features(data: HeteroData) -> dict[str, tuple[Tensor, Tensor]]:
    """``{modality: (features [N, d], mask [N])}`` of the modalities present."""
    store = data[ENTITY]
    return {m: (store[m], store[f"{m}_mask"]) for m in MODALITIES if m in store}


def selected_features(data: HeteroData, which: str) -> dict[str, tuple[Tensor, Tensor]]:
    """The modality features a model uses (:func:`modality_features`' form):
    every one present (``"auto"``), none (``"none"``) or one named modality
    (``"visual"``, ``"textual"``), which must be present.

    Raises:
        DHNSError: when the named modality is not in ``data``.
    """
    if which == "none":
        return {}
    present = modality_features(data)
    if which == "auto":
        return present
    if which not in present:
        hint = ("; compute them from the entity names with `dhns features text DATASET`"
                if which == "textual" else "")
        raise DHNSError(f"--features {which}: the dataset has no {which} features "
                        f"(it has: {', '.join(present) or 'none'}){hint}")
    return {which: present[which]}


def quality_report(data: HeteroData) -> dict:
    """Counts rows, distinct triples, duplicates, split leakage and entities
    that training never sees.

    Returns:
        ``{split: {"rows", "distinct", "duplicates", "in_train",
        "unseen_entities"}}`` where ``in_train`` counts distinct triples of
        valid/test that occur in train and ``unseen_entities`` the distinct
        entities of valid/test that occur in no train triple (their
        embeddings keep their initial values).
    """
    n, r = num_entities(data), num_relations(data)

    def keys(t: Tensor) -> Tensor:
        return torch.unique((t[:, 0] * r + t[:, 1]) * n + t[:, 2])

    train = split_triples(data, "train")
    train_keys = keys(train)
    seen = torch.zeros(n, dtype=torch.bool)
    seen[train[:, [0, 2]].reshape(-1)] = True
    report = {}
    for split in SPLITS:
        triples = split_triples(data, split)
        k = train_keys if split == "train" else keys(triples)
        entry = {"rows": triples.size(0), "distinct": k.numel(),
                 "duplicates": triples.size(0) - k.numel()}
        if split != "train":
            entry["in_train"] = int(torch.isin(k, train_keys).sum())
            entities = torch.unique(triples[:, [0, 2]])
            entry["unseen_entities"] = int((~seen[entities]).sum())
        report[split] = entry
    return report


def warn_quality(data: HeteroData, source: str = "") -> None:
    """Warns about duplicate triples and valid/test triples seen in train."""
    problems = []
    for split, entry in quality_report(data).items():
        if entry["duplicates"]:
            problems.append(f"{split}: {entry['duplicates']} duplicate rows "
                            f"({entry['distinct']} distinct of {entry['rows']})")
        if entry.get("in_train"):
            problems.append(f"{split}: {entry['in_train']} distinct triples "
                            "also occur in train")
    if problems:
        where = f"{source}: " if source else ""
        warnings.warn(where + "; ".join(problems) + " (kept as they are)",
                      DataQualityWarning, stacklevel=3)
