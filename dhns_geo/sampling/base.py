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
        head: ``[B, K]`` entity ids or ``[B, K, d]`` embeddings.
        tail: ``[B, K]`` entity ids or ``[B, K, d]`` embeddings.
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

    def rows(self, index: slice) -> "Negatives":
        """The negatives of the positives ``index`` of the batch (per-row
        fields are sliced; scalars and ``[K]`` broadcasts are kept)."""
        b = self.head.size(0)

        def take(x):
            if isinstance(x, Tensor) and x.dim() >= 2 and x.size(0) == b:
                return x[index]
            return x
        return Negatives(self.head[index], self.tail[index],
                         take(self.margin_factor), take(self.weight),
                         self.loss_weight, take(self.corrupted_head), self.name,
                         self.guard, self.shared)


    def padded(self, b: int) -> "Negatives":
        """The group for a batch of ``b >= B`` positives whose first ``B``
        it covers: the other rows get weight 0 (no negative term)."""
        extra = b - self.head.size(0)
        if extra == 0:
            return self

        def pad(x: Tensor, value: float | bool = 0) -> Tensor:
            fill = x.new_full((extra, *x.shape[1:]), value)
            return torch.cat([x, fill])
        k = self.head.size(1)
        weight = self.weight if self.weight is not None else self.head.new_ones(
            self.head.shape[:2], dtype=torch.float)
        margin = self.margin_factor
        if isinstance(margin, Tensor) and margin.dim() >= 2 and margin.size(0) == b - extra:
            margin = pad(margin)
        return Negatives(pad(self.head), pad(self.tail), margin,
                         pad(weight.expand(b - extra, k)), self.loss_weight,
                         None if self.corrupted_head is None else pad(self.corrupted_head, False),
                         self.name, self.guard)


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
