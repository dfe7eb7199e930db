"""Filtered rank-based link prediction (MRR, MR, Hits@k), head and tail.

For each triple ``(h, r, t)`` the true tail is ranked against all entities
for ``(h, r, ?)`` and the true head against all entities for ``(?, r, t)``.
Every other known true triple is removed from the ranking (the *filtered*
setting) and ties are broken with the *realistic* rule: the mean of the
optimistic rank ``1 + #{score > true}`` and the pessimistic rank
``1 + #{score >= true}`` (the true entity itself not counted).

A NaN or infinite score is the worst possible: a candidate with one ranks
below every finite score, and a true answer with one gets the last rank, so
a broken model can never look good.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor
from tqdm.auto import tqdm

from dhns_geo.data.filter import FilterIndex
from dhns_geo.distributed import DistContext

#: ``score_fn(known [B], relation [B], side) -> [B, N]``: scores of every
#: entity as the missing ``side`` ("tail" or "head") of each query.
ScoreAllFn = Callable[[Tensor, Tensor, str], Tensor]

HITS_AT = (1, 3, 10)


def filtered_counts(scores: Tensor, true: Tensor, filter_row: Tensor,
                    filter_col: Tensor) -> tuple[Tensor, Tensor, Tensor | None]:
    """How the candidates of each row compare with its true score.

    Args:
        scores: ``[B, n]`` scores of ``n`` candidates (all entities, or the
            rows of one shard).
        true: ``[B]`` the true answer's score of each row.
        filter_row: ``[P]`` rows of the entries ``(row, column)`` that are no
            candidates (known true answers, the true answer itself).
        filter_col: ``[P]`` columns of those entries.

    Returns:
        ``[B]`` counts of candidates scoring above ``true``, equal to it,
        and (only when a true score is not finite, else ``None``) of all
        candidates. A non-finite candidate score counts as the worst.
    """
    worst = float("-inf")
    scores = scores.nan_to_num(nan=worst, posinf=worst, neginf=worst)  # a copy
    scores[filter_row, filter_col] = worst
    greater = (scores > true.unsqueeze(1)).sum(dim=1)
    ties = (scores == true.unsqueeze(1)).sum(dim=1)
    candidates = None
    if not bool(torch.isfinite(true).all()):
        candidate = torch.ones_like(scores, dtype=torch.bool)
        candidate[filter_row, filter_col] = False
        candidates = candidate.sum(dim=1)
    return greater, ties, candidates


def realistic_ranks(greater: Tensor, ties: Tensor, candidates: Tensor | None,
                    true: Tensor) -> Tensor:
    """``[B]`` realistic ranks from :func:`filtered_counts`; a non-finite
    true score ranks last among the candidates."""
    ranks = 1.0 + greater.float() + 0.5 * ties.float()
    if candidates is not None:
        ranks = torch.where(torch.isfinite(true), ranks,
                            1.0 + candidates.float())
    return ranks


def filtered_ranks(scores: Tensor, target: Tensor, filter_row: Tensor,
                   filter_col: Tensor) -> Tensor:
    """Realistic filtered ranks of ``target`` in ``scores``.

    Args:
        scores: ``[B, N]`` scores (higher is more plausible).
        target: ``[B]`` the true entity of each row.
        filter_row: ``[P]`` rows of the entries ``(row, entity)`` to remove
            from the ranking (known true answers; the target may be among
            them).
        filter_col: ``[P]`` entities of those entries.

    Returns:
        ``[B]`` float ranks, ``1`` is best; a non-finite true score ranks
        last among the unfiltered candidates.
    """
    rows = torch.arange(scores.size(0), device=scores.device)
    true = scores[rows, target]
    counts = filtered_counts(scores, true, torch.cat([filter_row, rows]),
                             torch.cat([filter_col, target]))
    return realistic_ranks(*counts, true)


def summarize_ranks(ranks: Tensor) -> dict[str, float]:
    """MRR, MR and Hits@k of ``[n]`` ranks."""
    out = {"mrr": float((1.0 / ranks).mean()), "mr": float(ranks.mean())}
    for k in HITS_AT:
        out[f"hits@{k}"] = float((ranks <= k).float().mean())
    return out


#: ``rank_fn(known [B], relation [B], side, target [B], filter_row [P],
#: filter_col [P]) -> [B]``: filtered ranks of the targets of queries whose
#: known true answers are the entries ``(filter_row, filter_col)``.
RankFn = Callable[[Tensor, Tensor, str, Tensor, Tensor, Tensor], Tensor]


def ranks_by_scoring(score_fn: ScoreAllFn, device: torch.device) -> RankFn:
    """The :data:`RankFn` that scores all entities at once."""
    def rank_fn(known: Tensor, relation: Tensor, side: str, target: Tensor,
                filter_row: Tensor, filter_col: Tensor) -> Tensor:
        scores = score_fn(known, relation, side).to(device)
        return filtered_ranks(scores, target, filter_row, filter_col)
    return rank_fn


@torch.no_grad()
def evaluate_link_prediction(score_fn: ScoreAllFn, triples: Tensor,
                             filter_index: FilterIndex, batch_size: int = 256,
                             device: torch.device | str | None = None,
                             progress: bool = False,
                             dist: DistContext | None = None,
                             return_ranks: bool = False) -> dict:
    """Filtered link prediction of ``triples`` in both directions.

    Args:
        score_fn: Scores a batch of queries against all entities (see
            :data:`ScoreAllFn`).
        triples: ``[n, 3]`` ``(head, relation, tail)`` rows to rank.
        filter_index: All known true triples.
        batch_size: Queries scored at once; bounds memory to
            ``batch_size x N`` scores.
        device: Where to rank (default: the filter index's device).
        progress: Show a progress bar.
        dist: In a ``torchrun`` job, each rank ranks its share of
            ``triples`` and the ranks are gathered, so every rank returns
            the metrics of all triples.

    Returns:
        ``{"mrr", "mr", "hits@1", "hits@3", "hits@10", "head": {...},
        "tail": {...}, "num_triples"}``; the top-level metrics average over
        both directions.
    """
    device = torch.device(device) if device is not None else filter_index.device
    return evaluate_ranks(ranks_by_scoring(score_fn, device), triples,
                          filter_index, batch_size, device, progress, dist,
                          return_ranks)


@torch.no_grad()
def evaluate_ranks(rank_fn: RankFn, triples: Tensor, filter_index: FilterIndex,
                   batch_size: int = 256, device: torch.device | str | None = None,
                   progress: bool = False, dist: DistContext | None = None,
                   return_ranks: bool = False) -> dict:
    """:func:`evaluate_link_prediction` with any :data:`RankFn` (e.g. one
    that ranks against a sharded table, where every rank takes part in
    every batch: ``dist`` is then ``None``)."""
    if triples.numel() == 0:
        raise ValueError("no triples to evaluate")
    device = torch.device(device) if device is not None else filter_index.device
    filter_index = filter_index.to(device)
    num_triples = int(triples.size(0))
    dist = dist or DistContext()
    triples = triples[dist.share(num_triples)].to(device)
    ranks = {"head": [], "tail": []}
    batches = range(0, triples.size(0), batch_size)
    for start in tqdm(batches, desc="evaluate", disable=not progress,
                      leave=False):
        h, r, t = triples[start:start + batch_size].unbind(dim=1)
        for side, known, target in (("tail", h, t), ("head", t, h)):
            row, col = filter_index.true_answers(known, r, side)
            ranks[side].append(rank_fn(known, r, side, target, row, col))
    empty = torch.empty(0, device=device)
    head = dist.gather(torch.cat(ranks["head"] or [empty]))
    tail = dist.gather(torch.cat(ranks["tail"] or [empty]))
    result = summarize_ranks(torch.cat([head, tail]))
    result["head"] = summarize_ranks(head)
    result["tail"] = summarize_ranks(tail)
    result["num_triples"] = num_triples
    if return_ranks:
        result["ranks"] = {"head": head.cpu(), "tail": tail.cpu()}
    return result
