"""The negative sampler interface shared by every sampler."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from dhns_geo.nn.model import EntityTable, KGCModel


@dataclass
class Negatives:
    """A group of negatives for a batch of ``B`` positives.

    The relation of each negative is its positive's.

    Attributes:
        head: ``[B, K]`` entity ids or ``[B, K, d]`` embeddings; a group
            without ``corrupted_head`` may have fewer rows, ``B' < B``: it
            then covers the first ``B'`` positives only, and ``weight``
            (``[B, K]``) must be zero from row ``B'`` on (e.g. DHNS serving a
            share of the batch). Its scores are computed for those rows only.
        tail: Like ``head``.
        margin_factor: Scales the loss margin per negative; a float or a
            tensor broadcastable to ``[B, K]``.
        weight: Optional ``[B, K]`` weight per negative (``0`` ignores it,
            e.g. a filtered false negative).
        loss_weight: Weight of this group's loss in the total loss.
        corrupted_head: Optional ``[B, K]`` bool for negatives that differ
            from their positive on one side only: ``True`` where the head was
            replaced, ``False`` where the tail was. Lets the model compose
            the positive's query once instead of once per negative.
        name: Optional label; the trainer tracks the mean score of named
            groups per epoch (e.g. each DHNS hardness level).
        shared: Optional ``[K]`` ids when column ``k`` of every row is the
            same entity ``shared[k]`` (negatives shared across the batch):
            the model scores the ``K`` candidates against all queries at
            once. ``corrupted_head`` is then required and constant along
            each row (one side per positive).
        guard: Drop (weight 0) each negative that scores at least as high
            as its positive: a generated "negative" the model already
            prefers to the true answer is likely a near-copy of a true
            answer (a false negative).
        own: Optional ``[K, 2]`` bool: ``own[k, 0]`` (``own[k, 1]``) where
            the head (tail) of column ``k`` is its positive's own, whose
            embedding the trainer already holds; that column's entries in
            ``head`` (``tail``) are ignored. Lets a sampler corrupt one side
            without looking the other side up again.
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
                         self.guard, self.shared, self.own)


class NegativeSampler(nn.Module):
    """Base class: ``sample`` returns groups of :class:`Negatives`.

    Samplers are modules so that learned state (the DHNS generator and its
    optimizer) is saved and restored with checkpoints.
    """

    def sample(self, positives: Tensor, model: KGCModel, table: EntityTable,
               generator: torch.Generator) -> list[Negatives]:
        """Negatives of ``positives``.

        Args:
            positives: ``[B, 3]`` ``(head, relation, tail)`` ids.
            model: The KGC model being trained.
            table: Its entity table of the current step.
            generator: The random generator to draw from (for determinism).
        """
        raise NotImplementedError

    def step_stats(self) -> dict[str, Tensor | float]:
        """Numbers about the last :meth:`sample` call to track (e.g. a
        generator's loss), by name; tensors stay on the device until the
        epoch's means are taken."""
        return {}
