"""A generic PyG link-prediction training loop for KGC models.

Batches of training triples -> sampler -> loss -> Adam, with evaluation on
valid every ``eval_every`` epochs, early stopping on valid MRR, and atomic
checkpoints that make an interrupted run resumable to the same result.

The files of a run folder, and how they are written and read safely, are
in :mod:`dhns_geo.run_folder`. Training stops with
:class:`TrainingDiverged` when the loss or a parameter becomes non-finite,
before that epoch's checkpoint is written.
"""

from __future__ import annotations

import copy
import csv
import io
import json
import math
import sys
import time
from pathlib import Path
from typing import Any, Callable, Iterable

import torch
import torch.utils.deterministic
from torch import Tensor
from torch_geometric.data import HeteroData
from tqdm.auto import tqdm

from dhns_geo.config import (TrainConfig, build_loss, build_model,
                             build_optimizer, build_sampler, resolve_device,
                             training_triples)
from dhns_geo.data import build_filter_index, split_triples, unseen_triples
from dhns_geo.data.features import describe_sources
from dhns_geo.data.filter import FilterIndex
from dhns_geo.distributed import (DistContext, init_distributed,
                                  is_main_process, launched_by_torchrun,
                                  shutdown_distributed)
from dhns_geo.errors import DHNSError, OptionError
from dhns_geo.evaluation import evaluate_link_prediction, evaluate_ranks
from dhns_geo.losses import KGELoss, regularization
from dhns_geo.nn import KGCModel
from dhns_geo.onevsall import one_vs_all_loss
from dhns_geo.run_folder import (CheckpointError, RunLock, atomic_save,
                                 atomic_write_text, check_run_data,
                                 load_checkpoint, load_resume_state,
                                 load_shards, read_run_config,
                                 remove_other_shards,
                                 remove_stale_temporaries, run_facts,
                                 save_keeping_previous, shard_path,
                                 write_run_config)
from dhns_geo.nn.model import EntityTable
from dhns_geo.sampling import NegativeSampler, Negatives
from dhns_geo.sharding import (ShardedEntities, ShardedEntityTable,
                               full_table, sharded_rank_fn)

HISTORY_FIELDS = ["epoch", "loss", "triples_per_s", "seconds", "valid_mrr"]


class TrainingDiverged(DHNSError):
    """The loss or a parameter became NaN or infinite."""


