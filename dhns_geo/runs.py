"""Training a config into a run folder, and reading a run folder back.

:func:`run_training` checks a :class:`~dhns_geo.config.TrainConfig`, loads
its data, writes ``config.json``, joins a ``torchrun`` job when launched by
one and trains with a :class:`~dhns_geo.training.Trainer`;
:func:`load_run` rebuilds the model of a run folder with its best (or
last) weights, for ``dhns eval``, ``predict`` and ``sample-negatives``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterable

import torch
from torch_geometric.data import HeteroData

from dhns_geo.build import build_model, cost_notice, resolve_device
from dhns_geo.config import TrainConfig
from dhns_geo.data.features import describe_sources
from dhns_geo.distributed import (init_distributed, is_main_process,
                                  launched_by_torchrun, shutdown_distributed)
from dhns_geo.errors import DHNSError, OptionError
from dhns_geo.nn import KGCModel
from dhns_geo.run_folder import (RunLock, check_run_data, extend_run, load_checkpoint,
                                 read_run_config, remove_stale_temporaries,
                                 run_facts, write_run_config)
from dhns_geo.sharding import full_table_of_run
from dhns_geo.training import Trainer


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
                 test: bool = True, epochs: int | None = None,
                 time_limit: float | None = None) -> dict:
    """Trains ``config`` into ``run_dir`` (or resumes it) and returns the
    metrics of the best model (on test too unless ``test`` is false).
    Resuming with ``epochs`` or ``time_limit`` raises the run's budget first
    (:func:`~dhns_geo.run_folder.extend_run`): a finished run trains on."""
    run_dir = Path(run_dir)
    if not resume:
        check_inputs(config)                   # before the folder is made
    writer = is_main_process()                 # rank 0 writes for the job
    lock = RunLock(run_dir).acquire() if writer else None
    try:
        if writer:
            remove_stale_temporaries(run_dir)
            if resume and (epochs, time_limit) != (None, None):
                extend_run(run_dir, epochs, time_limit)
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
        write_run_config(config, data, run_dir, device)
    if log is not None and is_main_process():
        log(describe_sources(run_facts(config, data)["feature_sources"]))
        notice = cost_notice(config, data)
        if notice:
            log(notice)
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
        epoch = checkpoint.get("epoch", checkpoint.get("loop", {}).get("epoch"))
        checkpoint["model"]["entities.structural.weight"] = full_table_of_run(
            run_dir, path.stem, epoch, dev)
    model.load_state_dict(checkpoint["model"])
    model.eval()
    return config, data, model, checkpoint
