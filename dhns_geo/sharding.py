"""The structural entity table sharded row-wise over the ranks of a
``torchrun`` job, on TorchRec.

Each of ``W`` ranks owns about ``N / W`` rows of the ``[N, d]`` table and
their optimizer state (TorchRec's ``EmbeddingCollection`` under a row-wise
``DistributedModelParallel`` plan, with the optimizer fused into the
lookup's backward by FBGEMM). A training step looks up, once, the distinct
entities its positives and negatives touch: the ids go to their owners and
the rows come back (all-to-all), and in backward the rows' gradients go
back to their owners, which apply the optimizer to those rows only. The
rest of the model (relations, feature projections, fusion, the DHNS
generator) is replicated as in data-parallel training.

Entity ``e`` lives in row ``(a e + b) mod N`` (``a`` coprime with ``N``):
ids that a dataset numbers by frequency or by source spread over all ranks.

On the CPU the engine's fused optimizers are SGD and Adagrad (FBGEMM's Adam
needs a GPU). A touched row's gradient is the mean over ranks of their
gradients, like data parallelism's all-reduce, so a job of ``W`` ranks with
the same total batch trains the same model as one process.
"""

from __future__ import annotations

import math
import os
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import Tensor

from dhns_geo.distributed import DistContext
from dhns_geo.errors import DHNSError
from dhns_geo.nn.model import EntityTable, positions
from dhns_geo.stores import EntityStore

if TYPE_CHECKING:
    from dhns_geo.evaluation import RankFn
    from dhns_geo.nn.model import KGCModel

INSTALL = ("pip install 'dhns-geo[distributed]' && pip install --no-deps "
           "torchrec==1.8.0 (see docs/how-to/sharding.md)")

#: Optimizers the engine fuses into the lookup, by device type.
ENGINE_OPTIMIZERS = {"cpu": ("adagrad",), "cuda": ("adagrad", "adam")}

#: Initialisation is streamed in blocks of this many rows.
INIT_BLOCK = 65536


class RowPermutation:
    """Entity ``e`` <-> row ``(a e + b) mod N``, a bijection of ``[0, N)``
    that costs no memory (``a`` near ``0.618 N`` and coprime with ``N``)."""

    def __init__(self, num_entities: int) -> None:
        n = num_entities
        a = max(1, round(0.6180339887 * n)) if n > 2 else 1
        while math.gcd(a, n) != 1:
            a += 1
        self.n, self.a, self.b = n, a, n // 3
        self.a_inv = pow(a, -1, n) if n > 1 else 0
        if n > 3_000_000_000:
            raise DHNSError(f"{n} entities: row ids would overflow int64")

    def rows(self, entities: Tensor) -> Tensor:
        """Rows ``[*]`` of entity ids ``[*]``."""
        return (entities * self.a + self.b) % self.n

    def entities(self, rows: Tensor) -> Tensor:
        """Entity ids ``[*]`` of rows ``[*]``."""
        return ((rows - self.b) % self.n * self.a_inv) % self.n


def _import_engine() -> SimpleNamespace:
    try:
        from torchrec.distributed.embedding import EmbeddingCollectionSharder
        from torchrec.distributed.model_parallel import DistributedModelParallel
        from torchrec.distributed.sharding_plan import (
            construct_module_sharding_plan, row_wise)
        from torchrec.distributed.types import ShardingEnv, ShardingPlan
        from torchrec.modules.embedding_configs import EmbeddingConfig
        from torchrec.modules.embedding_modules import EmbeddingCollection
        from torchrec.optim.apply_optimizer_in_backward import (
            apply_optimizer_in_backward)
        from torchrec.sparse.jagged_tensor import KeyedJaggedTensor
    except ImportError as exc:
        raise DHNSError(f"--shard-entities needs TorchRec ({exc}): {INSTALL}"
                        ) from None
    return SimpleNamespace(
        EmbeddingCollectionSharder=EmbeddingCollectionSharder,
        DistributedModelParallel=DistributedModelParallel,
        construct_module_sharding_plan=construct_module_sharding_plan,
        row_wise=row_wise, ShardingEnv=ShardingEnv, ShardingPlan=ShardingPlan,
        EmbeddingConfig=EmbeddingConfig, EmbeddingCollection=EmbeddingCollection,
        apply_optimizer_in_backward=apply_optimizer_in_backward,
        KeyedJaggedTensor=KeyedJaggedTensor)