class Trainer:
    """Trains a :class:`KGCModel` with a sampler and a loss.

    Args:
        model: The model (moved to ``device``).
        sampler: Any :class:`NegativeSampler`.
        loss: The loss.
        data: The MMKG (train triples are read from its edges).
        config: Optimisation settings (lr, epochs, batch size, ...).
        device: Where to train.
        filter_index: All true triples (built from ``data`` when omitted).
        log: Receives one line per epoch / evaluation.
        progress: Show a progress bar (default: when stderr is a terminal).
    """

    def __init__(self, model: KGCModel, sampler: NegativeSampler,
                 loss: KGELoss, data: HeteroData, config: TrainConfig,
                 device: torch.device, filter_index: FilterIndex | None = None,
                 log: Callable[[str], None] | None = None,
                 progress: bool | None = None,
                 dist: DistContext | None = None) -> None:
        self.config, self.device = config, device
        self.dist = dist or DistContext()
        if config.deterministic:
            # Scatter-adds in embedding backward are otherwise reordered
            # across threads, so the same seed drifts in the last bits.
            torch.use_deterministic_algorithms(True, warn_only=True)
            # ... but new tensors need not be filled with NaN first (a
            # debugging aid that deterministic mode turns on; ~3 % of a step).
            torch.utils.deterministic.fill_uninitialized_memory = False
        self.model = model.to(device)
        structural = model.entities.structural
        #: The sharded structural table (``shard_entities``), else ``None``.
        self.sharded = structural if isinstance(structural, ShardedEntities) else None
        self.sampler = sampler.to(device)
        self.loss = loss
        self.data = data
        self.train_triples = training_triples(config, data).to(device)
        # Model selection (best epoch, early stopping) ranks these.
        self.selection = (split_triples(data, "valid") if config.select_on == "valid"
                          else unseen_triples(data, "valid"))
        if self.selection.numel() == 0:
            raise DHNSError(f"select_on {config.select_on}: no valid triples to "
                            "select on")
        filter_index = filter_index or build_filter_index(data)
        self.filter_index = filter_index.to(device)
        self.optimizer = build_optimizer(config, self.model.parameters())
        self.generator = torch.Generator(device=device).manual_seed(config.seed)
        self.log = log or (lambda line: print(line, file=sys.stderr))
        self.progress = sys.stderr.isatty() if progress is None else progress
        if not self.dist.is_main:               # rank 0 logs for the job
            self.log, self.progress = (lambda line: None), False
        self.epoch = 0
        self.steps = 0                  # optimizer steps taken (the lr schedule)
        self.lr_scale = 1.0             # product of the plateau factors so far
        self.best_mrr = float("-inf")
        self.best_epoch = 0
        self.bad_evals = 0
        self.history: list[dict[str, Any]] = []
        self._best_state: dict | None = None
        self.epoch_stats: dict[str, float] = {}
        self._sums: dict[str, Tensor | float] = {}
        self._counts: dict[str, int] = {}

    @classmethod
    def from_config(cls, config: TrainConfig, data: HeteroData,
                    device: torch.device, **kwargs: Any) -> "Trainer":
        """The trainer of ``config``: its model, sampler and loss, built by
        the factories of :mod:`dhns_geo.config` (``kwargs`` go to
        :class:`Trainer`)."""
        dist = kwargs.get("dist")
        model = build_model(config, data, dist if config.shard_entities else None,
                            device)
        return cls(model, build_sampler(config, data), build_loss(config), data,
                   config, device, **kwargs)

    # -- one epoch ---------------------------------------------------------
    def train_step(self, batch: Tensor) -> float:
        """One optimisation step on ``[B, 3]`` positives; returns the loss.

        In a ``torchrun`` job every rank gets the same batch and draws the
        same negatives; it scores its share of the rows, and the gradients
        are averaged over ranks (see :mod:`dhns_geo.distributed`).
        """
        return float(self.step(batch))

    def step(self, batch: Tensor) -> Tensor:
        """:meth:`train_step` without reading the loss back: returns it as a
        0-dim tensor on the device, so that the host never waits for the
        device (a CUDA graph can capture it, see ``benchmarks/gpu_step.py``;
        a captured step keeps the learning rate it was captured with, so the
        schedules ``lr_half_life``, ``lr_drop_at`` and ``lr_plateau_factor``
        need eager steps).
        """
        model, config, dist = self.model, self.config, self.dist
        one_vs_all = config.training == "1vsall"
        self.optimizer.zero_grad(set_to_none=True)
        table = (ShardedEntityTable(model, self.sharded, batch) if self.sharded
                 else model.encode(lazy=config.shared_negatives and not one_vs_all))
        groups = [] if one_vs_all else self.sampler.sample(
            batch, model, table, self.generator)
        for name, value in self.sampler.step_stats().items():
            self._track(name, value)
        total = batch.size(0)
        if dist.enabled:
            share = dist.share(total)
            batch, groups = batch[share], [neg.rows(share) for neg in groups]
        params = [p for p in model.parameters() if p.requires_grad]
        if batch.size(0) == 0:                  # a last batch smaller than the job
            loss = sum(p.sum() for p in params) * 0.0
            if self.sharded:                    # the step's lookup is a collective
                table.restrict(batch.new_zeros(0))
        else:
            if one_vs_all:
                loss, factors = one_vs_all_loss(model, table, batch,
                                                not config.reciprocal,
                                                config.label_smoothing)
            else:
                loss, factors = self._negatives_loss(batch, table, groups)
            if config.regularizer != "none" and config.reg_weight > 0:
                loss = loss + config.reg_weight * regularization(
                    config.regularizer, factors, model.scorer.complex)
        # Weighted by the share's size, the ranks' mean gradient is the
        # gradient of the whole batch's mean loss.
        weight = batch.size(0) / total
        self._set_lr()                  # before backward: the table's update is in it
        scaled = loss * weight * dist.world_size
        if self.sharded:
            scaled = scaled + table.anchor()
        scaled.backward()
        dist.all_reduce_mean_([p.grad for p in params if p.grad is not None])
        self.optimizer.step()
        self.steps += 1
        return dist.sum(loss.detach() * weight)

    def _set_lr(self) -> None:
        """The learning rate of this step (``lr_half_life``, ``lr_drop_at``
        and plateau factors)."""
        config = self.config
        if not (config.lr_half_life or config.lr_drop_at or self.lr_scale != 1.0):
            return
        decay = 0.5 ** (self.steps / config.lr_half_life) if config.lr_half_life else 1.0
        if config.lr_drop_at and self.steps >= config.lr_drop_at:
            decay *= 0.1
        lr = config.lr * self.lr_scale * decay
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        if self.sharded:
            self.sharded.set_lr(lr)

    def _negatives_loss(self, batch: Tensor, table: EntityTable,
                        groups: list[Negatives]) -> tuple[Tensor, list[Tensor]]:
        """The loss of ``[B, 3]`` positives against their groups of sampled
        negatives, and the ``[head, relation, tail]`` embeddings of the
        positives (the factors of a regulariser)."""
        model = self.model
        h, r, t = batch.unbind(dim=1)
        if self.sharded or (table.lazy and batch.device.type == "cpu"):
            # Fuse each entity of the step once (a tenth to a fifth of
            # the rows repeat). Not on a GPU: unique() waits for the device.
            # A sharded table fetches these rows from their owners.
            table.restrict(torch.cat([h, t, *(ids.reshape(-1) for neg in groups
                                              for ids in neg.entity_ids())]))
        # One gather (one [N, d] gradient in backward) for both sides.
        head, tail = table.fused(torch.stack([h, t])).unbind(0)
        rel = model.relations(r)
        pos = model.scorer(head, rel, tail)
        loss = pos.new_zeros(())
        for neg in groups:
            scores = model.score_negatives(head, rel, tail, neg, table)
            if neg.name:                    # the mean over negatives that count
                self._track(neg.name, scores.detach().mean() if neg.weight is None
                            else (scores.detach() * neg.weight).sum()
                            / neg.weight.sum().clamp_min(1e-12))
            neg_weight = neg.weight
            if neg.guard:
                keep = (scores.detach() < pos.detach().unsqueeze(1)).float()
                neg_weight = keep if neg_weight is None else neg_weight * keep
            loss = loss + neg.loss_weight * self.loss(
                pos, scores, neg.margin_factor, neg_weight)
        return loss, [head, rel, tail]

    def _track(self, name: str, value: Tensor | float) -> None:
        self._sums[name] = self._sums.get(name, 0.0) + value
        self._counts[name] = self._counts.get(name, 0) + 1

    def train_epoch(self) -> dict[str, float]:
        """One pass over the shuffled training triples; :attr:`epoch_stats`
        then holds the epoch's means of the tracked numbers (the sampler's
        step stats and the mean score of each named negative group)."""
        self._sums, self._counts = {}, {}
        self.model.train()
        num = self.train_triples.size(0)
        perm = torch.randperm(num, generator=self.generator, device=self.device)
        bs = self.config.batch_size
        start_time, total = time.perf_counter(), 0.0
        bar = tqdm(total=num, unit="triple", unit_scale=True, leave=False,
                   desc=f"epoch {self.epoch + 1}", disable=not self.progress)
        for step, start in enumerate(range(0, num, bs), 1):
            batch = self.train_triples[perm[start:start + bs]]
            loss = self.train_step(batch)
            if not math.isfinite(loss):
                bar.close()
                self._diverged(f"the loss became {loss}", step)
            total += loss * batch.size(0)
            bar.update(batch.size(0))
            bar.set_postfix(loss=f"{loss:.4f}")
        bar.close()
        seconds = time.perf_counter() - start_time
        bad = [name for name, p in self.model.named_parameters()
               if not bool(torch.isfinite(p).all())]
        if self.sharded:                # every rank learns of any rank's rows
            broken = (~torch.isfinite(self.sharded.local_weight()).all()).float()
            if float(self.dist.sum(broken)) > 0:
                bad.append("entities.structural (sharded rows)")
        if bad:
            self._diverged(f"parameter {bad[0]} became non-finite", step)
        self.epoch_stats = {name: float(total_) / self._counts[name]
                            for name, total_ in self._sums.items()}
        return {"loss": total / num, "triples_per_s": num / seconds,
                "seconds": seconds}

    def _diverged(self, what: str, step: int) -> None:
        raise TrainingDiverged(
            f"training diverged: {what} at epoch {self.epoch + 1}, step {step}; "
            f"the run folder keeps the checkpoint of epoch {self.epoch}. Try a "
            "lower --lr or a smaller --margin")

    # -- evaluation --------------------------------------------------------
    @torch.no_grad()
    def evaluate(self, split: str | Tensor = "valid",
                 return_ranks: bool = False) -> dict:
        """Filtered link prediction on ``split`` (a split name or ``[n, 3]``
        triples) with the current model."""
        self.model.eval()
        triples = split_triples(self.data, split) if isinstance(split, str) else split
        if self.sharded:
            return evaluate_ranks(sharded_rank_fn(self.model, self.sharded),
                                  triples, self.filter_index,
                                  self.config.eval_batch_size, self.device,
                                  return_ranks=return_ranks)
        return evaluate_link_prediction(
            self.model.score_all_fn(), triples, self.filter_index,
            self.config.eval_batch_size, self.device, dist=self.dist,
            return_ranks=return_ranks)

    # -- checkpoints -------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {"model": self.model.state_dict(),
                "optimizer": self.optimizer.state_dict(),
                "sampler": self.sampler.state_dict(),
                "generator": self.generator.get_state(),
                "torch_rng": torch.get_rng_state(),
                "loop": {"epoch": self.epoch, "steps": self.steps,
                         "lr_scale": self.lr_scale,
                         "best_mrr": self.best_mrr,
                         "best_epoch": self.best_epoch,
                         "bad_evals": self.bad_evals,
                         "history": self.history}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.sampler.load_state_dict(state["sampler"])
        # RNG states are CPU byte tensors, even after map_location="cuda".
        self.generator.set_state(state["generator"].cpu())
        torch.set_rng_state(state["torch_rng"].cpu())
        loop = state["loop"]
        self.epoch, self.best_mrr = loop["epoch"], loop["best_mrr"]
        self.steps = loop.get("steps", 0)       # not saved before lr_half_life
        self.lr_scale = loop.get("lr_scale", 1.0)
        self.best_epoch, self.bad_evals = loop["best_epoch"], loop["bad_evals"]
        self.history = loop["history"]

    def _best(self) -> dict[str, Any]:
        return {"model": copy.deepcopy(self.model.state_dict()),
                "sampler": copy.deepcopy(self.sampler.state_dict()),
                "epoch": self.epoch}

    # -- the shards of a sharded entity table -------------------------------
    def _save_shard(self, run_dir: Path, name: str, state: dict[str, Any]) -> None:
        """Every rank writes its rows of checkpoint ``name``; returns when
        all have (so that rank 0's checkpoint never precedes its shards)."""
        rank, world = self.dist.rank, self.dist.world_size
        path = shard_path(run_dir, name, rank, world)
        path.parent.mkdir(exist_ok=True)
        previous = shard_path(run_dir, "last.prev", rank, world)
        if name == "last":
            save_keeping_previous(state, path, previous)
        else:
            atomic_save(state, path)
        self.dist.barrier()
        if self.dist.is_main:   # a job of another size (resumed on more or fewer ranks)
            remove_other_shards(run_dir, [name] + (["last.prev"] if name == "last"
                                                   and previous.exists() else []),
                                world)

    def _resume_shards(self, run_dir: Path) -> None:
        """Loads this rank's rows and their optimizer state from the shard
        files of the epoch resumed (``last``, else ``last.prev`` when a
        crash came between the shards and ``last.pt``)."""
        for name in ("last", "last.prev"):
            try:
                shards = load_shards(run_dir, name, self.device)
            except CheckpointError:
                continue
            if all(s["epoch"] == self.epoch for s in shards):
                self.sharded.load_rows(shards)
                return
        raise CheckpointError(f"{run_dir / 'shards'}: no shard files of epoch "
                              f"{self.epoch}, the epoch of last.pt")

    def _write_history(self, run_dir: Path) -> None:
        buf = io.StringIO()
        writer = csv.DictWriter(buf, HISTORY_FIELDS)
        writer.writeheader()
        writer.writerows(self.history)
        atomic_write_text(buf.getvalue(), run_dir / "history.csv")

    # -- the loop ----------------------------------------------------------
    def fit(self, run_dir: Path | None = None, resume: bool = False,
            callbacks: Iterable[Callable[["Trainer", dict], None]] = (),
            test: bool = True) -> dict:
        """Trains until ``config.epochs`` or early stopping, then evaluates
        the best model on valid and test.

        Args:
            run_dir: Folder for checkpoints and logs (none written if None).
            resume: Continue from ``run_dir/last.pt``.
            callbacks: Called as ``callback(trainer, epoch_record)`` after
                every epoch (after its checkpoint is written).
            test: Evaluate the best model on test too (``False`` for
                hyper-parameter search, which must never read test).

        Returns:
            ``{"valid": metrics, "test": metrics, "best_epoch": int}``.
        """
        config = self.config
        writes = run_dir is not None and self.dist.is_main   # rank 0 writes
        if resume:
            if run_dir is None:
                raise DHNSError("resume needs a run folder")
            state = load_resume_state(run_dir, self.device, self.log)
            if state is None:
                self.log("no epoch was finished before: starting from epoch 1")
            else:
                self.load_state_dict(state)
                if self.sharded:
                    self._resume_shards(run_dir)
                self.log(f"resumed after epoch {self.epoch}")
        stopped = self.bad_evals >= config.patience
        while self.epoch < config.epochs and not stopped:
            record = self.train_epoch()
            self.epoch += 1
            record = {"epoch": self.epoch, **record, "valid_mrr": ""}
            line = (f"epoch {self.epoch}/{config.epochs} loss {record['loss']:.4f} "
                    f"{record['triples_per_s']:,.0f} triples/s")
            if self.epoch % config.eval_every == 0 or self.epoch == config.epochs:
                mrr = self.evaluate(self.selection)["mrr"]
                record["valid_mrr"] = mrr
                line += f" valid_mrr {mrr:.4f}"
                if mrr > self.best_mrr:
                    self.best_mrr, self.best_epoch, self.bad_evals = mrr, self.epoch, 0
                    self._best_state = self._best()
                    if self.sharded:
                        self._best_state["shard"] = self.sharded.state_dict(
                            optimizer=False)
                        if run_dir is not None:
                            self._save_shard(run_dir, "model",
                                             self._best_state["shard"])
                    if writes:
                        atomic_save({k: v for k, v in self._best_state.items()
                                     if k != "shard"}, run_dir / "model.pt")
                else:
                    self.bad_evals += 1
                    stopped = self.bad_evals >= config.patience
                    if (config.lr_plateau_factor < 1 and not stopped
                            and self.bad_evals % config.lr_plateau_patience == 0):
                        self.lr_scale *= config.lr_plateau_factor
                        line += f" (lr x{config.lr_plateau_factor:g})"
                    if stopped:
                        line += f" (early stop: no gain in {config.patience} evaluations)"
            self.history.append(record)
            if self.sharded and run_dir is not None:
                self._save_shard(run_dir, "last", {**self.sharded.state_dict(),
                                                   "epoch": self.epoch})
            if writes:
                save_keeping_previous(self.state_dict(), run_dir / "last.pt",
                                      run_dir / "last.prev.pt")
                self._write_history(run_dir)
            self.log(line)
            for callback in callbacks:
                callback(self, record)
        return self._finish(run_dir, test)

    def _finish(self, run_dir: Path | None, test: bool = True) -> dict:
        best = self._best_state
        if best is None and run_dir is not None and (run_dir / "model.pt").is_file():
            best = load_checkpoint(run_dir / "model.pt", self.device)
            if self.sharded:
                self.sharded.load_rows(load_shards(run_dir, "model", self.device))
        if best is not None:
            self.model.load_state_dict(best["model"])
            self.sampler.load_state_dict(best["sampler"])
            if "shard" in best:
                self.sharded.load_rows([best["shard"]])
        metrics = {split: self.evaluate(split, return_ranks=True)
                   for split in (("valid", "test") if test else ("valid",))}
        ranks = {split: metrics[split].pop("ranks") for split in metrics}
        metrics["best_epoch"] = self.best_epoch
        if self.config.select_on != "valid":
            metrics["selection"] = {"split": self.config.select_on,
                                    "num_triples": int(self.selection.size(0)),
                                    "best_mrr": self.best_mrr}
        if run_dir is not None and self.dist.is_main:
            atomic_save(ranks, run_dir / "ranks.pt")
            atomic_write_text(json.dumps(metrics, indent=2), run_dir / "metrics.json")
        return metrics


