"""Any model, seen the way DHNS and the evaluator need it.

DHNS conditions its generator on a model's embeddings, and the filtered
evaluator ranks with a model's scores. Both need only three things, which a
:class:`KGEAdapter` provides for any model:

* entity embeddings by id (``[*, d]``; all ``N`` rows for ``None``),
* relation embeddings by id (``[*, d_r]``),
* an interaction (:class:`~dhns_geo.nn.scorers.Scorer`): the score of
  ``(h, r, t)`` embeddings, and the query ``compose(e, r, side)`` that
  conditions the generator and ranks all entities at once.

:meth:`KGEAdapter.from_pyg` builds one for PyG's
``torch_geometric.nn.kge`` models (``TransE``, ``DistMult``, ``ComplEx``,
``RotatE``), whose score it reproduces exactly; an encoder-decoder model
(R-GCN + DistMult) passes its encoded table each step::

    z = encoder(x, edge_index, edge_type)                # [N, d]
    adapter = KGEAdapter(z, decoder.rel, "distmult")

:func:`evaluate_model` ranks head and tail, filtered, for a PyG model, an
adapter or any score function.
"""

from __future__ import annotations

from typing import Callable, Union

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dhns_geo.data.filter import FilterIndex
from dhns_geo.errors import DHNSError
from dhns_geo.evaluation import ScoreAllFn, evaluate_link_prediction
from dhns_geo.losses import KGELoss
from dhns_geo.nn.scorers import Scorer, make_scorer

#: Embeddings by id: a ``[n, d]`` tensor, an ``nn.Embedding``, or a callable
#: ``ids -> [*, d]`` that returns all ``n`` rows for ``None``.
Lookup = Union[Tensor, nn.Embedding, Callable[[Union[Tensor, None]], Tensor]]


def _lookup(source: Lookup) -> Callable[[Tensor | None], Tensor]:
    if isinstance(source, nn.Embedding):
        source = source.weight
    if isinstance(source, Tensor):
        table = source
        return lambda ids: table if ids is None else table[ids]
    if callable(source):
        return source
    raise DHNSError(f"embeddings must be a tensor, an nn.Embedding or a "
                    f"callable, got {type(source).__name__}")


def _concat(*embeddings: nn.Embedding) -> Callable[[Tensor | None], Tensor]:
    """Rows of several tables side by side (complex models: ``[re, im]``)."""
    return lambda ids: torch.cat([e.weight if ids is None else e(ids)
                                  for e in embeddings], dim=-1)