def _check_job(optimizer: str, device: torch.device) -> None:
    """A sharded table needs a process group and an optimizer the engine
    fuses on ``device``."""
    if optimizer not in ENGINE_OPTIMIZERS.get(device.type, ()):
        raise DHNSError(
            f"--shard-entities on {device.type}: the engine's fused "
            f"optimizers here are {', '.join(ENGINE_OPTIMIZERS.get(device.type, ()))}"
            f"; use --optimizer adagrad (got {optimizer})")
    import torch.distributed as tdist
    if not tdist.is_initialized():
        raise DHNSError("--shard-entities runs in a torchrun job, e.g. "
                        "torchrun --nproc-per-node=2 -m dhns_geo.cli "
                        "train --shard-entities --optimizer adagrad ...")


class ShardedEntities:
    """The ``[N, d]`` structural entity table, sharded row-wise over the
    ranks of the process group.

    It is initialised as :class:`~dhns_geo.nn.MultimodalEntityEmbedding`
    initialises its table (Xavier-uniform, drawn from the global generator
    in entity order), streamed in blocks: every rank draws the whole stream
    and keeps its rows, so the table and every later draw are those of one
    process with the same seed, and no rank holds more than a block.

    Args:
        num_entities: ``N``.
        dim: ``d``.
        optimizer: ``adagrad`` (any device) or ``adam`` (CUDA).
        lr: Learning rate of the table.
        dist: The job (``W`` ranks).
        device: This rank's device.
    """

    def __init__(self, num_entities: int, dim: int, optimizer: str, lr: float,
                 dist: DistContext, device: torch.device) -> None:
        _check_job(optimizer, device)
        tr = _import_engine()
        self.num_entities, self.dim, self.dist = num_entities, dim, dist
        self.device = device
        self.permutation = RowPermutation(num_entities)
        self._kjt = tr.KeyedJaggedTensor
        self.module = self._sharded_module(tr, optimizer, lr)
        (shard,) = self._weight().local_shards()
        self.offset = int(shard.metadata.shard_offsets[0])
        self.num_local = int(shard.metadata.shard_sizes[0])
        self._init_rows()

    def _sharded_module(self, tr: SimpleNamespace, optimizer: str, lr: float) -> Any:
        """The row-wise sharded ``EmbeddingCollection`` with its optimizer
        fused into the lookup's backward."""
        import torch.distributed as tdist
        num_entities, dim, device = self.num_entities, self.dim, self.device
        collection = tr.EmbeddingCollection(tables=[tr.EmbeddingConfig(
            name="entity", embedding_dim=dim, num_embeddings=num_entities,
            feature_names=["entity"])], device=torch.device("meta"))
        if optimizer == "adagrad":
            # torch.optim.Adagrad's defaults (eps 1e-10, no initial sum).
            engine_opt, kwargs = torch.optim.Adagrad, {"lr": lr, "eps": 1e-10}
        else:
            engine_opt, kwargs = torch.optim.Adam, {"lr": lr}
        tr.apply_optimizer_in_backward(engine_opt, collection.parameters(),
                                          kwargs)
        plan = tr.construct_module_sharding_plan(
            collection, per_param_sharding={"entity": tr.row_wise()},
            local_size=int(os.environ.get("LOCAL_WORLD_SIZE", self.dist.world_size)),
            world_size=self.dist.world_size,
            device_type=device.type)
        with torch.random.fork_rng(devices=[]):   # its own init draws nothing of ours
            return tr.DistributedModelParallel(
                collection, env=tr.ShardingEnv.from_process_group(tdist.group.WORLD),
                plan=tr.ShardingPlan({"": plan}), device=device,
                sharders=[tr.EmbeddingCollectionSharder()])

    # -- the rows this rank owns -----------------------------------------
    def _weight(self):
        return self.module.state_dict()["embeddings.entity.weight"]

    def local_weight(self) -> Tensor:
        """The ``[n_local, d]`` rows this rank owns (the live storage)."""
        return self._weight().local_shards()[0].tensor

    def local_columns(self, entities: Tensor) -> tuple[Tensor, Tensor]:
        """Positions ``[*]`` of entities ``[*]`` among this rank's rows, and
        ``[*]`` whether this rank owns them."""
        col = self.permutation.rows(entities) - self.offset
        return col, (col >= 0) & (col < self.num_local)

    def local_entities(self) -> Tensor:
        """Entity ids ``[n_local]`` of this rank's rows, in row order."""
        rows = torch.arange(self.offset, self.offset + self.num_local,
                            device=self.device)
        return self.permutation.entities(rows)

    def optimizer_states(self) -> dict[str, Tensor]:
        """The optimizer state of this rank's rows, by name (Adagrad:
        ``momentum1``, the ``[n_local, d]`` sums of squared gradients)."""
        state = self.module.fused_optimizer.state_dict()["state"]
        (states,) = state.values()
        return {name.split(".", 1)[1]: value.local_shards()[0].tensor
                for name, value in states.items()}

    @torch.no_grad()
    def _init_rows(self) -> None:
        bound = math.sqrt(6.0 / (self.num_entities + self.dim))
        local = self.local_weight()
        for start in range(0, self.num_entities, INIT_BLOCK):
            block = torch.empty(min(INIT_BLOCK, self.num_entities - start),
                                self.dim).uniform_(-bound, bound)
            rows = self.permutation.rows(torch.arange(start, start + block.size(0)))
            mine = (rows >= self.offset) & (rows < self.offset + self.num_local)
            local[(rows[mine] - self.offset).to(self.device)] = block[mine].to(self.device)

    # -- lookups ------------------------------------------------------------
    def make_store(self, dist: DistContext | None) -> "ShardedStore":
        """The entity store of a model built on this table
        (:func:`~dhns_geo.stores.store_for`)."""
        return ShardedStore(self, dist)

    def lookup(self, entities: Tensor) -> Tensor:
        """Rows ``[U, d]`` of distinct entity ids ``[U]`` (a collective: every
        rank calls it once per step); in backward their gradients go to
        their owners, whose optimizer updates them."""
        rows = self.permutation.rows(entities)
        pad = rows.numel() == 0                  # the engine wants >= 1 id
        if pad:
            rows = rows.new_zeros(1)
        kjt = self._kjt.from_lengths_sync(
            keys=["entity"], values=rows,
            lengths=torch.ones(rows.numel(), dtype=torch.int32, device=rows.device))
        out = self.module(kjt)["entity"].values()
        return out[:0] if pad else out

    def set_lr(self, lr: float) -> None:
        """The learning rate of the next step's fused update."""
        for group in self.module.fused_optimizer.param_groups:
            group["lr"] = lr
        self.module.fused_optimizer.step()       # hands the lr to the kernel

    # -- checkpoints --------------------------------------------------------
    def state_dict(self, optimizer: bool = True) -> dict[str, Any]:
        """This rank's rows (and their optimizer state): a shard file."""
        state = {"num_entities": self.num_entities, "dim": self.dim,
                 "offset": self.offset, "rows": self.local_weight().clone().cpu(),
                 "permutation": [self.permutation.a, self.permutation.b]}
        if optimizer:
            state["optimizer"] = {name: value.clone().cpu() for name, value
                                  in self.optimizer_states().items()}
        return state

    @torch.no_grad()
    def load_rows(self, shards: list[dict[str, Any]]) -> None:
        """Loads this rank's rows (and optimizer state, where the shards
        have it) from the shard files of a job of any size."""
        for shard in shards:
            if (shard["num_entities"], shard["dim"]) != (self.num_entities, self.dim):
                raise DHNSError(
                    f"shard of {shard['num_entities']} x {shard['dim']} rows, the "
                    f"model has {self.num_entities} x {self.dim}")
        stop = self.offset + self.num_local
        self.local_weight().copy_(gather_rows(shards, "rows", self.offset, stop))
        if all("optimizer" in s for s in shards):
            for name, value in self.optimizer_states().items():
                value.copy_(gather_rows(shards, ("optimizer", name), self.offset, stop))