def load_dataset_for(config: TrainConfig) -> HeteroData:
    from dhns_geo.datasets import load_dataset
    return load_dataset(config.dataset, config.root, seed=config.seed,
                        visual=config.visual, textual=config.textual,
                        trust_features=config.trust_features)


def check_inputs(config: TrainConfig) -> torch.device:
    """What the config names outside itself: the device (returned) and the
    feature files."""
    for name in ("visual", "textual"):
        path = getattr(config, name)
        if path is not None and not Path(path).expanduser().is_file():
            raise OptionError(name, path, "an existing feature file")
    return resolve_device(config.device)


def run_training(config: TrainConfig, run_dir: Path, resume: bool = False,
                 log: Callable[[str], None] | None = None,
                 progress: bool | None = None,
                 callbacks: Iterable[Callable[[Trainer, dict], None]] = (),
                 test: bool = True) -> dict:
    """Trains ``config`` into ``run_dir`` (or resumes it) and returns the
    metrics of the best model (on test too unless ``test`` is false)."""
    run_dir = Path(run_dir)
    if not resume:
        check_inputs(config)                   # before the folder is made
    writer = is_main_process()                 # rank 0 writes for the job
    lock = RunLock(run_dir).acquire() if writer else None
    try:
        if writer:
            remove_stale_temporaries(run_dir)
        return _train_locked(config, run_dir, resume, log, progress, callbacks, test)
    finally:
        if lock is not None:
            lock.release()