class KGEAdapter:
    """A model as DHNS and the evaluator see it.

    Args:
        entities: Entity embeddings by id (see :data:`Lookup`), ``[N, d]``.
        relations: Relation embeddings by id, ``[R, d_r]``.
        interaction: A :class:`~dhns_geo.nn.scorers.Scorer` or its name
            (``transe``, ``distmult``, ``complex``, ``rotate``; by name,
            TransE's norm is L1 and RotatE's the Euclidean norm, as in
            :func:`~dhns_geo.nn.scorers.make_scorer`). Complex models store
            ``[re, im]`` halves; RotatE's relations are phases.
        offset: A constant added to every score (PyG's RotatE scores
            ``margin - distance``).
        normalize: ``p`` of a normalisation of every entity embedding,
            generated ones included (PyG's TransE normalises in its score).
        modalities: Optional ``ids -> [*, M, d]``: each entity's ``M``
            modality embeddings (e.g. its structural row and its projected
            features), which DiffHEG generates one by one.
        fuse: With ``modalities``: the model's fusion ``[*, M, d] -> [*, d]``
            (``entities(ids)`` is ``fuse(modalities(ids))``), which turns
            generated modality rows into a negative entity.
        loss: The model's own loss where a sampler's default loss does not
            suit its score (:meth:`from_pyg` gives PyG's ``TransE``, a bare
            distance, and ``DistMult`` their margin ranking loss at
            ``model.margin``, as their ``model.loss`` has it);
            :class:`~dhns_geo.online.OnlineSampler` takes it unless given one.
    """

    def __init__(self, entities: Lookup, relations: Lookup,
                 interaction: Scorer | str, offset: float = 0.0,
                 normalize: float | None = None,
                 modalities: Callable[[Tensor], Tensor] | None = None,
                 fuse: Callable[[Tensor], Tensor] | None = None,
                 loss: KGELoss | None = None) -> None:
        self._entities, self._relations = _lookup(entities), _lookup(relations)
        self.loss = loss
        self.scorer = (interaction if isinstance(interaction, Scorer)
                       else make_scorer(interaction))
        self.offset, self.normalize = offset, normalize
        if (modalities is None) != (fuse is None):
            raise DHNSError("modalities and fuse go together: the fusion turns "
                            "generated modality rows into an entity")
        self._modalities, self._fuse = modalities, fuse

    @classmethod
    def from_pyg(cls, model: nn.Module) -> "KGEAdapter":
        """The adapter of a ``torch_geometric.nn.kge`` ``TransE``,
        ``DistMult``, ``ComplEx`` or ``RotatE``: its :meth:`score` equals
        ``model(head_index, rel_type, tail_index)``, and a ``TransE`` or
        ``DistMult`` brings its own margin ranking loss (``loss``)."""
        kind = type(model).__name__
        if kind == "TransE":
            return cls(model.node_emb, model.rel_emb,
                       make_scorer("transe", p=model.p_norm), normalize=model.p_norm,
                       loss=KGELoss("margin", model.margin))
        if kind == "DistMult":
            return cls(model.node_emb, model.rel_emb, "distmult",
                       loss=KGELoss("margin", model.margin))
        if kind == "ComplEx":
            return cls(_concat(model.node_emb, model.node_emb_im),
                       _concat(model.rel_emb, model.rel_emb_im), "complex")
        if kind == "RotatE":
            return cls(_concat(model.node_emb, model.node_emb_im), model.rel_emb,
                       make_scorer("rotate", rotate_p=2.0), offset=model.margin)
        raise DHNSError(f"no adapter for {kind}: build a KGEAdapter from its "
                        "entity and relation embeddings and its interaction")

    # -- what the evaluator and a user's loss need ---------------------------
    def entities(self, ids: Tensor | None = None) -> Tensor:
        """Entity embeddings ``[*, d]`` of ``ids`` (all ``N`` for ``None``)."""
        return self._normalized(self._entities(ids))

    def relations(self, ids: Tensor | None = None) -> Tensor:
        """Relation embeddings ``[*, d_r]`` of ``ids``."""
        return self._relations(ids)

    def score(self, head: Tensor, relation: Tensor, tail: Tensor) -> Tensor:
        """Scores of ``(h, r, t)`` embeddings (shapes broadcast)."""
        return self.scorer(head, relation, tail) + self.offset

    def score_all(self, known: Tensor, relation: Tensor, side: str) -> Tensor:
        """Scores ``[B, N]`` of every entity as the missing ``side`` of the
        queries ``(known, relation)`` (a :data:`~dhns_geo.evaluation.ScoreAllFn`)."""
        query = self.scorer.compose(self.entities(known), self.relations(relation), side)
        return self.scorer.match_all(query, self.entities()) + self.offset

    @property
    def num_modalities(self) -> int:
        """``M``: 1 (the entity embedding itself) or ``modalities``' rows."""
        if self._modalities is None:
            return 1
        return self._modalities(torch.zeros(1, dtype=torch.long,
                                            device=self.device)).size(-2)

    @property
    def dim(self) -> int:
        return self.entities(torch.zeros(1, dtype=torch.long, device=self.device)).size(-1)

    @property
    def device(self) -> torch.device:
        return self._relations(None).device

    # -- what DHNSSampler calls (model and table at once) --------------------
    def entity(self, x: Tensor) -> Tensor:
        """Embeddings of ids ``[*]``; float embeddings ``[*, d]`` pass through."""
        return x if x.is_floating_point() else self.entities(x)

    def gatherable(self, ids: Tensor) -> tuple[Tensor, Tensor]:
        """``(all [N, d] entity rows, ids)``: what a sampler scores candidate
        ids against (:func:`~dhns_geo.sampling.base.candidate_scores`)."""
        return self.entities(), ids

    def modalities(self, ids: Tensor) -> tuple[Tensor, Tensor]:
        """``([*, M, d] embeddings, [*, M] mask)``: ``modalities``' rows, or
        the entity embedding (un-normalised) as the one row."""
        x = (self._modalities(ids) if self._modalities is not None
             else self._entities(ids).unsqueeze(-2))
        return x, torch.ones(x.shape[:-1], dtype=torch.bool, device=x.device)

    def fusion(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        """Entity embeddings ``[*, d]`` of (generated) modality rows
        ``[*, M, d]``."""
        fused = x[..., 0, :] if self._fuse is None else self._fuse(x)
        return self._normalized(fused)

    def _normalized(self, x: Tensor) -> Tensor:
        return x if self.normalize is None else F.normalize(x, p=self.normalize, dim=-1)


def as_score_all(model: nn.Module | KGEAdapter | ScoreAllFn) -> ScoreAllFn:
    """The :data:`~dhns_geo.evaluation.ScoreAllFn` of a PyG KGE model, an
    adapter, or a score function itself."""
    if isinstance(model, KGEAdapter):
        return model.score_all
    if isinstance(model, nn.Module) and hasattr(model, "node_emb"):
        return KGEAdapter.from_pyg(model).score_all
    if callable(model):
        return model
    raise DHNSError(f"cannot rank with a {type(model).__name__}: pass a PyG "
                    "KGE model, a KGEAdapter or score_fn(known, relation, side)")


@torch.no_grad()
def evaluate_model(model: nn.Module | KGEAdapter | ScoreAllFn, triples: Tensor,
                   known: Tensor | FilterIndex, num_entities: int, num_relations: int,
                   batch_size: int = 256, progress: bool = False,
                   return_ranks: bool = False) -> dict:
    """Filtered link prediction, head and tail, of any model in one call.

    Args:
        model: A ``torch_geometric.nn.kge`` model, a :class:`KGEAdapter`, or
            ``score_fn(known [B], relation [B], side) -> [B, N]``.
        triples: ``[n, 3]`` ``(head, relation, tail)`` rows to rank, e.g.
            ``torch.stack([h, r, t], 1)`` of a PyG split.
        known: ``[m, 3]`` every known true triple (train, valid and test), the
            filter; or the :class:`~dhns_geo.data.filter.FilterIndex` built from
            them once, for a loop that evaluates often.
        num_entities: ``N``.
        num_relations: ``R``.
        return_ranks: Also return the ranks per triple (``"ranks"``).

    Returns:
        :func:`~dhns_geo.evaluation.evaluate_link_prediction`'s metrics,
        ranked on ``triples``' device.
    """
    was_training = getattr(model, "training", None)
    if was_training:
        model.eval()
    index = (known if isinstance(known, FilterIndex)
             else FilterIndex(known.to(triples.device), num_entities, num_relations))
    try:
        return evaluate_link_prediction(as_score_all(model), triples, index,
                                        batch_size, triples.device, progress,
                                        return_ranks=return_ranks)
    finally:
        if was_training:
            model.train()
