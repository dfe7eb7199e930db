"""Uniform and Bernoulli corruption of heads or tails."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import Tensor

from dhns_geo.data.filter import FilterIndex
from dhns_geo.sampling.base import (ModelView, NegativeSampler, Negatives,
                                    TableView, corrupted_sides,
                                    filter_with_fallback, with_sides)
from dhns_geo.sampling.inputs import SamplerInputs

if TYPE_CHECKING:
    from torch_geometric.data import HeteroData

    from dhns_geo.config import TrainConfig


def bernoulli_head_prob(triples: Tensor, num_relations: int) -> Tensor:
    """Per-relation probability of corrupting the head (Wang et al., 2014):
    ``tph / (tph + hpt)``, 0.5 for relations without triples.

    Args:
        triples: ``[E, 3]`` training triples.

    Returns:
        ``[R]`` probabilities.
    """
    h, r, t = triples.unbind(dim=1)
    count = torch.bincount(r, minlength=num_relations).float()
    n = int(triples.max()) + 1
    hr = torch.unique(r * n + h) // n
    rt = torch.unique(r * n + t) // n
    tph = count / torch.bincount(hr, minlength=num_relations).clamp(min=1)
    hpt = count / torch.bincount(rt, minlength=num_relations).clamp(min=1)
    prob = tph / (tph + hpt)
    return torch.where(count > 0, prob, torch.full_like(prob, 0.5))


class CorruptionSampler(NegativeSampler):
    """Replaces the head or the tail of each positive by a random entity.

    Args:
        num_entities: ``N``.
        num_negatives: ``K`` negatives per positive.
        head_prob: ``[R]`` probability of corrupting the head per relation.
        filter_index: If given, negatives that are known true triples are
            redrawn (up to ``filter_rounds`` times) and otherwise get weight 0.
        filter_rounds: Redraw rounds for filtered negatives.
        shared: Draw the ``K`` replacement entities once per batch and share
            them across its positives; each positive picks the side it
            corrupts once, for all ``K`` (with its relation's head
            probability), so that its ``K`` scores are one query against
            the ``K`` candidates. A step then touches ``2B + K`` entities
            instead of ``B (K + 2)``, which lets a multimodal model fuse only those
            (see :class:`~dhns_geo.nn.model.EntityTable`); known true triples
            get weight 0 instead of being redrawn.
    """

    def __init__(self, num_entities: int, num_negatives: int,
                 head_prob: Tensor, filter_index: FilterIndex | None = None,
                 filter_rounds: int = 3, shared: bool = False) -> None:
        super().__init__()
        self.num_entities, self.num_negatives = num_entities, num_negatives
        self.shared = shared
        self.register_buffer("head_prob", head_prob.float(), persistent=False)
        self.filter_index = filter_index
        self.filter_rounds = filter_rounds

    def sample(self, positives: Tensor, model: ModelView, table: TableView,
               generator: torch.Generator) -> list[Negatives]:
        shape = (positives.size(0), self.num_negatives)
        device = positives.device
        # Shared negatives: one side per positive, so that a row's K scores
        # are one query against the K candidates.
        is_head = corrupted_sides(positives, self.head_prob, shape[1],
                                  generator, per_row=self.shared)
        candidates = None
        if self.shared:
            candidates = torch.randint(0, self.num_entities, shape[1:],
                                       generator=generator, device=device)
            drawn = candidates.expand(shape)
        else:
            drawn = torch.randint(0, self.num_entities, shape, generator=generator,
                                  device=device)
        drawn, weight = filter_with_fallback(
            positives, drawn, is_head, self.filter_index, self.num_entities,
            generator, 0 if self.shared else self.filter_rounds)
        heads, tails = with_sides(positives, drawn, is_head)
        return [Negatives(head=heads, tail=tails, weight=weight,
                          corrupted_head=is_head, shared=candidates)]

    @classmethod
    def from_config(cls, config: "TrainConfig", data: "HeteroData") -> "CorruptionSampler":
        """Uniform or Bernoulli corruption (``config.sampler``); with
        reciprocal relations the tails of triples and of their reciprocals."""
        inputs = SamplerInputs.of(config, data)
        head_prob = (torch.zeros(inputs.relations) if config.reciprocal
                     else bernoulli_head_prob(inputs.train, inputs.relations)
                     if config.sampler == "bernoulli"
                     else torch.full((inputs.relations,), 0.5))
        return cls(inputs.entities, config.num_negatives, head_prob,
                   inputs.filter_index, shared=config.shared_negatives)


class UniformSampler(CorruptionSampler):
    """Corrupts head or tail with probability 1/2 each."""

    def __init__(self, num_entities: int, num_relations: int,
                 num_negatives: int, filter_index: FilterIndex | None = None,
                 shared: bool = False) -> None:
        super().__init__(num_entities, num_negatives,
                         torch.full((num_relations,), 0.5), filter_index,
                         shared=shared)


class BernoulliSampler(CorruptionSampler):
    """Corrupts the head with the per-relation Bernoulli probability."""

    def __init__(self, num_entities: int, train_triples: Tensor,
                 num_relations: int, num_negatives: int,
                 filter_index: FilterIndex | None = None,
                 shared: bool = False) -> None:
        super().__init__(num_entities, num_negatives,
                         bernoulli_head_prob(train_triples, num_relations),
                         filter_index, shared=shared)
