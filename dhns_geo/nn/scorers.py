r"""Interaction functions of knowledge graph embedding models.

Every scorer is written as a *composition* and a *match*:

* ``compose(e, r, side)`` turns the known entity and the relation into a
  query in entity space: for ``side="tail"`` the query for ``(e, r, ?)``,
  for ``side="head"`` the query for ``(?, r, e)``;
* ``match(query, candidate)`` scores a candidate against it: the negative
  ``p``-distance for translational models, the dot product for bilinear ones.

The score of ``(h, r, t)`` is ``match(compose(h, r, "tail"), t)`` and equals
``match(compose(t, r, "head"), h)``. One definition therefore serves training
(broadcasting ``[B, d]`` against ``[B, K, d]``, or ``match_rows`` on ids),
ranking against all entities (``match_all``: a matrix product or ``cdist``, never a ``[B, N, d]`` tensor)
and the condition of the diffusion generator (the composition itself).

Complex-valued models (ComplEx, RotatE) store an entity of ``d`` real numbers
as ``d / 2`` complex numbers: real parts first, imaginary parts second.
Higher scores are more plausible.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dhns_geo.errors import DHNSError
from dhns_geo.nn.gathered import gathered_dots, pick_queries


def _split(x: Tensor) -> tuple[Tensor, Tensor]:
    return x.chunk(2, dim=-1)


def _complex_mul(a: Tensor, b: Tensor, conj_b: bool = False) -> Tensor:
    """Product of complex vectors stored as ``[re, im]`` halves."""
    a_re, a_im = _split(a)
    b_re, b_im = _split(b)
    if conj_b:
        b_im = -b_im
    return torch.cat([a_re * b_re - a_im * b_im, a_re * b_im + a_im * b_re],
                     dim=-1)


class Scorer(nn.Module):
    """Base class of interaction functions (no parameters of their own).

    Subclasses implement :meth:`compose` and set :attr:`distance` (and
    :attr:`p` for distance-based scorers).
    """

    #: ``True`` for ``-||q - c||_p`` matching, ``False`` for ``q . c``.
    distance: bool = False
    p: float = 2.0
    #: Whether entity vectors hold complex numbers (``dim`` must be even).
    complex: bool = False

    def relation_dim(self, dim: int) -> int:
        """Size of a relation embedding for entity size ``dim``."""
        return dim

    def init_relations(self, weight: Tensor) -> None:
        """Initialises a ``[R, relation_dim]`` relation table in place."""
        nn.init.xavier_uniform_(weight)

    def compose(self, e: Tensor, r: Tensor, side: str) -> Tensor:
        """The query for the missing ``side`` given entity ``e`` and relation
        ``r`` (``[..., d]`` and ``[..., relation_dim]``, broadcasting)."""
        raise NotImplementedError

    def match(self, query: Tensor, candidate: Tensor) -> Tensor:
        """Scores ``[...]`` of candidates ``[..., d]`` against queries
        ``[..., d]`` (broadcasting)."""
        if self.distance:
            return -torch.linalg.vector_norm(query - candidate, ord=self.p,
                                             dim=-1)
        return (query * candidate).sum(dim=-1)

    def match_all(self, query: Tensor, candidates: Tensor) -> Tensor:
        """Scores ``[B, N]`` of all candidates ``[N, d]`` for queries
        ``[B, d]``."""
        if self.distance:
            return -torch.cdist(query, candidates, p=self.p)
        return query @ candidates.t()

    def match_rows(self, query: Tensor, table: Tensor, index: Tensor,
                   which: Tensor) -> Tensor:
        """Scores ``[B, K]`` of candidates ``table[index]`` (``[N, d]`` table,
        ``[B, K]`` ids) against per-row queries ``query[b, which[b, k]]``
        (``[B, Q, d]`` queries, ``[B, K]`` choices in ``[0, Q)``).

        Dot products and L2 distances go through :func:`gathered_dots`
        (``|a - c|^2 = |a|^2 + |c|^2 - 2 a.c``), which never forms the
        ``[B, K, d]`` tensor of candidates; other norms gather them.
        """
        if self.distance and self.p != 2:
            candidates = F.embedding(index, table)                # [B, K, d]
            return self.match(pick_queries(query, which), candidates)
        dots = gathered_dots(table, query, index, which)
        if not self.distance:
            return dots
        table_sq = (table * table).sum(-1, keepdim=True)
        sq = F.embedding(index, table_sq).squeeze(-1) \
            + (query * query).sum(-1).gather(1, which) - 2 * dots
        return -sq.clamp_min(1e-12).sqrt()

    def relation_coefficients(self, head: Tensor, tail: Tensor) -> Tensor | None:
        """``u`` ``[B, relation_dim]`` with ``score(h, r, t) = u . r`` for
        scorers linear in the relation (``None`` for the others)."""
        return None

    def score_relations(self, head: Tensor, relations: Tensor, tail: Tensor,
                        chunk_elements: int = 2 ** 24) -> Tensor:
        """Scores ``[B, R]`` of every relation ``[R, relation_dim]`` between
        heads ``[B, d]`` and tails ``[B, d]`` (relation prediction): one
        matrix product for scorers linear in the relation, else chunks of
        relations bounding the ``[B, chunk, d]`` intermediates."""
        u = self.relation_coefficients(head, tail)
        if u is not None:
            return u @ relations.t()
        chunk = max(1, chunk_elements // max(1, head.numel()))
        return torch.cat([self(head.unsqueeze(1), part.unsqueeze(0), tail.unsqueeze(1))
                          for part in relations.split(chunk)], dim=1)

    def forward(self, head: Tensor, relation: Tensor, tail: Tensor) -> Tensor:
        """Scores of triples; shapes broadcast, e.g. ``[B, 1, d]`` heads,
        ``[B, 1, d_r]`` relations and ``[B, K, d]`` tails give ``[B, K]``."""
        return self.match(self.compose(head, relation, "tail"), tail)

    def extra_repr(self) -> str:
        return f"p={self.p}" if self.distance else ""


class TransE(Scorer):
    r"""TransE: :math:`-\|h + r - t\|_p` (Bordes et al., 2013)."""

    distance = True

    def __init__(self, p: float = 1.0) -> None:
        super().__init__()
        self.p = float(p)

    def compose(self, e: Tensor, r: Tensor, side: str) -> Tensor:
        return e + r if side == "tail" else e - r


class DistMult(Scorer):
    r"""DistMult: :math:`\langle h, r, t \rangle` (Yang et al., 2015)."""

    def compose(self, e: Tensor, r: Tensor, side: str) -> Tensor:
        return e * r

    def relation_coefficients(self, head: Tensor, tail: Tensor) -> Tensor:
        return head * tail


class ComplEx(Scorer):
    r"""ComplEx: :math:`\mathrm{Re}\langle h, r, \bar t\rangle`
    (Trouillon et al., 2016). The relation is a complex vector."""

    complex = True

    def compose(self, e: Tensor, r: Tensor, side: str) -> Tensor:
        # tail query h*r; head query conj(r)*t, since
        # Re<h, r, conj t> = Re<h, conj(conj(r) t)>.
        return _complex_mul(e, r, conj_b=(side == "head"))

    def relation_coefficients(self, head: Tensor, tail: Tensor) -> Tensor:
        # Re<h, r, conj t> = r_re (h_re t_re + h_im t_im) + r_im (h_re t_im - h_im t_re).
        (a, b), (e, f) = _split(head), _split(tail)
        return torch.cat([a * e + b * f, a * f - b * e], dim=-1)


class RotatE(Scorer):
    r"""RotatE: :math:`-\|h \circ r - t\|` with :math:`|r_i| = 1`
    (Sun et al., 2019). The relation is stored as ``d / 2`` phases.

    Args:
        p: The norm over the ``d / 2`` complex differences' moduli. ``2``
            (default) is the Euclidean norm of the real vector (``cdist``);
            ``1`` sums the moduli, as the authors' code does (the published
            RotatE rows); ranking then works in chunks of candidates.
    """

    distance = True
    complex = True

    def __init__(self, p: float = 2.0) -> None:
        super().__init__()
        self.p = float(p)

    def relation_dim(self, dim: int) -> int:
        return dim // 2

    def init_relations(self, weight: Tensor) -> None:
        nn.init.uniform_(weight, -math.pi, math.pi)

    def compose(self, e: Tensor, r: Tensor, side: str) -> Tensor:
        # |r_i| = 1, so ||h*r - t|| = ||h - conj(r)*t||.
        rotation = torch.cat([torch.cos(r), torch.sin(r)], dim=-1)
        return _complex_mul(e, rotation, conj_b=(side == "head"))

    def match(self, query: Tensor, candidate: Tensor) -> Tensor:
        if self.p == 2:
            return super().match(query, candidate)
        diff = query - candidate
        re, im = _split(diff * diff)
        moduli = (re + im).clamp_min(1e-12).sqrt()       # [..., d / 2]
        if self.p == 1:
            return -moduli.sum(dim=-1)
        return -torch.linalg.vector_norm(moduli, ord=self.p, dim=-1)

    def match_all(self, query: Tensor, candidates: Tensor,
                  chunk_elements: int = 2 ** 22) -> Tensor:
        if self.p == 2:
            return super().match_all(query, candidates)
        # [B, chunk, d] differences, chunk chosen to bound their memory.
        chunk = max(1, chunk_elements // max(1, query.numel()))
        return torch.cat([self.match(query.unsqueeze(1), part.unsqueeze(0))
                          for part in candidates.split(chunk)], dim=1)

    def extra_repr(self) -> str:
        return f"p={self.p}"


SCORERS: dict[str, type[Scorer]] = {
    "transe": TransE, "distmult": DistMult, "complex": ComplEx,
    "rotate": RotatE}


def make_scorer(name: str, p: float = 1.0, rotate_p: float = 2.0) -> Scorer:
    """A scorer by name (``transe``, ``distmult``, ``complex``, ``rotate``);
    ``p`` is the norm of TransE, ``rotate_p`` RotatE's."""
    key = name.lower()
    if key not in SCORERS:
        raise DHNSError(f"unknown scorer {name!r}; choose from "
                         f"{', '.join(SCORERS)}")
    if key == "transe":
        return TransE(p)
    return RotatE(rotate_p) if key == "rotate" else SCORERS[key]()
