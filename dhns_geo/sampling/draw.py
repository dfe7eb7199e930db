"""The negatives a sampler draws for given positives, as columns: what
``dhns sample-negatives`` writes for a run trained with sampled negatives."""

from __future__ import annotations

import torch
from torch import Tensor

from dhns_geo.negatives import Negatives
from dhns_geo.sampling.base import ModelView, NegativeSampler, TableView, scoring_inputs

#: The columns of :func:`draw_negatives`.
COLUMNS = ("positive", "group", "column", "side", "entity", "embedding", "score",
           "weight")
#: ``side`` values: the head replaced, the tail replaced, both generated.
SIDE_NAMES = ("head", "tail", "generated")


@torch.no_grad()
def draw_negatives(sampler: NegativeSampler, model: ModelView, table: TableView,
                   positives: Tensor, generator: torch.Generator,
                   batch_size: int = 1024) -> dict[str, Tensor]:
    """Draws ``sampler``'s negatives of ``positives`` ``[n, 3]`` batch by
    batch in eval mode (the sampler changes no state of its own) and scores
    each with ``model``.

    Returns:
        Columns of equal length ``P`` (one row per negative): ``positive``
        (row in ``positives``), ``group`` (index in the sampler's list),
        ``column`` (``k``), ``side`` (index into :data:`SIDE_NAMES`),
        ``entity`` (the negative's id; for an embedding negative the entity
        it was made from, ``-1`` if none), ``embedding`` (bool: the negative
        is an embedding, not an entity's row), ``score`` (the model's score
        of the negative triple) and ``weight`` (its loss weight; ``0``: a
        filtered known triple the loss ignores).
    """
    was_training = sampler.training
    sampler.eval()
    cols: dict[str, list[Tensor]] = {c: [] for c in COLUMNS}
    try:
        for start in range(0, positives.size(0), batch_size):
            batch = positives[start:start + batch_size]
            args = scoring_inputs(model, table, batch)
            for g, group in enumerate(sampler.sample(batch, model, table, generator)):
                for name, column in _columns(group, group.score(*args), start, g).items():
                    cols[name].append(column.reshape(-1))
    finally:
        sampler.train(was_training)
    return {c: torch.cat(v) if v else torch.zeros(0) for c, v in cols.items()}


def _columns(group: Negatives, scores: Tensor, start: int, g: int) -> dict[str, Tensor]:
    """The :data:`COLUMNS` of one group's ``[B', K]`` negatives of the
    positives ``start ...``."""
    covered = scores.size(0) if group.shared is not None else group.head.size(0)
    scores = scores[:covered]                   # a generated group covers B' rows
    (b, k), device = scores.shape, scores.device
    if group.corrupted_head is not None:
        side = (~group.corrupted_head).long().expand(b, k)
        if group.shared is not None:
            ids = group.shared.expand(b, k)
        elif group.head.is_floating_point():
            ids = group.source if group.source is not None else torch.full(
                (b, k), -1, device=device)
        else:
            ids = torch.where(group.corrupted_head, group.head, group.tail)
    else:                                       # generated heads and tails
        side = torch.full((b, k), 2, device=device)
        ids = torch.full((b, k), -1, device=device)
    weight = torch.ones(b, k, device=device) if group.weight is None else group.weight[:b]
    return {"positive": (torch.arange(b, device=device) + start).unsqueeze(1).expand(b, k),
            "group": torch.full((b, k), g, device=device),
            "column": torch.arange(k, device=device).expand(b, k), "side": side,
            "entity": ids, "embedding": torch.full((b, k), group.head.is_floating_point(),
                                                   device=device),
            "score": scores, "weight": weight.expand(b, k)}