def gather_rows(shards: list[dict[str, Any]], key: str | tuple[str, str],
                start: int, stop: int) -> Tensor:
    """Rows ``[start, stop)`` of the table split over ``shards`` (each with
    its ``offset``), read from the shards that overlap them."""
    parts = []
    for shard in sorted(shards, key=lambda s: s["offset"]):
        value = shard[key] if isinstance(key, str) else shard[key[0]][key[1]]
        lo, hi = shard["offset"], shard["offset"] + value.size(0)
        if hi > start and lo < stop:
            parts.append(value[max(start, lo) - lo:min(stop, hi) - lo])
    out = torch.cat(parts) if parts else None
    if out is None or out.size(0) != stop - start:
        raise DHNSError(f"the shard files do not cover rows {start}-{stop}")
    return out


def full_table(shards: list[dict[str, Any]]) -> Tensor:
    """The ``[N, d]`` table in entity order, assembled from shard files
    (for one machine reading a sharded run)."""
    n = shards[0]["num_entities"]
    permutation = RowPermutation(n)
    if [permutation.a, permutation.b] != list(shards[0]["permutation"]):
        raise DHNSError("the shard files were written with another row order")
    rows = gather_rows(shards, "rows", 0, n)
    return rows[permutation.rows(torch.arange(n))]


