"""Groups of negatives and their loss: a leaf module that samplers, the
model, the training loop and a user's own loop all import.

A sampler returns a list of :class:`Negatives`; each group scores itself
against the step's entity table (:meth:`Negatives.score`, one code path per
layout) and :func:`negatives_loss` turns positives and groups into one loss
with the NTAT margin factor and weight of each group.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

import torch
from torch import Tensor

from dhns_geo.nn.gathered import pick_queries

if TYPE_CHECKING:
    from dhns_geo.losses import KGELoss
    from dhns_geo.nn.model import EntityTable, KGCModel
    from dhns_geo.nn.scorers import Scorer


@dataclass
class Negatives:
    """A group of negatives for a batch of ``B`` positives.

    The relation of each negative is its positive's. A group has one of
    three layouts, and :meth:`score` scores each:

    * **shared**: ``shared`` ``[K]`` ids are column ``k`` of every row (the
      batch's pool) and ``corrupted_head`` ``[B, K]`` is constant along a row
      (one side per positive): one ``[B, K]`` matrix product;
    * **one side per negative**: ``head``/``tail`` ``[B, K]`` ids (or
      ``[B, K, d]`` embeddings) and ``corrupted_head`` ``[B, K]``: the
      positive's query is composed once and matched against each negative's
      row; only the corrupted side's entries are read (``head`` where
      ``corrupted_head``, else ``tail``; embeddings may pass one tensor as
      both);
    * **generated**: ``head``/``tail`` ``[B', K]`` ids or ``[B', K, d]``
      embeddings without ``corrupted_head``; ``own`` marks sides that are the
      positive's own. ``B' < B`` covers the first ``B'`` positives only
      (their ``weight`` ``[B, K]`` is zero from row ``B'`` on).

    Attributes:
        head: ``[B, K]`` entity ids or ``[B, K, d]`` embeddings.
        tail: Like ``head``.
        margin_factor: Scales the loss margin per negative; a float or a
            tensor broadcastable to ``[B, K]``.
        weight: Optional ``[B, K]`` weight per negative (``0`` ignores it,
            e.g. a filtered false negative).
        loss_weight: Weight of this group's loss in the total loss.
        corrupted_head: Optional ``[B, K]`` bool: ``True`` where the head was
            replaced, ``False`` where the tail was.
        name: Optional label; the loop tracks the mean score of named
            groups per epoch (e.g. each DHNS hardness level).
        guard: Drop (weight 0) each negative that scores at least as high
            as its positive (a likely false negative).
        shared: Optional ``[K]`` ids of the shared layout.
        own: Optional ``[K, 2]`` bool: ``own[k, 0]`` (``own[k, 1]``) where
            the head (tail) of column ``k`` is its positive's own; that
            column's entries in ``head`` (``tail``) are ignored.
        source: Optional ``[B, K]`` ids of the entities that embedding
            negatives were made from (MANS: the entity whose modalities
            were swapped in); read by ``dhns sample-negatives``, not scored.
    """

    head: Tensor
    tail: Tensor
    margin_factor: Tensor | float = 1.0
    weight: Tensor | None = None
    loss_weight: float = 1.0
    corrupted_head: Tensor | None = None
    name: str = ""
    guard: bool = False
    shared: Tensor | None = None
    own: Tensor | None = None
    source: Tensor | None = None

    def entity_ids(self) -> list[Tensor]:
        """The entity-id tensors the group looks up (none for generated
        embeddings): ``shared``, else ``head`` and ``tail``."""
        if self.shared is not None:
            return [self.shared]
        return [x for x in (self.head, self.tail) if not x.is_floating_point()]

    def rows(self, index: slice) -> "Negatives":
        """The negatives of the positives ``index`` of the batch (per-row
        fields are sliced; scalars and ``[K]`` broadcasts are kept)."""
        b = self.head.size(0) if self.weight is None else self.weight.size(0)

        def take(x):
            if isinstance(x, Tensor) and x.dim() >= 2 and x.size(0) == b:
                return x[index]
            return x
        return Negatives(self.head[index], self.tail[index],
                         take(self.margin_factor), take(self.weight),
                         self.loss_weight, take(self.corrupted_head), self.name,
                         self.guard, self.shared, self.own, take(self.source))

    # -- scores -------------------------------------------------------------
    def score(self, scorer: "Scorer", head: Tensor, relation: Tensor,
              tail: Tensor, table: "EntityTable") -> Tensor:
        """Scores ``[B, K]`` of the group.

        Args:
            scorer: The model's interaction.
            head: ``[B, d]`` embeddings of the positives' heads.
            relation: ``[B, d_r]`` relation embeddings of the positives.
            tail: ``[B, d]`` embeddings of the positives' tails.
            table: The entity table of the step (looks ids up).
        """
        if self.shared is not None:
            return self._score_shared(scorer, head, relation, tail, table)
        if self.corrupted_head is not None:
            return self._score_one_side(scorer, head, relation, tail, table)
        return self._score_generated(scorer, head, relation, tail, table)

    def _score_shared(self, scorer, head, relation, tail, table) -> Tensor:
        candidates = table.fused(self.shared)                         # [K, d]
        query = torch.where(self.corrupted_head[:, :1],               # one side a row
                            scorer.compose(tail, relation, "head"),
                            scorer.compose(head, relation, "tail"))
        return scorer.match_all(query, candidates)

    def _score_one_side(self, scorer, head, relation, tail, table) -> Tensor:
        flag = self.corrupted_head
        queries = torch.stack([scorer.compose(head, relation, "tail"),
                               scorer.compose(tail, relation, "head")], 1)
        if self.head.is_floating_point():           # [B, K, d] embeddings
            picked = pick_queries(queries, flag.long())
            corrupted = (self.head if self.head is self.tail else
                         torch.where(flag.unsqueeze(-1), self.head, self.tail))
            return scorer.match(picked, corrupted)
        rows, index = table.gatherable(torch.where(flag, self.head, self.tail))
        return scorer.match_rows(queries, rows, index, flag.long())

    def _score_generated(self, scorer, head, relation, tail, table) -> Tensor:
        covered = self.head.size(0)                 # the first rows only
        if covered < head.size(0):
            scores = self._score_generated(scorer, head[:covered],
                                           relation[:covered], tail[:covered],
                                           table)
            return torch.cat([scores, scores.new_zeros(head.size(0) - covered,
                                                       scores.size(1))])
        heads, tails = self.sides(head, tail, table)
        return scorer(heads, relation.unsqueeze(1), tails)

    def sides(self, head: Tensor, tail: Tensor,
              table: "EntityTable") -> tuple[Tensor, Tensor]:
        """``([B, K, d] heads, [B, K, d] tails)`` of a generated group: its
        ids looked up, its embeddings as they are, and the sides marked
        ``own`` the positives' ``head`` / ``tail`` ``[B, d]``."""
        heads, tails = table.entity(self.head), table.entity(self.tail)
        if self.own is not None:                    # [K, 2]
            own = self.own.unsqueeze(-1)
            heads = torch.where(own[:, 0], head.unsqueeze(1), heads)
            tails = torch.where(own[:, 1], tail.unsqueeze(1), tails)
        return heads, tails

    def loss(self, loss_fn: "KGELoss", pos: Tensor, scores: Tensor) -> Tensor:
        """``loss_weight`` times ``loss_fn`` of ``[B]`` positive and ``[B, K]``
        negative scores, with the group's margin factor, weight and guard."""
        weight = self.weight
        if self.guard:
            keep = (scores.detach() < pos.detach().unsqueeze(1)).float()
            weight = keep if weight is None else weight * keep
        return self.loss_weight * loss_fn(pos, scores, self.margin_factor, weight)

    def mean_score(self, scores: Tensor) -> Tensor:
        """The mean of detached ``[B, K]`` scores over the negatives that
        count (``weight > 0``)."""
        scores = scores.detach()
        if self.weight is None:
            return scores.mean()
        return (scores * self.weight).sum() / self.weight.sum().clamp_min(1e-12)


def negatives_loss(model: "KGCModel", table: "EntityTable", batch: Tensor,
                   groups: list[Negatives], loss_fn: "KGELoss",
                   track: Callable[[str, Tensor], None] | None = None
                   ) -> tuple[Tensor, list[Tensor]]:
    """The loss of ``[B, 3]`` positives against their groups of negatives.

    Args:
        model: The model being trained.
        table: Its entity table of the step (``model.encode(...)``).
        batch: ``(head, relation, tail)`` ids of the positives.
        groups: What a sampler's ``sample`` returned.
        loss_fn: The loss of each group (margins scaled by its
            ``margin_factor``).
        track: Called as ``track(name, mean score)`` for each named group.

    Returns:
        ``(the sum of the groups' weighted losses, [head, relation, tail]
        [B, *] embeddings of the positives)``, the factors of a regulariser.
    """
    h, r, t = batch.unbind(dim=1)
    if table.prefers_restrict(batch.device):
        # Fuse each entity of the step once (a tenth to a fifth of the rows
        # repeat; a sharded table fetches them from their owners).
        table.restrict(torch.cat([h, t, *(ids.reshape(-1) for neg in groups
                                          for ids in neg.entity_ids())]))
    # One gather (one [N, d] gradient in backward) for both sides.
    head, tail = table.fused(torch.stack([h, t])).unbind(0)
    rel = model.relations(r)
    pos = model.scorer(head, rel, tail)
    loss = pos.new_zeros(())
    for neg in groups:
        scores = neg.score(model.scorer, head, rel, tail, table)
        if neg.name and track is not None:
            track(neg.name, neg.mean_score(scores))
        loss = loss + neg.loss(loss_fn, pos, scores)
    return loss, [head, rel, tail]