def _train_locked(config: TrainConfig, run_dir: Path, resume: bool,
                  log: Callable[[str], None] | None, progress: bool | None,
                  callbacks: Iterable[Callable[[Trainer, dict], None]],
                  test: bool) -> dict:
    if resume:
        config, facts = read_run_config(run_dir)
    elif is_main_process() and (run_dir / "config.json").exists():
        raise DHNSError(f"{run_dir} already holds a run; use --resume to "
                        "continue it or choose another --out")
    device = check_inputs(config)
    data = load_dataset_for(config)
    if resume:
        check_run_data(run_dir, config, facts, data)
    elif is_main_process():
        write_run_config(config, data, run_dir)
    if log is not None and is_main_process():
        log(describe_sources(run_facts(config, data)["feature_sources"]))
    # A sharded table needs a process group, even of one torchrun process.
    joins = launched_by_torchrun(alone=config.shard_entities)
    owns_group = joins and not torch.distributed.is_initialized()
    dist, device = init_distributed(device, alone=config.shard_entities)
    try:
        if joins and dist.is_main and log is not None:
            log(f"entity table sharded over {dist.world_size} ranks, the rest "
                f"data parallel ({device.type})" if config.shard_entities else
                f"data parallel: {dist.world_size} ranks ({device.type})")
        trainer = Trainer.from_config(config, data, device, log=log,
                                      progress=progress, dist=dist)
        return trainer.fit(run_dir, resume=resume, callbacks=callbacks, test=test)
    finally:
        if owns_group:
            shutdown_distributed()


def load_run(run_dir: Path, device: str | None = None,
             which: str = "model.pt") -> tuple[TrainConfig, HeteroData, KGCModel, dict]:
    """Rebuilds the model of a run folder with its best (or last) weights.

    Returns:
        ``(config, data, model, checkpoint)``.
    """
    run_dir = Path(run_dir)
    config, facts = read_run_config(run_dir)
    data = load_dataset_for(config)
    check_run_data(run_dir, config, facts, data)
    path = run_dir / which
    if not path.is_file():
        raise DHNSError(f"{path}: checkpoint not found")
    dev = resolve_device(device or config.device)
    model = build_model(config, data).to(dev)
    checkpoint = load_checkpoint(path, dev)
    if config.shard_entities:                  # the rows every rank wrote
        checkpoint["model"]["entities.structural.weight"] = full_table(
            load_shards(run_dir, path.stem, dev))
    model.load_state_dict(checkpoint["model"])
    model.eval()
    return config, data, model, checkpoint
