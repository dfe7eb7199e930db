"""Objectives: what one training step minimises, one class per regime.

The training loop (:class:`~dhns_geo.training.Trainer`) asks its objective
for the loss of a batch and knows nothing of the regime behind it:

* :class:`NegativesObjective`: a :class:`~dhns_geo.sampling.NegativeSampler`
  and a :class:`~dhns_geo.losses.KGELoss` (uniform, Bernoulli,
  self-adversarial, DHNS with its NTAT margins);
* :class:`OneVsAllObjective`: the cross-entropy of each query over all
  entities (:func:`~dhns_geo.onevsall.one_vs_all_loss`).

A new regime is a new subclass: :meth:`Objective.loss` returns the step's
loss and the ``[head, relation, tail]`` embeddings a regulariser penalises.
An objective's learned state (a DHNS generator and its optimizer) is saved
with the loop's checkpoints through :meth:`Objective.state_dict`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

import torch
from torch import Tensor

from dhns_geo.negatives import negatives_loss
from dhns_geo.onevsall import (GeneratedColumns, one_vs_all_loss,
                               relation_prediction_loss)

if TYPE_CHECKING:
    from dhns_geo.losses import KGELoss
    from dhns_geo.nn.model import EntityTable, KGCModel
    from dhns_geo.sampling import NegativeSampler

#: ``track(name, value)``: a number of the step to average over the epoch.
Track = Callable[[str, "Tensor | float"], None]


def _ignore(name: str, value: Tensor | float) -> None:
    pass


class Objective:
    """Base class of a training regime.

    Attributes:
        lazy_table: Whether the step's entity table may fuse only the rows
            the loss asks for (steps that touch few entities).
    """

    lazy_table: bool = False

    def loss(self, batch: Tensor, model: "KGCModel", table: "EntityTable",
             generator: torch.Generator, rows: slice | None = None,
             track: Track = _ignore) -> tuple[Tensor | None, list[Tensor]]:
        """The loss of ``[B, 3]`` positives.

        Args:
            batch: The step's ``(head, relation, tail)`` ids (the same on
                every rank of a job).
            model: The model being trained.
            table: Its entity table of the step.
            generator: The random generator to draw from.
            rows: The positives this rank scores (a job shares the batch
                out; ``None``: all of them).
            track: Receives the step's numbers to average over the epoch.

        Returns:
            ``(loss, [head, relation, tail] factors)``; ``(None, [])`` when
            ``rows`` selects no positive.
        """
        raise NotImplementedError

    def to(self, device: torch.device) -> "Objective":
        return self

    def state_dict(self) -> dict[str, Any]:
        """Learned state to checkpoint (none by default)."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass


class NegativesObjective(Objective):
    """Positives against sampled negatives: the sampler draws every group of
    :class:`~dhns_geo.negatives.Negatives` for the whole batch, then the
    rank's rows are scored (:func:`~dhns_geo.negatives.negatives_loss`).

    Args:
        sampler: Any negative sampler.
        loss_fn: The loss of each group.
        lazy_table: Fuse only the entities a step touches (negatives shared
            across the batch touch few).
    """

    def __init__(self, sampler: "NegativeSampler", loss_fn: "KGELoss",
                 lazy_table: bool = False) -> None:
        self.sampler, self.loss_fn, self.lazy_table = sampler, loss_fn, lazy_table

    def loss(self, batch, model, table, generator, rows=None, track=_ignore):
        groups = self.sampler.sample(batch, model, table, generator)
        for name, value in self.sampler.step_stats().items():
            track(name, value)
        if rows is not None:
            batch, groups = batch[rows], [neg.rows(rows) for neg in groups]
        if batch.size(0) == 0:
            return None, []
        return negatives_loss(model, table, batch, groups, self.loss_fn, track)

    def to(self, device: torch.device) -> "NegativesObjective":
        self.sampler.to(device)
        return self

    def state_dict(self) -> dict[str, Any]:
        return self.sampler.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.sampler.load_state_dict(state)


class OneVsAllObjective(Objective):
    """Each query against all ``N`` entities (cross-entropy), with optional
    DHNS columns and relation prediction.

    Args:
        both_sides: Ask ``(?, r, t)`` too (``False`` when the epoch holds
            reciprocal triples: tail queries only).
        label_smoothing: Mass spread uniformly over all answers.
        columns: Generated candidates beside the real entities (DHNS
            hardness levels with NTAT margins), see
            :class:`~dhns_geo.onevsall.GeneratedColumns`.
        relation_weight: Weight of relation prediction, the cross-entropy of
            each triple's relation over all relations (``0``: none).
    """

    lazy_table = True       # the batch's rows; all N are scored by match_all

    def __init__(self, both_sides: bool = True, label_smoothing: float = 0.0,
                 columns: GeneratedColumns | None = None,
                 relation_weight: float = 0.0) -> None:
        self.both_sides, self.label_smoothing = both_sides, label_smoothing
        self.columns, self.relation_weight = columns, relation_weight

    def loss(self, batch, model, table, generator, rows=None, track=_ignore):
        extra = None
        if self.columns is not None:
            extra = self._columns(batch, model, table, generator, rows, track)
        if rows is not None:
            batch = batch[rows]
        if batch.size(0) == 0:
            return None, []
        loss, factors = one_vs_all_loss(model, table, batch, self.both_sides,
                                        self.label_smoothing, extra)
        if self.relation_weight > 0:
            head, rel, tail = factors
            relations = relation_prediction_loss(model, head, batch[:, 1], tail)
            track("relation_prediction/loss", relations.detach())
            loss = loss + self.relation_weight * relations
        return loss, factors

    def _columns(self, batch, model, table, generator, rows, track):
        """The ``extra`` of :func:`one_vs_all_loss`: the generated columns of
        the rows this rank scores (generated for the whole batch)."""
        generated = self.columns.prepare(batch, model, table, generator)
        track("dhns/generator_loss", self.columns.generator_loss)
        index = torch.arange(batch.size(0), device=batch.device)[
            rows if rows is not None else slice(None)]

        def extra(head, rel, tail, true):
            return self.columns.logits(generated, model, index, head, rel, tail,
                                       true, self.both_sides)
        return extra

    def to(self, device: torch.device) -> "OneVsAllObjective":
        if self.columns is not None:
            self.columns.sampler.to(device)
        return self

    def state_dict(self) -> dict[str, Any]:
        return {} if self.columns is None else self.columns.sampler.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        # Checkpoints of earlier releases held an unused sampler's state.
        if self.columns is not None and state:
            self.columns.sampler.load_state_dict(state)
