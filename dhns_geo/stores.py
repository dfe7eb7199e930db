"""Entity stores: where the structural entity rows live, behind the hooks
the training loop calls.

* :class:`ReplicatedStore`: the rows are the model's own parameter (one
  process, or every rank of a data-parallel job holding them all);
* :class:`~dhns_geo.sharding.ShardedStore`: the rows are sharded over the
  ranks of a ``torchrun`` job (TorchRec), each rank keeping its share and
  its optimizer state in shard files beside the run's checkpoints.

The loop (:class:`~dhns_geo.training.Trainer`) makes each step's table,
hands the loss over before backward, sets the learning rate, checks for
non-finite rows, evaluates, and saves and loads checkpoints through these
hooks only; a new store is a new subclass of :class:`EntityStore`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from dhns_geo.distributed import DistContext
from dhns_geo.evaluation import evaluate_link_prediction

if TYPE_CHECKING:
    from dhns_geo.data.filter import FilterIndex
    from dhns_geo.nn.model import EntityTable, KGCModel


class EntityStore:
    """Hooks of a store; the defaults are those of rows held by the model.

    Args:
        dist: The job (one process by default).
    """

    def __init__(self, dist: DistContext | None = None) -> None:
        self.dist = dist or DistContext()

    def table(self, model: "KGCModel", batch: Tensor, lazy: bool) -> "EntityTable":
        """The entity table of a training step on ``batch`` (``lazy``: fusing
        only the rows the loss asks for)."""
        return model.encode(lazy=lazy)

    def before_backward(self, loss: Tensor, table: "EntityTable") -> Tensor:
        """The tensor to call ``backward()`` on for ``loss``."""
        return loss

    def set_lr(self, lr: float) -> None:
        """The learning rate of the rows the store updates itself."""

    def nonfinite(self) -> list[str]:
        """Names of the store's own tensors that hold NaN or infinity."""
        return []

    def evaluate(self, model: "KGCModel", triples: Tensor,
                 filter_index: "FilterIndex", batch_size: int,
                 device: torch.device, return_ranks: bool = False) -> dict:
        """Filtered link prediction of ``triples`` with the current rows."""
        return evaluate_link_prediction(
            model.score_all_fn(), triples, filter_index, batch_size, device,
            dist=self.dist, return_ranks=return_ranks)

    def snapshot(self, epoch: int) -> dict[str, Any] | None:
        """The store's own state of the best model so far (kept in memory);
        ``None`` when the model's state dict holds it all."""
        return None

    def restore(self, snapshot: dict[str, Any] | None) -> None:
        """Loads a :meth:`snapshot`."""

    def save(self, run_dir: Path, name: str, epoch: int,
             snapshot: dict[str, Any] | None = None) -> None:
        """Writes the store's own files of checkpoint ``name`` (``model``:
        the best model's, from ``snapshot``; ``last``: with optimizer
        state) of ``epoch``; returns when every rank has written."""

    def load(self, run_dir: Path, name: str, epoch: int) -> None:
        """Loads the store's own files of checkpoint ``name``, written at
        ``epoch``.

        Raises:
            CheckpointError: when they are missing or of another epoch.
        """


class ReplicatedStore(EntityStore):
    """Rows held by the model as an ``nn.Embedding``: every hook is the
    default (the model's state dict and optimizer carry them)."""


def store_for(model: "KGCModel", dist: DistContext | None = None) -> EntityStore:
    """The store of ``model``'s structural rows: sharded when the model was
    built with a :class:`~dhns_geo.sharding.ShardedEntities` table."""
    from dhns_geo.sharding import ShardedEntities, ShardedStore
    structural = model.entities.structural
    if isinstance(structural, ShardedEntities):
        return ShardedStore(structural, dist)
    return ReplicatedStore(dist)