class ShardedEntityTable(EntityTable):
    """The :class:`~dhns_geo.nn.model.EntityTable` of a step with a sharded
    structural table.

    :meth:`restrict` is the step's lookup (with gradients) of every entity it
    touches; before it, reading rows without gradients (a sampler
    conditioning on the positives) looks up the batch's entities once.

    Args:
        model: The model (its ``entities`` read features and project them).
        table: The sharded rows.
        batch: ``[B, 3]`` positives of the step (whose entities a sampler may
            read before :meth:`restrict`).
    """

    def __init__(self, model: "KGCModel", table: ShardedEntities,
                 batch: Tensor | None = None) -> None:
        super().__init__(model, None, lazy=True)
        self.table = table
        self.batch = batch
        self._looked_up: tuple[Tensor, Tensor] | None = None   # ids [U], rows [U, d]

    def modalities(self, index: Tensor | None = None) -> tuple[Tensor, Tensor]:
        if index is None:
            raise DHNSError("this step needs every entity's row, which no rank "
                            "holds with --shard-entities")
        if self._looked_up is None:
            if torch.is_grad_enabled():
                raise DHNSError("with --shard-entities, rows with gradients are "
                                "looked up once per step (restrict)")
            ids = torch.unique(torch.cat([index.reshape(-1),
                                          self.batch[:, [0, 2]].reshape(-1)]))
            self._looked_up = ids, self.table.lookup(ids).detach()
        ids, rows = self._looked_up
        return self.model.entities(
            index, rows=F.embedding(positions(ids, index), rows))

    def prefers_restrict(self, device: torch.device) -> bool:
        return True                     # the step's one lookup with gradients

    def restrict(self, index: Tensor) -> None:
        ids = torch.unique(index)
        self._looked_up = ids, self.table.lookup(ids)
        self._rows = ids, self.model.fusion(*self.modalities(ids))

    def anchor(self) -> Tensor:
        """``0 * sum(rows)``: added to the loss, the step's lookup is in the
        backward graph on every rank (its backward is a collective), even
        where a rank's rows get no gradient; a rank whose share of the batch
        is empty looks up no rows, but still takes part in the lookup."""
        if self._rows is None:
            self.restrict(self.batch.new_zeros(0))
        return self._looked_up[1].sum() * 0.0


@torch.no_grad()
def sharded_rank_fn(model: "KGCModel", table: ShardedEntities) -> "RankFn":
    """A :data:`~dhns_geo.evaluation.RankFn` that ranks against all
    entities shard by shard: every rank looks up the queries' entities,
    scores them against its own fused rows only, and the ranks' counts of
    candidates above (and tied with) the true score are summed; the true
    score is its owner's. No rank holds the whole table. Every rank ranks
    every batch."""
    import torch.distributed as tdist

    from dhns_geo.evaluation import filtered_counts, realistic_ranks

    own_rows = model.fusion(*model.entities(table.local_entities(),
                                            rows=table.local_weight()))
    n_local = table.num_local

    def rank_fn(known: Tensor, relation: Tensor, side: str, target: Tensor,
                filter_row: Tensor, filter_col: Tensor) -> Tensor:
        ids = torch.unique(known)
        fused = model.fusion(*model.entities(ids, rows=table.lookup(ids)))
        query = model.query(fused[positions(ids, known)], relation, side)
        scores = model.scorer.match_all(query, own_rows)            # [B, n_local]
        rows = torch.arange(known.numel(), device=known.device)
        col, mine = table.local_columns(target)
        true = torch.where(mine, scores[rows, col.clamp(0, n_local - 1)],
                           scores.new_zeros(()))
        tdist.all_reduce(true)                   # the owner's score, everywhere
        f_col, f_mine = table.local_columns(filter_col)
        greater, ties, candidates = filtered_counts(
            scores, true, torch.cat([filter_row[f_mine], rows[mine]]),
            torch.cat([f_col[f_mine], col[mine]]))
        counts = torch.stack([greater, ties] if candidates is None
                             else [greater, ties, candidates])
        tdist.all_reduce(counts)
        return realistic_ranks(counts[0], counts[1],
                               counts[2] if candidates is not None else None, true)

    return rank_fn


