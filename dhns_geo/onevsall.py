r"""1-vs-all training: every query is scored against all ``N`` entities.

Each training triple ``(h, r, t)`` asks the tail query ``(h, r, ?)`` and the
head query ``(?, r, t)``; the loss is the cross-entropy of the true answer
over all entities (PyKEEN's LCWA with a softmax, LibKGE's 1vsAll; Lacroix et
al., 2018, with reciprocal relations). A reciprocal model trains on the
triples and their reciprocals ``(t, r + R, h)`` (see
:func:`dhns_geo.data.add_reciprocals`) and asks tail queries only.

The ``[Q, N]`` scores are one matrix product for the bilinear scorers
(``cdist`` or chunks for the distance ones); with a fusion whose weights do
not depend on the embeddings (``gate``) they factor through the raw
modality features (:meth:`~dhns_geo.nn.model.EntityTable.match_all`), so a
multimodal step never builds the fused ``[N, d]`` table.

Two additions share the step's embeddings:

* **generated columns** (:class:`GeneratedColumns`): DHNS's generated
  entities of each hardness level as extra candidates beside the ``N`` real
  ones, each level's logit raised by its NTAT margin;
* **relation prediction** (:func:`relation_prediction_loss`; Chen et al.,
  AKBC 2021): the cross-entropy of each triple's relation over all
  relations.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from dhns_geo.nn.model import EntityTable, KGCModel

if TYPE_CHECKING:
    from dhns_geo.diffusion import DHNSSampler


def one_vs_all_loss(model: KGCModel, table: EntityTable, batch: Tensor,
                    both_sides: bool = True, label_smoothing: float = 0.0,
                    extra: Callable[[Tensor, Tensor, Tensor, Tensor], Tensor] | None = None
                    ) -> tuple[Tensor, list[Tensor]]:
    """Cross-entropy of ``[B, 3]`` positives' answers over all entities.

    Args:
        model: The model (its relation table holds reciprocals if the batch
            does).
        table: Its entity table of the step.
        batch: ``(head, relation, tail)`` ids.
        both_sides: Ask ``(?, r, t)`` too (``False`` for a batch that holds
            reciprocal triples: tail queries only).
        label_smoothing: Mass spread uniformly over all the answers (the
            ``N`` entities and any extra columns).
        extra: ``extra(head, rel, tail, true_scores) -> [Q, L]`` logits of
            extra candidate columns of the ``Q`` queries (tail queries first,
            then head queries); ``true_scores`` ``[Q]`` are the true
            answers' (e.g. :class:`GeneratedColumns`).

    Returns:
        ``(mean loss over the Q = B or 2B queries, [head, relation, tail]
        [B, *] embeddings of the batch)``, the factors for a regulariser.
    """
    h, r, t = batch.unbind(dim=1)
    head, tail = table.fused(torch.stack([h, t])).unbind(0)
    rel = model.relations(r)
    queries = [model.scorer.compose(head, rel, "tail")]
    targets = [t]
    if both_sides:
        queries.append(model.scorer.compose(tail, rel, "head"))
        targets.append(h)
    scores = table.match_all(torch.cat(queries))                  # [Q, N]
    target = torch.cat(targets)
    if extra is not None:
        true = scores.gather(1, target.unsqueeze(1)).squeeze(1)
        scores = torch.cat([scores, extra(head, rel, tail, true)], dim=1)
    loss = F.cross_entropy(scores, target, label_smoothing=label_smoothing)
    return loss, [head, rel, tail]


def relation_prediction_loss(model: KGCModel, head: Tensor, relation: Tensor,
                             tail: Tensor) -> Tensor:
    """Mean cross-entropy of the relations ``[B]`` of triples with head and
    tail embeddings ``[B, d]`` over all the model's relations (reciprocal
    ones included)."""
    scores = model.scorer.score_relations(head, model.relations.weight, tail)
    return F.cross_entropy(scores, relation)


class GeneratedColumns:
    """DHNS in the 1-vs-all softmax: for each query, the generator's
    embedding at each active hardness level is one more candidate beside
    the ``N`` real entities.

    Each step trains the generator on the detached embeddings of the batch's
    positives (as in sampled training), then generates, for every positive
    it serves (the first ``share`` of the batch), a tail given ``(h, r)``
    and a head given ``(t, r)`` per level. Level ``l``'s column holds the
    score of the generated answer plus its NTAT margin ``margin *
    margin_factors[l]`` (a harder level must be beaten by more), plus
    ``log(level_weights[l])`` (a level's weight scales its share of the
    softmax's partition function). Rows the generator does not serve, and
    with ``guard`` the columns that score at least as high as the true
    answer, get ``-inf``.

    Args:
        sampler: The DHNS sampler whose generator and levels are used (its
            base sampler is not).
        margin: The base margin of the generated columns' logits.
    """

    def __init__(self, sampler: "DHNSSampler", margin: float = 1.0) -> None:
        self.sampler, self.margin = sampler, margin

    def prepare(self, batch: Tensor, model: KGCModel, table: EntityTable,
                generator: torch.Generator) -> dict[int, tuple[Tensor, Tensor]]:
        """Trains the generator on the served positives of ``batch`` and
        returns their generated ``(head, tail)`` ``[B', d]`` per level."""
        sampler = self.sampler
        served = sampler.served(batch)
        self.generator_loss = sampler.fit_generator(served, model, table, generator)
        return sampler.generate(served, model, table, generator)

    def logits(self, generated: dict[int, tuple[Tensor, Tensor]], model: KGCModel,
               index: Tensor, head: Tensor, rel: Tensor, tail: Tensor,
               true: Tensor, both_sides: bool) -> Tensor:
        """``[Q, L]`` logits of the generated columns of the batch's rows
        ``index`` ``[B]`` (``head``, ``rel``, ``tail`` their ``[B, *]``
        embeddings; ``true`` ``[Q]`` the true answers' scores; tail queries
        first, then head queries)."""
        sides = [[] for _ in range(2 if both_sides else 1)]
        for level, (gen_h, gen_t) in generated.items():
            served = (index < gen_t.size(0)).unsqueeze(1)           # [B, 1]
            at = index.clamp(max=gen_t.size(0) - 1)
            bonus = (self.margin * self.sampler.margin_factors[level]
                     + math.log(self.sampler.level_weights[level]))
            scores = [model.scorer(head, rel, gen_t[at])]
            if both_sides:
                scores.append(model.scorer(gen_h[at], rel, tail))
            for side, score in zip(sides, scores):
                side.append(torch.where(served.squeeze(1), score + bonus,
                                        score.new_tensor(float("-inf"))))
        out = torch.cat([torch.stack(side, dim=1) for side in sides])   # [Q, L]
        if self.sampler.guard:
            out = out.masked_fill(out.detach() >= true.detach().unsqueeze(1),
                                  float("-inf"))
        return out
