r"""1-vs-all training: every query is scored against all ``N`` entities.

Each training triple ``(h, r, t)`` asks the tail query ``(h, r, ?)`` and the
head query ``(?, r, t)``; the loss is the cross-entropy of the true answer
over all entities (PyKEEN's LCWA with a softmax, LibKGE's 1vsAll; Lacroix et
al., 2018, with reciprocal relations). A reciprocal model trains on the
triples and their reciprocals ``(t, r + R, h)`` (see
:func:`dhns_geo.data.add_reciprocals`) and asks tail queries only.

The fused ``[N, d]`` entity table is computed once per step (the modality
fusion runs once for all entities) and the ``[Q, N]`` scores are one matrix
product for the bilinear scorers (``cdist`` or chunks for the distance ones).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from dhns_geo.nn.model import EntityTable, KGCModel


def one_vs_all_loss(model: KGCModel, table: EntityTable, batch: Tensor,
                    both_sides: bool = True,
                    label_smoothing: float = 0.0) -> tuple[Tensor, list[Tensor]]:
    """Cross-entropy of ``[B, 3]`` positives' answers over all entities.

    Args:
        model: The model (its relation table holds reciprocals if the batch
            does).
        table: Its entity table of the step.
        batch: ``(head, relation, tail)`` ids.
        both_sides: Ask ``(?, r, t)`` too (``False`` for a batch that holds
            reciprocal triples: tail queries only).
        label_smoothing: Mass spread uniformly over all ``N`` answers.

    Returns:
        ``(mean loss over the Q = B or 2B queries, [head, relation, tail]
        [B, *] embeddings of the batch)``, the factors for a regulariser.
    """
    h, r, t = batch.unbind(dim=1)
    entities = table.fused()                            # [N, d]
    head, tail, rel = entities[h], entities[t], model.relations(r)
    queries = [model.scorer.compose(head, rel, "tail")]
    targets = [t]
    if both_sides:
        queries.append(model.scorer.compose(tail, rel, "head"))
        targets.append(h)
    scores = model.scorer.match_all(torch.cat(queries), entities)   # [Q, N]
    loss = F.cross_entropy(scores, torch.cat(targets),
                           label_smoothing=label_smoothing)
    return loss, [head, rel, tail]
