"""Index of all known true triples, for filtered ranking and for filtering
false negatives. Built once as sorted key tensors (CSR); queries are
vectorised ``searchsorted`` look-ups with no Python loop over triples."""

from __future__ import annotations

import torch
from torch import Tensor


class _CSR:
    """Maps integer query keys to the sorted list of their answers."""

    def __init__(self, keys: Tensor, values: Tensor) -> None:
        order = torch.argsort(values, stable=True)
        order = order[torch.argsort(keys[order], stable=True)]
        keys, values = keys[order], values[order]
        self.keys, counts = torch.unique_consecutive(keys, return_counts=True)
        self.ptr = torch.cat([counts.new_zeros(1), counts.cumsum(0)])
        self.values = values

    def to(self, device: torch.device) -> "_CSR":
        out = _CSR.__new__(_CSR)
        out.keys, out.ptr = self.keys.to(device), self.ptr.to(device)
        out.values = self.values.to(device)
        return out

    def lookup(self, query: Tensor) -> tuple[Tensor, Tensor]:
        """All answers of each query key.

        Args:
            query: ``[B]`` keys.

        Returns:
            ``(row, value)``, each ``[P]``: ``value`` is an answer of
            ``query[row]``.
        """
        pos = torch.searchsorted(self.keys, query).clamp_(max=self.keys.numel() - 1)
        found = self.keys[pos] == query
        start = self.ptr[pos]
        count = torch.where(found, self.ptr[pos + 1] - start,
                            torch.zeros_like(start))
        row = torch.repeat_interleave(torch.arange(query.numel(),
                                                   device=query.device), count)
        offset = torch.arange(row.numel(), device=query.device) - \
            torch.repeat_interleave(count.cumsum(0) - count, count)
        return row, self.values[torch.repeat_interleave(start, count) + offset]


class FilterIndex:
    """All true triples of a knowledge graph, indexed both ways.

    Args:
        triples: ``[n, 3]`` long ``(head, relation, tail)`` rows (usually
            train, valid and test together; duplicates are fine).
        num_entities: ``N``.
        num_relations: ``R``.
    """

    def __init__(self, triples: Tensor, num_entities: int,
                 num_relations: int) -> None:
        self.num_entities = num_entities
        self.num_relations = num_relations
        h, r, t = triples.long().unbind(dim=1)
        self._tails = _CSR(h * num_relations + r, t)
        self._heads = _CSR(t * num_relations + r, h)
        self._triples = torch.unique((h * num_relations + r) * num_entities + t)

    @property
    def device(self) -> torch.device:
        return self._triples.device

    def to(self, device: torch.device | str) -> "FilterIndex":
        """A copy of the index on ``device``."""
        out = FilterIndex.__new__(FilterIndex)
        out.num_entities, out.num_relations = self.num_entities, self.num_relations
        out._tails, out._heads = self._tails.to(device), self._heads.to(device)
        out._triples = self._triples.to(device)
        return out

    def true_answers(self, known: Tensor, relation: Tensor,
                     side: str) -> tuple[Tensor, Tensor]:
        """Known true answers of ``(known, relation, ?)`` (``side="tail"``) or
        ``(?, relation, known)`` (``side="head"``).

        Args:
            known: ``[B]`` entity ids of the given side.
            relation: ``[B]`` relation ids.

        Returns:
            ``(row, entity)``, each ``[P]``: ``entity`` is a true answer of
            query ``row``.
        """
        csr = self._tails if side == "tail" else self._heads
        return csr.lookup(known * self.num_relations + relation)

    def contains(self, head: Tensor, relation: Tensor, tail: Tensor) -> Tensor:
        """Whether each triple is known to be true (broadcasting shapes)."""
        key = (head * self.num_relations + relation) * self.num_entities + tail
        pos = torch.searchsorted(self._triples, key.reshape(-1))
        pos = pos.clamp_(max=self._triples.numel() - 1)
        return (self._triples[pos] == key.reshape(-1)).view(key.shape)
