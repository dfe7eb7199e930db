"""Entity stores: where the structural entity rows live, behind the hooks
the training loop calls.

* :class:`ReplicatedStore`: the rows are the model's own parameter (one
  process, or every rank of a data-parallel job holding them all), updated
  by the loop's optimizer;
* :class:`RowSparseStore`: one process; the rows are the model's own
  parameter, with a row-sparse gradient and Adagrad of its own that reads
  and writes only the rows a step touches (what a sharded table does on
  each rank, without ``torchrun``);
* :class:`~dhns_geo.sharding.ShardedStore`: the rows are sharded over the
  ranks of a ``torchrun`` job (TorchRec), each rank keeping its share and
  its optimizer state in shard files beside the run's checkpoints.

The loop (:class:`~dhns_geo.training.Trainer`) makes each step's table,
hands the loss over before backward, sets the learning rate, checks for
non-finite rows, evaluates, and saves and loads checkpoints through these
hooks only; a new store is a new subclass of :class:`EntityStore`.
"""

from __future__ import annotations

import warnings
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

    def owned(self) -> list[torch.nn.Parameter]:
        """Parameters of the model the store updates itself (the loop's
        optimizer leaves them out)."""
        return []

    def step(self) -> None:
        """Updates the store's own rows after backward."""

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

    def state_dict(self) -> dict[str, Any]:
        """State of the store to resume from (in ``last.pt``)."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass

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


class RowSparseStore(EntityStore):
    """Rows held by the model as an ``nn.Embedding(sparse=True)`` and
    updated by an Adagrad of the store's own: a step's gradient holds the
    rows it touched only, and the update reads and writes those rows (and
    their sums of squares) only. Adagrad leaves a row without gradient as
    it is, so the updates are those of dense Adagrad; on a large table a
    step costs what its rows cost instead of ``[N, d]`` reads and writes.

    Args:
        embedding: The model's structural table (``sparse`` is set on it).
        lr: The learning rate (the loop's schedule sets it each step).
        dist: One process (a ``torchrun`` job shards its table instead).
    """

    def __init__(self, embedding: torch.nn.Embedding, lr: float,
                 dist: DistContext | None = None) -> None:
        super().__init__(dist)
        if self.dist.enabled:
            from dhns_geo.errors import DHNSError
            raise DHNSError("--sparse-entities runs in one process; a torchrun "
                            "job shards its table with --shard-entities")
        embedding.sparse = True
        self.weight = embedding.weight
        # Not fused: the fused kernel takes dense gradients only.
        self.optimizer = torch.optim.Adagrad([self.weight], lr=lr)

    def owned(self):
        return [self.weight]

    def set_lr(self, lr):
        for group in self.optimizer.param_groups:
            group["lr"] = lr

    def step(self):
        with warnings.catch_warnings():      # torch's note on unchecked sparse tensors
            warnings.filterwarnings("ignore", "Sparse invariant checks")
            self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)

    def state_dict(self):
        return {"optimizer": self.optimizer.state_dict()}

    def load_state_dict(self, state):
        if "optimizer" in state:
            self.optimizer.load_state_dict(state["optimizer"])


def store_for(model: "KGCModel", dist: DistContext | None = None,
              lr: float = 1e-3) -> EntityStore:
    """The store of ``model``'s structural rows: the one a table held
    elsewhere makes (a :class:`~dhns_geo.sharding.ShardedEntities`: its
    sharded store),
    row-sparse when its table is a sparse ``nn.Embedding`` (at learning
    rate ``lr``)."""
    structural = model.entities.structural
    if hasattr(structural, "make_store"):       # a table held elsewhere
        return structural.make_store(dist)
    if getattr(structural, "sparse", False):
        return RowSparseStore(structural, lr, dist)
    return ReplicatedStore(dist)
