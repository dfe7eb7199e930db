"""A generic PyG link-prediction training loop for KGC models.

Batches of training triples -> objective (sampled negatives, 1-vs-all, ...)
-> optimizer, with evaluation on valid every ``eval_every`` epochs, early
stopping on valid MRR, and atomic checkpoints that make an interrupted run
resumable to the same result. The regime is an
:class:`~dhns_geo.objectives.Objective` and the entity rows live in an
:class:`~dhns_geo.stores.EntityStore`; the loop names neither.

The files of a run folder, and how they are written and read safely, are
in :mod:`dhns_geo.run_folder`; training a config into a run folder is
:func:`dhns_geo.runs.run_training`. Training stops with
:class:`TrainingDiverged` when the loss or a parameter becomes non-finite,
before that epoch's checkpoint is written.
"""

from __future__ import annotations

import copy
import csv
import dataclasses
import io
import json
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

import torch
import torch.utils.deterministic
from torch import Tensor
from torch_geometric.data import HeteroData
from tqdm.auto import tqdm

from dhns_geo.build import (build_model, build_objective, build_optimizer,
                            build_regularizer)
from dhns_geo.config import TrainConfig
from dhns_geo.data import (build_filter_index, split_triples, training_triples,
                           unseen_triples)
from dhns_geo.data.filter import FilterIndex
from dhns_geo.distributed import DistContext
from dhns_geo.errors import DHNSError
from dhns_geo.nn import KGCModel
from dhns_geo.objectives import Objective
from dhns_geo.provenance import provenance
from dhns_geo.run_folder import (atomic_save, atomic_write_text,
                                 load_checkpoint, load_resume_state,
                                 save_keeping_previous)
from dhns_geo.stores import EntityStore, store_for

HISTORY_FIELDS = ["epoch", "loss", "triples_per_s", "seconds", "valid_mrr"]


class TrainingDiverged(DHNSError):
    """The loss or a parameter became NaN or infinite."""


