"""NSCaching: negatives from a cache of high-scoring entities.

Zhang, Yao, Shao & Chen, "NSCaching: Simple and Efficient Negative Sampling
for Knowledge Graph Embedding", ICDE 2019 (official code:
github.com/yzhangee/NSCaching).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import Tensor

from dhns_geo.data.filter import FilterIndex
from dhns_geo.sampling.base import (ModelView, NegativeSampler, Negatives,
                                    TableView, candidate_scores,
                                    corrupted_sides, filter_with_fallback,
                                    gumbel_noise, known_mask, with_sides)
from dhns_geo.sampling.corruption import bernoulli_head_prob
from dhns_geo.sampling.inputs import SamplerInputs

if TYPE_CHECKING:
    from torch_geometric.data import HeteroData

    from dhns_geo.config import TrainConfig

UPDATES = ("importance", "top")


class NSCachingSampler(NegativeSampler):
    """Negatives drawn uniformly from a cache per query, refreshed with the
    model's scores every step.

    A head cache per training ``(r, t)`` and a tail cache per ``(h, r)`` hold
    ``N1`` entity ids each (random at first). A step draws each negative
    from the cache of its positive's corrupted side (the side by the
    relation's Bernoulli probability), then refreshes the batch's cache rows:
    the ``N1`` ids and ``N2`` uniform candidates are scored by the model
    without gradient (one batched product for all rows) and ``N1`` of the
    ``N1 + N2`` are kept, drawn without replacement from
    ``softmax(score / temperature)`` (``importance``) or the best ``N1``
    (``top``). The caches are buffers: they travel in the checkpoint, so a
    resumed run draws what an uninterrupted one would.

    Cost per step beside uniform: one ``[U, N1 + N2]`` score matrix, ``U`` the
    batch's distinct cache rows (at most ``2B``).

    Differs from the paper in:

    * ``K`` negatives per positive (the official code draws one); each is
      drawn from the cache with replacement;
    * with filtering, candidates that form a known training triple leave
      the cache at its refresh (they get score ``-inf``), and a drawn one is
      replaced by a uniform entity (the official code can remove them
      periodically, off by default);
    * a cache holds distinct entities (a repeated candidate counts once;
      the official code can keep copies);
    * drawing without replacement by Gumbel top-``N1`` (the same distribution
      as the official ``torch.multinomial``, reproducible with the run's
      random generator);
    * positives outside the training triples (e.g. another split) draw
      uniform negatives.

    Args:
        num_entities: ``N``.
        train: ``[E, 3]`` training triples (the cache keys).
        num_negatives: ``K``.
        head_prob: ``[R]`` probability of corrupting the head.
        cache_size: ``N1`` (30, as published).
        candidates: ``N2`` uniform candidates per refresh (30).
        update: ``importance`` or ``top``.
        temperature: Of the refresh's softmax (2, the official default).
        filter_index: Known true triples to keep out.
        seed: Seed of the initial caches.
    """

    def __init__(self, num_entities: int, train: Tensor, num_negatives: int,
                 head_prob: Tensor, cache_size: int = 30, candidates: int = 30,
                 update: str = "importance", temperature: float = 2.0,
                 filter_index: FilterIndex | None = None, seed: int = 0) -> None:
        super().__init__()
        if update not in UPDATES:
            raise ValueError(f"update must be one of {UPDATES}, got {update!r}")
        self.num_entities, self.num_negatives = num_entities, num_negatives
        self.cache_size, self.candidates = cache_size, candidates
        self.update, self.temperature = update, temperature
        self.filter_index = filter_index
        h, r, t = train.unbind(1)
        self.register_buffer("head_prob", head_prob.float(), persistent=False)
        # Sorted distinct keys: r * N + t for head caches, r * N + h for tails.
        self.register_buffer("head_keys", torch.unique(r * num_entities + t),
                             persistent=False)
        self.register_buffer("tail_keys", torch.unique(r * num_entities + h),
                             persistent=False)
        init = torch.Generator().manual_seed(seed)
        # One table of caches: rows of the head caches, then of the tail caches.
        self.register_buffer("cache", torch.randint(
            0, num_entities, (self.head_keys.numel() + self.tail_keys.numel(), cache_size),
            generator=init))

    def rows(self, positives: Tensor, is_head: Tensor) -> tuple[Tensor, Tensor]:
        """``(row [B], found [B])``: each positive's cache row on its
        corrupted side (``is_head`` ``[B]``) among the head caches (rows
        ``0..Uh-1``) and tail caches (``Uh..``), and whether it has one."""
        h, r, t = positives.unbind(1)
        n = self.num_entities
        rows, found = [], []
        for keys, key in ((self.head_keys, r * n + t), (self.tail_keys, r * n + h)):
            pos = torch.searchsorted(keys, key).clamp(max=keys.numel() - 1)
            rows.append(pos)
            found.append(keys[pos] == key)
        offset = self.head_keys.numel()
        return (torch.where(is_head, rows[0], rows[1] + offset),
                torch.where(is_head, found[0], found[1]))

    @property
    def head_cache(self) -> Tensor:
        """``[Uh, N1]``: the head cache of each training ``(r, t)``."""
        return self.cache[:self.head_keys.numel()]

    @property
    def tail_cache(self) -> Tensor:
        """``[Ut, N1]``: the tail cache of each training ``(h, r)``."""
        return self.cache[self.head_keys.numel():]

    def sample(self, positives: Tensor, model: ModelView, table: TableView,
               generator: torch.Generator) -> list[Negatives]:
        b, k, device = positives.size(0), self.num_negatives, positives.device
        side = corrupted_sides(positives, self.head_prob, 1, generator)[:, 0]
        row, found = self.rows(positives, side)
        pick = torch.randint(0, self.cache_size, (b, k), generator=generator,
                             device=device)
        uniform = torch.randint(0, self.num_entities, (b, k), generator=generator,
                                device=device)
        drawn = torch.where(found.unsqueeze(1), self.cache[row].gather(1, pick), uniform)
        is_head = side.unsqueeze(1).expand(b, k)
        drawn, weight = filter_with_fallback(positives, drawn, is_head,
                                             self.filter_index, self.num_entities,
                                             generator)
        if self.training:
            self.refresh(positives, model, table, generator)
        heads, tails = with_sides(positives, drawn, is_head)
        return [Negatives(head=heads, tail=tails, weight=weight,
                          corrupted_head=is_head)]

    def refresh(self, positives: Tensor, model: ModelView, table: TableView,
                generator: torch.Generator) -> None:
        """Refreshes the cache rows of the batch, both sides: cache plus
        ``N2`` uniform candidates, scored in one product, ``N1`` kept."""
        b = positives.size(0)
        both = torch.cat([positives, positives])
        side = torch.cat([torch.ones(b, dtype=torch.bool, device=both.device),
                          torch.zeros(b, dtype=torch.bool, device=both.device)])
        row, found = self.rows(both, side)
        row, first = _distinct(row[found])
        both, side = both[found][first], side[found][first]
        cand = torch.cat([self.cache[row], torch.randint(
            0, self.num_entities, (row.numel(), self.candidates),
            generator=generator, device=both.device)], 1)
        is_head = side.unsqueeze(1).expand_as(cand)
        logits = candidate_scores(model, table, both, cand, is_head) / self.temperature
        drop = _repeated(cand)
        if self.filter_index is not None:
            drop |= known_mask(both, cand, is_head, self.filter_index)
        logits = logits.masked_fill(drop, float("-inf"))
        if self.update == "importance":
            logits = logits + gumbel_noise(logits.shape, generator, logits.device)
        keep = logits.topk(self.cache_size, dim=1).indices
        self.cache[row] = cand.gather(1, keep)

    @classmethod
    def from_config(cls, config: "TrainConfig", data: "HeteroData") -> "NSCachingSampler":
        inputs = SamplerInputs.of(config, data)
        return cls(inputs.entities, inputs.train, config.num_negatives,
                   bernoulli_head_prob(inputs.train, inputs.relations),
                   config.nscaching_cache_size, config.nscaching_candidates,
                   config.nscaching_update, config.nscaching_temperature,
                   inputs.filter_index, config.seed)


def _repeated(cand: Tensor) -> Tensor:
    """``[U, C]`` bool: ``True`` at each later copy of an id in its row."""
    ordered, order = cand.sort(dim=1, stable=True)
    later = torch.zeros_like(cand, dtype=torch.bool)
    later[:, 1:] = ordered[:, 1:] == ordered[:, :-1]
    return torch.zeros_like(later).scatter(1, order, later)


def _distinct(row: Tensor) -> tuple[Tensor, Tensor]:
    """``(distinct rows [U], position of each one's first occurrence [U])``."""
    unique, inverse = torch.unique(row, return_inverse=True)
    first = torch.full((unique.numel(),), row.numel(), dtype=torch.long,
                       device=row.device)
    first = first.scatter_reduce(0, inverse, torch.arange(row.numel(), device=row.device),
                                 "amin")
    return unique, first