class ShardedStore(EntityStore):
    """The :class:`~dhns_geo.stores.EntityStore` of a sharded table: each
    step looks its rows up (:class:`ShardedEntityTable`), the engine updates
    them in backward at the loop's learning rate, evaluation ranks shard by
    shard, and every rank writes and reads its rows as shard files
    (``shards/{model,last,last.prev}-R-of-W.pt``, each stamped with its
    epoch).

    Args:
        sharded: The sharded rows.
        dist: The job.
    """

    def __init__(self, sharded: ShardedEntities, dist: DistContext | None = None) -> None:
        super().__init__(dist or sharded.dist)
        self.sharded = sharded

    def table(self, model, batch, lazy):
        return ShardedEntityTable(model, self.sharded, batch)

    def before_backward(self, loss, table):
        return loss + table.anchor()

    def set_lr(self, lr):
        self.sharded.set_lr(lr)

    def nonfinite(self):
        # Every rank learns of any rank's rows.
        broken = (~torch.isfinite(self.sharded.local_weight()).all()).float()
        return (["entities.structural (sharded rows)"]
                if float(self.dist.sum(broken)) > 0 else [])

    def evaluate(self, model, triples, filter_index, batch_size, device,
                 return_ranks=False):
        from dhns_geo.evaluation import evaluate_ranks
        return evaluate_ranks(sharded_rank_fn(model, self.sharded), triples,
                              filter_index, batch_size, device,
                              return_ranks=return_ranks)

    def snapshot(self, epoch):
        return {**self.sharded.state_dict(optimizer=False), "epoch": epoch}

    def restore(self, snapshot):
        self.sharded.load_rows([snapshot])

    def save(self, run_dir, name, epoch, snapshot=None):
        from dhns_geo.run_folder import (atomic_save, remove_other_shards,
                                         save_keeping_previous, shard_path)
        rank, world = self.dist.rank, self.dist.world_size
        path = shard_path(run_dir, name, rank, world)
        path.parent.mkdir(exist_ok=True)
        previous = shard_path(run_dir, "last.prev", rank, world)
        if name == "last":
            save_keeping_previous({**self.sharded.state_dict(), "epoch": epoch},
                                  path, previous)
        else:
            atomic_save(snapshot or self.snapshot(epoch), path)
        self.dist.barrier()     # rank 0's checkpoint never precedes its shards
        if self.dist.is_main:   # a job of another size (resumed on more or fewer ranks)
            remove_other_shards(run_dir, [name] + (["last.prev"] if name == "last"
                                                   and previous.exists() else []),
                                world)

    def load(self, run_dir, name, epoch):
        """``last`` falls back on ``last.prev`` (a crash between the shards
        and ``last.pt``); shards of best models written before they carried
        an epoch are taken as they are."""
        self.sharded.load_rows(load_epoch_shards(run_dir, name, epoch, self.device))

    @property
    def device(self) -> torch.device:
        return self.sharded.device


def load_epoch_shards(run_dir, name: str, epoch: int,
                      device: torch.device | str | None = None) -> list[dict[str, Any]]:
    """The shard files of checkpoint ``name`` written at ``epoch`` (``last``:
    else ``last.prev``).

    Raises:
        CheckpointError: when no complete set of that epoch exists.
    """
    from dhns_geo.run_folder import CheckpointError, load_shards
    found = "none"
    for candidate in ((name, "last.prev") if name == "last" else (name,)):
        try:
            shards = load_shards(run_dir, candidate, device)
        except CheckpointError as exc:
            found = str(exc)
            continue
        epochs = sorted({s.get("epoch", epoch) for s in shards})
        if epochs == [epoch]:
            return shards
        found = f"{candidate} shards of epoch(s) {epochs}"
    raise CheckpointError(f"{run_dir}/shards: no {name} shard files of epoch "
                          f"{epoch}, the epoch of {name}.pt ({found})")


def full_table_of_run(run_dir, name: str, epoch: int,
                      device: torch.device | str | None = None) -> Tensor:
    """The ``[N, d]`` structural table of checkpoint ``name`` of a sharded
    run, assembled on one machine."""
    return full_table(load_epoch_shards(run_dir, name, epoch, device)).to(device)