class Trainer:
    """Trains a :class:`KGCModel` on an objective.

    The loop knows neither the regime nor where the entity rows live: the
    :class:`~dhns_geo.objectives.Objective` gives each step's loss (sampled
    negatives, 1-vs-all, ...) and the :class:`~dhns_geo.stores.EntityStore`
    makes the step's table, updates its own rows and saves them.

    Args:
        model: The model (moved to ``device``).
        objective: What a step minimises.
        data: The MMKG (train triples are read from its edges).
        config: Optimisation settings (lr, epochs, batch size, ...).
        device: Where to train.
        filter_index: All true triples (built from ``data`` when omitted).
        log: Receives one line per epoch / evaluation.
        progress: Show a progress bar (default: when stderr is a terminal).
        dist: The ``torchrun`` job (one process by default).
        store: Where the structural rows live (default: the model's own,
            or a table held elsewhere, see :func:`~dhns_geo.stores.store_for`).
        train_triples: The ``[E, 3]`` triples of an epoch (default: the
            train split, with reciprocals when the model has them).
    """

    def __init__(self, model: KGCModel, objective: Objective,
                 data: HeteroData, config: TrainConfig,
                 device: torch.device, filter_index: FilterIndex | None = None,
                 log: Callable[[str], None] | None = None,
                 progress: bool | None = None,
                 dist: DistContext | None = None,
                 store: EntityStore | None = None,
                 train_triples: Tensor | None = None) -> None:
        self.config, self.device = config, device
        self.dist = dist or DistContext()
        if config.deterministic:
            set_deterministic()
        self.model = model.to(device)
        self.store = store or store_for(self.model, self.dist, config.lr)
        self.objective = objective.to(device)
        self.regularizer = build_regularizer(config, model.scorer.complex)
        self.data = data
        self.train_triples = (training_triples(data, config.reciprocal) if train_triples is None
                              else train_triples).to(device)
        self.selection = selection_triples(data, config.select_on)
        self.filter_index = (filter_index or build_filter_index(data)).to(device)
        owned = {id(p) for p in self.store.owned()}
        self.optimizer = build_optimizer(config, [p for p in self.model.parameters()
                                                  if id(p) not in owned])
        self.generator = torch.Generator(device=device).manual_seed(config.seed)
        self.log = log or (lambda line: print(line, file=sys.stderr))
        self.progress = sys.stderr.isatty() if progress is None else progress
        if not self.dist.is_main:               # rank 0 logs for the job
            self.log, self.progress = (lambda line: None), False
        self.loop = LoopState()
        self._best_state: dict | None = None
        self.epoch_stats: dict[str, float] = {}
        self._sums: dict[str, Tensor | float] = {}
        self._counts: dict[str, int] = {}

    @classmethod
    def from_config(cls, config: TrainConfig, data: HeteroData,
                    device: torch.device, **kwargs: Any) -> "Trainer":
        """The trainer of ``config``: its model and objective, built by
        :mod:`dhns_geo.build` (``kwargs`` go to :class:`Trainer`)."""
        model = build_model(config, data, kwargs.get("dist"), device)
        return cls(model, build_objective(config, data), data, config, device,
                   **kwargs)

    # The loop's counters, read and set as attributes of the trainer.
    epoch = property(lambda self: self.loop.epoch,
                     lambda self, v: setattr(self.loop, "epoch", v))
    steps = property(lambda self: self.loop.steps,
                     lambda self, v: setattr(self.loop, "steps", v))
    best_mrr = property(lambda self: self.loop.best_mrr)
    best_epoch = property(lambda self: self.loop.best_epoch)
    lr_scale = property(lambda self: self.loop.lr_scale)
    history = property(lambda self: self.loop.history)

    # -- one step ----------------------------------------------------------
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
        model, dist = self.model, self.dist
        self.optimizer.zero_grad(set_to_none=True)
        table = self.store.table(model, batch, self.objective.lazy_table)
        rows = dist.share(batch.size(0)) if dist.enabled else None
        loss, factors = self.objective.loss(batch, model, table, self.generator,
                                            rows, self._track)
        params = [p for p in model.parameters() if p.requires_grad]
        if loss is None:                        # a last batch smaller than the job
            loss, weight = sum(p.sum() for p in params) * 0.0, 0.0
        else:
            loss = loss + self.regularizer(factors)
            # Weighted by the share's size, the ranks' mean gradient is the
            # gradient of the whole batch's mean loss.
            weight = factors[0].size(0) / batch.size(0)
        self._set_lr()                  # before backward: the store's update is in it
        self.store.before_backward(loss * weight * dist.world_size, table).backward()
        dist.all_reduce_mean_([p.grad for p in params if p.grad is not None])
        self.optimizer.step()
        self.store.step()
        self.loop.steps += 1
        return dist.sum(loss.detach() * weight)

    def _set_lr(self) -> None:
        """The learning rate of this step (``lr_half_life``, ``lr_drop_at``
        and plateau factors)."""
        lr = self.loop.learning_rate(self.config)
        if lr is None:
            return
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        self.store.set_lr(lr)

    def _track(self, name: str, value: Tensor | float) -> None:
        self._sums[name] = self._sums.get(name, 0.0) + value
        self._counts[name] = self._counts.get(name, 0) + 1

    # -- one epoch ---------------------------------------------------------
    def train_epoch(self) -> dict[str, float]:
        """One pass over the shuffled training triples; :attr:`epoch_stats`
        then holds the epoch's means of the tracked numbers (the objective's
        step numbers and the mean score of each named negative group)."""
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
        self._check_finite(step)
        self.epoch_stats = {name: float(total_) / self._counts[name]
                            for name, total_ in self._sums.items()}
        return {"loss": total / num, "triples_per_s": num / seconds,
                "seconds": seconds}

    def _check_finite(self, step: int) -> None:
        bad = [name for name, p in self.model.named_parameters()
               if not bool(torch.isfinite(p).all())] + self.store.nonfinite()
        if bad:
            self._diverged(f"parameter {bad[0]} became non-finite", step)

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
        return self.store.evaluate(self.model, triples, self.filter_index,
                                   self.config.eval_batch_size, self.device,
                                   return_ranks=return_ranks)

    # -- checkpoints -------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {"model": self.model.state_dict(),
                "optimizer": self.optimizer.state_dict(),
                "objective": self.objective.state_dict(),
                "store": self.store.state_dict(),
                "generator": self.generator.get_state(),
                "torch_rng": torch.get_rng_state(),
                "loop": self.loop.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.objective.load_state_dict(objective_state(state))
        self.store.load_state_dict(state.get("store", {}))
        # RNG states are CPU byte tensors, even after map_location="cuda".
        self.generator.set_state(state["generator"].cpu())
        torch.set_rng_state(state["torch_rng"].cpu())
        self.loop.load_state_dict(state["loop"])

    def _best(self) -> dict[str, Any]:
        return {"model": copy.deepcopy(self.model.state_dict()),
                "objective": copy.deepcopy(self.objective.state_dict()),
                "epoch": self.epoch}

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
        """Trains until ``config.epochs``, early stopping or the time limit,
        then evaluates the best model on valid and test.

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
        if resume:
            self._resume(run_dir)
        while self.epoch < self.config.epochs and not self.loop.stopped(self.config):
            record = self.train_epoch()
            self.loop.epoch += 1
            record = {"epoch": self.epoch, **record, "valid_mrr": ""}
            self.loop.history.append(record)     # _select fills in its valid_mrr
            line = (f"epoch {self.epoch}/{self.config.epochs} loss "
                    f"{record['loss']:.4f} {record['triples_per_s']:,.0f} triples/s")
            if self.loop.evaluates(self.config):
                line += self._select(record, run_dir)
            if self.loop.out_of_time(self.config):
                line += f" (time limit: {self.loop.seconds:.0f} s of training)"
            self._save_last(run_dir)
            self.log(line)
            for callback in callbacks:
                callback(self, record)
        return self._finish(run_dir, test)

    def _resume(self, run_dir: Path | None) -> None:
        if run_dir is None:
            raise DHNSError("resume needs a run folder")
        state = load_resume_state(run_dir, self.device, self.log)
        if state is None:
            self.log("no epoch was finished before: starting from epoch 1")
            return
        self.load_state_dict(state)
        self.store.load(run_dir, "last", self.epoch)
        self.log(f"resumed after epoch {self.epoch}")

    def _select(self, record: dict, run_dir: Path | None) -> str:
        """Evaluates the selection triples: a new best model is kept (and
        written), else the plateau rules apply; returns the log's words."""
        mrr = self.evaluate(self.selection)["mrr"]
        record["valid_mrr"] = mrr
        line = f" valid_mrr {mrr:.4f}"
        if not self.loop.improves(mrr, self.config):
            return line + self.loop.plateau_words(self.config)
        self._best_state = {**self._best(), "store": self.store.snapshot(self.epoch)}
        if run_dir is not None:
            self.store.save(run_dir, "model", self.epoch, self._best_state["store"])
            if self.dist.is_main:                    # rank 0 writes
                atomic_save({k: v for k, v in self._best_state.items()
                             if k != "store"}, run_dir / "model.pt")
        return line

    def _save_last(self, run_dir: Path | None) -> None:
        if run_dir is None:
            return
        self.store.save(run_dir, "last", self.epoch)
        if self.dist.is_main:
            save_keeping_previous(self.state_dict(), run_dir / "last.pt",
                                  run_dir / "last.prev.pt")
            self._write_history(run_dir)

    def _load_best(self, run_dir: Path | None) -> None:
        best = self._best_state
        if best is None and run_dir is not None and (run_dir / "model.pt").is_file():
            best = load_checkpoint(run_dir / "model.pt", self.device)
            self.store.load(run_dir, "model", best["epoch"])
        elif best is not None:
            self.store.restore(best["store"])
        if best is not None:
            self.model.load_state_dict(best["model"])
            self.objective.load_state_dict(objective_state(best))

    def _finish(self, run_dir: Path | None, test: bool = True) -> dict:
        self._load_best(run_dir)
        metrics = {split: self.evaluate(split, return_ranks=True)
                   for split in (("valid", "test") if test else ("valid",))}
        ranks = {split: metrics[split].pop("ranks") for split in metrics}
        metrics["best_epoch"] = self.best_epoch
        if self.config.select_on != "valid":
            metrics["selection"] = {"split": self.config.select_on,
                                    "num_triples": int(self.selection.size(0)),
                                    "best_mrr": self.best_mrr}
        if run_dir is not None and self.dist.is_main:
            metrics["provenance"] = provenance(self.device)
            atomic_save(ranks, run_dir / "ranks.pt")
            atomic_write_text(json.dumps(metrics, indent=2), run_dir / "metrics.json")
        return metrics


