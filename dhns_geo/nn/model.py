"""The KGC model: entity modalities -> optional R-GCN -> fusion -> scorer."""

from __future__ import annotations

from typing import Any, Callable, Mapping

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dhns_geo.nn.encoder import RGCNEncoder, add_inverse_edges
from dhns_geo.nn.fusion import FUSIONS, ModalityFusion, MultimodalEntityEmbedding
from dhns_geo.nn.scorers import Scorer


def positions(ids: Tensor, index: Tensor) -> Tensor:
    """Positions ``[*]`` of the entity ids ``index`` ``[*]`` in the sorted
    distinct ids ``ids`` ``[U]``.

    Raises:
        IndexError: when an id of ``index`` is not among ``ids``.
    """
    pos = torch.searchsorted(ids, index.contiguous())
    if index.numel() and not bool(
            (ids[pos.clamp(max=max(ids.numel() - 1, 0))] == index).all()):
        raise IndexError("an entity id was looked up that the step did not "
                         "fetch (restrict)")
    return pos


class EntityTable:
    """Entity representations of one forward pass of a :class:`KGCModel`.

    The R-GCN encoder (if any) runs once when the table is made; the fused
    ``[N, d]`` table is computed on first use and reused. A ``lazy`` table
    fuses only the rows asked for (for steps that touch few entities, e.g.
    with negatives shared across the batch); the values are the same.
    :meth:`restrict` fuses a step's distinct entities once, for the lookups
    that follow.
    """

    def __init__(self, model: "KGCModel", structural: Tensor | None,
                 lazy: bool = False) -> None:
        self.model = model
        self.structural = structural
        self.lazy = lazy
        self._fused: Tensor | None = None
        self._rows: tuple[Tensor, Tensor] | None = None   # (ids [U], rows [U, d])

    def modalities(self, index: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """``([*, M, d] embeddings, [*, M] mask)`` of entities ``index``."""
        return self.model.entities(index, self.structural)

    def restrict(self, index: Tensor) -> None:
        """Fuses the distinct entities of ``index`` ``[*]`` once: later
        :meth:`fused` lookups of ids among them gather from those ``[U, d]``
        rows (one projection and attention per entity, one gradient gather in
        backward) instead of fusing every requested row. Other ids must not
        be looked up afterwards (except all ``N``, with ``index=None``)."""
        ids = torch.unique(index)
        self._rows = ids, self.model.fusion(*self.modalities(ids))

    def fused(self, index: Tensor | None = None) -> Tensor:
        """Fused ``[*, d]`` embeddings of ``index`` (all ``N`` if ``None``)."""
        if self._rows is not None and index is not None:
            ids, rows = self._rows
            return F.embedding(positions(ids, index), rows)
        if self.lazy and index is not None and self._fused is None:
            return self.model.fusion(*self.modalities(index))
        if self._fused is None:
            self._fused = self.model.fusion(*self.modalities())
        # F.embedding's backward is about 30% faster than indexing's
        # deterministic index_put on the CPU for [B, K] negatives.
        return self._fused if index is None else F.embedding(index, self._fused)

    def prefers_restrict(self, device: torch.device) -> bool:
        """Whether a step should :meth:`restrict` to its entities before
        looking them up: a lazy table on the CPU (on a GPU ``unique()``
        waits for the device)."""
        return self.lazy and device.type == "cpu"

    def match_all(self, query: Tensor) -> Tensor:
        """Scores ``[Q, N]`` of queries ``[Q, d]`` against every fused
        entity: factored through the raw features (no ``[N, d]`` fused
        table) when the fusion's weights do not depend on the embeddings and
        the scorer is linear in the candidate, else against :meth:`fused`."""
        model = self.model
        if (getattr(model.fusion, "factorable", False) and not model.scorer.distance
                and self._fused is None):
            return model.entities.match_all(query, model.fusion, self.structural)
        return model.scorer.match_all(query, self.fused())

    def gatherable(self, index: Tensor) -> tuple[Tensor, Tensor]:
        """A table ``[n, d]`` of fused rows and the positions ``[*]`` of the
        entities ``index`` in it: the restricted rows (see :meth:`restrict`),
        else all ``N``."""
        if self._rows is not None:
            ids, rows = self._rows
            return rows, positions(ids, index)
        return self.fused(), index

    def entity(self, x: Tensor) -> Tensor:
        """Embeddings of ``x``: entity ids ``[*]`` are looked up, float
        embeddings ``[*, d]`` pass through."""
        return x if x.is_floating_point() else self.fused(x)


class KGCModel(nn.Module):
    """A knowledge graph completion model over a multimodal KG.

    Args:
        num_entities: ``N``.
        num_relations: ``R``.
        dim: Entity embedding size ``d`` (real numbers; complex scorers use
            ``d / 2`` complex numbers).
        scorer: The interaction function.
        features: ``{modality: ([N, d_m] features, [N] mask)}`` (optional).
        encoder: An optional :class:`RGCNEncoder` of structural embeddings.
        edge_index: ``[2, E]`` training graph, needed with an encoder.
        edge_type: ``[E]`` relation ids, needed with an encoder.
        reciprocal: Learn a reciprocal relation ``r + R`` for each ``r``
            (Lacroix et al., 2018): a head query ``(?, r, t)`` is answered
            as the tail query ``(t, r + R, ?)`` (see :meth:`query`).
        structural: A structural table held elsewhere (a
            :class:`~dhns_geo.sharding.ShardedEntities`), see
            :class:`MultimodalEntityEmbedding`.
        fusion: ``attention`` (:class:`ModalityFusion`) or ``gate``
            (:class:`~dhns_geo.nn.fusion.GateFusion`: weights per modality,
            whose 1-vs-all scores factor through the raw features).
    """

    def __init__(self, num_entities: int, num_relations: int, dim: int,
                 scorer: Scorer,
                 features: Mapping[str, tuple[Tensor, Tensor]] | None = None,
                 encoder: RGCNEncoder | None = None,
                 edge_index: Tensor | None = None,
                 edge_type: Tensor | None = None,
                 reciprocal: bool = False, structural: Any = None,
                 fusion: str = "attention") -> None:
        super().__init__()
        if scorer.complex and dim % 2:
            raise ValueError(f"{type(scorer).__name__} needs an even dim, "
                             f"got {dim}")
        self.num_entities, self.num_relations, self.dim = (
            num_entities, num_relations, dim)
        self.entities = MultimodalEntityEmbedding(num_entities, dim, features,
                                                  structural)
        self.fusion = (ModalityFusion(dim) if fusion == "attention"
                       else FUSIONS[fusion](len(self.entities.modalities)))
        self.reciprocal = reciprocal
        self.relations = nn.Embedding(num_relations * (2 if reciprocal else 1),
                                      scorer.relation_dim(dim))
        scorer.init_relations(self.relations.weight.data)
        self.scorer = scorer
        self.encoder = encoder
        if encoder is not None:
            if edge_index is None or edge_type is None:
                raise ValueError("an encoder needs edge_index and edge_type")
            ei, et = add_inverse_edges(edge_index, edge_type, num_relations)
            self.register_buffer("edge_index", ei, persistent=False)
            self.register_buffer("edge_type", et, persistent=False)

    @property
    def device(self) -> torch.device:
        return self.relations.weight.device

    def encode(self, lazy: bool = False) -> EntityTable:
        """Runs the encoder (if any) and returns the entity table (``lazy``:
        fusing only the rows asked for)."""
        structural = None
        if self.encoder is not None:
            structural = self.encoder(self.entities.structural.weight,
                                      self.edge_index, self.edge_type)
        return EntityTable(self, structural, lazy)

    def forward(self, head: Tensor, relation: Tensor, tail: Tensor,
                table: EntityTable | None = None) -> Tensor:
        """Scores of triples. ``head``/``tail`` are ids ``[*]`` or embeddings
        ``[*, d]``; ``relation`` ids ``[*]``; shapes broadcast (e.g. ``[B, 1]``
        relations with ``[B, K]`` negatives give ``[B, K]``)."""
        table = table if table is not None else self.encode()
        return self.scorer(table.entity(head), self.relations(relation),
                           table.entity(tail))

    def query(self, known: Tensor, relation: Tensor, side: str) -> Tensor:
        """Queries ``[*, d]`` for the missing ``side`` of ``known`` ``[*, d]``
        embeddings and ``relation`` ids ``[*]`` in ``[0, R)``; a reciprocal
        model answers ``(?, r, t)`` as ``(t, r + R, ?)``."""
        if self.reciprocal and side == "head":
            return self.scorer.compose(
                known, self.relations(relation + self.num_relations), "tail")
        return self.scorer.compose(known, self.relations(relation), side)

    @torch.no_grad()
    def score_all_fn(self) -> Callable[[Tensor, Tensor, str], Tensor]:
        """A ``score_fn(known [B], relation [B], side) -> [B, N]`` for the
        evaluator; the entity table is computed once."""
        entities = self.encode().fused()

        def score_fn(known: Tensor, relation: Tensor, side: str) -> Tensor:
            return self.scorer.match_all(
                self.query(entities[known], relation, side), entities)

        return score_fn