@dataclass
class LoopState:
    """The loop's counters and its selection and learning-rate rules."""

    epoch: int = 0
    steps: int = 0                  # optimizer steps taken (the lr schedule)
    lr_scale: float = 1.0           # product of the plateau factors so far
    best_mrr: float = float("-inf")
    best_epoch: int = 0
    bad_evals: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)

    @property
    def seconds(self) -> float:
        """Training time so far, over the epochs of the history (the time
        limit; a resumed run keeps its clock)."""
        return sum(float(record["seconds"]) for record in self.history)

    def stopped(self, config: TrainConfig) -> bool:
        return self.bad_evals >= config.patience or self.out_of_time(config)

    def out_of_time(self, config: TrainConfig) -> bool:
        return 0 < config.time_limit <= self.seconds

    def evaluates(self, config: TrainConfig) -> bool:
        return (self.epoch % config.eval_every == 0 or self.epoch == config.epochs
                or self.out_of_time(config))

    def improves(self, mrr: float, config: TrainConfig) -> bool:
        """Records an evaluation: ``True`` for a new best."""
        if mrr > self.best_mrr:
            self.best_mrr, self.best_epoch, self.bad_evals = mrr, self.epoch, 0
            return True
        self.bad_evals += 1
        return False

    def plateau_words(self, config: TrainConfig) -> str:
        """Applies the plateau factor after an evaluation without gain;
        returns what the log says of it."""
        if self.stopped(config):
            return f" (early stop: no gain in {config.patience} evaluations)"
        if (config.lr_plateau_factor < 1
                and self.bad_evals % config.lr_plateau_patience == 0):
            self.lr_scale *= config.lr_plateau_factor
            return f" (lr x{config.lr_plateau_factor:g})"
        return ""

    def learning_rate(self, config: TrainConfig) -> float | None:
        """The learning rate of the next step; ``None``: the constant one."""
        if not (config.lr_half_life or config.lr_drop_at or self.lr_scale != 1.0):
            return None
        decay = 0.5 ** (self.steps / config.lr_half_life) if config.lr_half_life else 1.0
        if config.lr_drop_at and self.steps >= config.lr_drop_at:
            decay *= 0.1
        return config.lr * self.lr_scale * decay

    def state_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def load_state_dict(self, loop: dict[str, Any]) -> None:
        self.epoch, self.best_mrr = loop["epoch"], loop["best_mrr"]
        self.steps = loop.get("steps", 0)       # not saved before lr_half_life
        self.lr_scale = loop.get("lr_scale", 1.0)
        self.best_epoch, self.bad_evals = loop["best_epoch"], loop["bad_evals"]
        self.history = loop["history"]


def objective_state(checkpoint: dict[str, Any]) -> dict[str, Any]:
    """The objective's state in a checkpoint (``sampler`` in run folders of
    earlier releases)."""
    return checkpoint.get("objective", checkpoint.get("sampler", {}))


def set_deterministic() -> None:
    """Deterministic algorithms: scatter-adds in embedding backward are
    otherwise reordered across threads, so the same seed drifts in the
    last bits."""
    torch.use_deterministic_algorithms(True, warn_only=True)
    # ... but new tensors need not be filled with NaN first (a debugging
    # aid that deterministic mode turns on; ~3 % of a step).
    torch.utils.deterministic.fill_uninitialized_memory = False


def selection_triples(data: HeteroData, select_on: str) -> Tensor:
    """The triples that choose the best epoch (``valid`` or
    ``valid-unseen``)."""
    triples = (split_triples(data, "valid") if select_on == "valid"
               else unseen_triples(data, "valid"))
    if triples.numel() == 0:
        raise DHNSError(f"select_on {select_on}: no valid triples to select on")
    return triples
