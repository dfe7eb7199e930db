"""A run folder's files: written whole or not at all, loaded as data only,
and one writer at a time.

Files of a run folder::

    config.json    the TrainConfig, the dataset facts it needs and the
                   provenance (library version, git commit, torch, device)
    model.pt       best model (and objective) state by valid MRR, its epoch
    last.pt        last epoch: model, optimizer, objective, RNG and loop state
    last.prev.pt   the last.pt before it (kept for recovery)
    history.csv    epoch, loss, triples_per_s, seconds, valid_mrr
    metrics.json   {"valid": ..., "test": ..., "best_epoch": ...,
                   "provenance": ...}
    ranks.pt       the best model's filtered ranks per valid/test triple,
                   {"valid": {"head": [n], "tail": [n]}, "test": ...}
    .lock          held by the one process that writes the folder
    shards/        with a sharded entity table (``shard_entities``): each
                   rank's rows, model-R-of-W.pt (best), last-R-of-W.pt
                   (with their optimizer state), last.prev-R-of-W.pt, each
                   stamped with its epoch and checked against model.pt /
                   last.pt on load

Safety:

* Every file is written to a hidden temporary file beside it, flushed to
  disk and renamed over its name, so a crash leaves the old file or the new
  one, never half of one. A failed write (disk full) leaves the old file.
* Checkpoints hold tensors and plain containers only (numbers, strings,
  lists, dicts) and are read with ``torch.load(weights_only=True)``: a
  checkpoint holding any other object is refused and nothing in it runs.
* A damaged ``last.pt`` (truncated, corrupt, missing) is replaced on resume
  by ``last.prev.pt`` when that one is good.
* :class:`RunLock` (an ``flock`` on ``.lock``) keeps a second process from
  writing the same folder; the operating system drops the lock when its
  holder dies, so a crashed run never blocks its resume.
"""

from __future__ import annotations

import json
import math
import os
import pickle
import re
from pathlib import Path
from typing import Any, BinaryIO, Callable

import torch
from torch_geometric.data import HeteroData

from dhns_geo.config import TrainConfig, flag_name
from dhns_geo.data import num_entities, num_relations, selected_features
from dhns_geo.errors import DHNSError

try:                                   # POSIX; elsewhere no lock is taken
    import fcntl
except ImportError:                    # pragma: no cover - Windows
    fcntl = None


class CheckpointError(DHNSError):
    """A checkpoint file cannot be used (damaged, foreign or unsafe)."""


class UnsafeCheckpointError(CheckpointError):
    """A checkpoint holds objects that could run code when unpickled."""


def _tmp_path(path: Path) -> Path:
    return path.with_name(f".{path.name}.tmp")


def atomic_write(write: Callable[[BinaryIO], None], path: Path) -> None:
    """Writes ``path`` through ``write(file)`` into a temporary file, flushed
    to disk, then renamed over ``path``; on an ``OSError`` the old file is
    left as it was and the error names the file."""
    path = Path(path)
    tmp = _tmp_path(path)
    try:
        with open(tmp, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise DHNSError(f"{path}: could not be written ({exc.strerror or exc}); "
                        "the previous version is intact") from None


def atomic_save(obj: Any, path: Path) -> None:
    """``torch.save`` of ``obj`` to ``path``, atomically."""
    atomic_write(lambda handle: torch.save(obj, handle), path)


def atomic_write_text(text: str, path: Path) -> None:
    atomic_write(lambda handle: handle.write(text.encode()), path)


def save_keeping_previous(obj: Any, path: Path, previous: Path) -> None:
    """Saves ``obj`` to ``path``; the file it replaces becomes ``previous``."""
    tmp_new = path.with_name(f".{path.name}.new")
    atomic_save(obj, tmp_new)
    if path.exists():
        os.replace(path, previous)
    os.replace(tmp_new, path)


def load_checkpoint(path: Path, device: torch.device | str | None = None,
                    required: str = "model") -> dict[str, Any]:
    """Loads a checkpoint (or ``ranks.pt``, with ``required="test"``) as
    data only (``weights_only=True``).

    Raises:
        CheckpointError: naming the file, when it holds anything but
            tensors and plain containers (nothing in it is run), is
            truncated or corrupt, or is not a dhns-geo checkpoint.
    """
    path = Path(path)
    try:
        state = torch.load(path, map_location=device, weights_only=True)
    except pickle.UnpicklingError as exc:
        if "Unsupported global" not in str(exc) and "Unsupported class" not in str(exc):
            raise CheckpointError(f"{path}: damaged checkpoint (corrupt, or "
                                  "not a torch file)") from None
        raise UnsafeCheckpointError(
            f"{path}: refused: it holds objects other than tensors and plain "
            "containers, which could run code when loaded (nothing in it was "
            "run). dhns-geo writes data-only checkpoints; use a checkpoint "
            "from a source you trust, or re-train") from None
    except FileNotFoundError:
        raise CheckpointError(f"{path}: checkpoint not found") from None
    except (RuntimeError, EOFError, OSError, ValueError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise CheckpointError(f"{path}: damaged checkpoint (truncated or "
                              f"corrupt: {reason})") from None
    if not isinstance(state, dict) or required not in state:
        raise CheckpointError(f"{path}: not a dhns-geo file of this kind (no "
                              f"{required!r} entry in it)")
    return state


def remove_stale_temporaries(run_dir: Path) -> None:
    """Deletes temporary files a killed writer left (call with the lock)."""
    for pattern in (".*.tmp", ".*.new"):
        for stale in Path(run_dir).glob(pattern):
            stale.unlink(missing_ok=True)


class RunLock:
    """An exclusive lock on a run folder, held while a process writes it
    (or on a dataset folder, while a process processes and reads it).

    Args:
        run_dir: The folder (created if missing).
        wait: Wait for the holder to release it instead of raising (a
            folder where the lock file cannot be made is used unlocked).
    """

    def __init__(self, run_dir: Path, wait: bool = False) -> None:
        self.path = Path(run_dir) / ".lock"
        self.wait = wait
        self._handle = None

    def acquire(self) -> "RunLock":
        """Takes the lock, or raises :class:`DHNSError` naming the process
        that holds it."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            handle = open(self.path, "a+")
        except OSError:
            if self.wait:                  # a read-only dataset folder: no lock
                return self
            raise
        if fcntl is not None:
            try:
                fcntl.flock(handle.fileno(),
                            fcntl.LOCK_EX | (0 if self.wait else fcntl.LOCK_NB))
            except OSError:
                handle.seek(0)
                holder = handle.read().strip() or "unknown"
                handle.close()
                raise DHNSError(
                    f"{self.path.parent} is being written by another dhns "
                    f"process (pid {holder}); wait for it to finish or choose "
                    "another --out") from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        self._handle = handle
        return self

    def release(self) -> None:
        if self._handle is not None:
            if fcntl is not None:
                fcntl.flock(self._handle.fileno(), fcntl.LOCK_UN)
            self._handle.close()
            self._handle = None

    def __enter__(self) -> "RunLock":
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def load_resume_state(run_dir: Path, device: torch.device | str | None,
                      log: Callable[[str], None]) -> dict[str, Any] | None:
    """The state to resume ``run_dir`` from: ``last.pt``, else (damaged or
    missing) ``last.prev.pt``; ``None`` when the run never finished an epoch.

    Raises:
        CheckpointError: when ``last.pt`` is unsafe, or damaged with no good
            previous checkpoint.
    """
    last, previous = Path(run_dir) / "last.pt", Path(run_dir) / "last.prev.pt"
    if not last.exists() and not previous.exists():
        return None
    try:
        return load_checkpoint(last, device)
    except CheckpointError as exc:
        if isinstance(exc, UnsafeCheckpointError) or not previous.exists():
            raise
        state = load_checkpoint(previous, device)
        log(f"warning: {exc}; resuming from {previous.name} (epoch "
            f"{state['loop']['epoch']})")
        return state


SHARD_NAME = re.compile(r"^(?P<name>[a-z.]+)-(?P<rank>\d+)-of-(?P<world>\d+)\.pt$")


def shard_path(run_dir: Path, name: str, rank: int, world_size: int) -> Path:
    """``run_dir/shards/{name}-{rank}-of-{W}.pt``: rank ``rank``'s rows of
    checkpoint ``name`` (``model``, ``last`` or ``last.prev``) of a run with
    a sharded entity table."""
    return Path(run_dir) / "shards" / f"{name}-{rank}-of-{world_size}.pt"


def load_shards(run_dir: Path, name: str, device: torch.device | str | None = None
                ) -> list[dict[str, Any]]:
    """The shard files of checkpoint ``name``, one per rank of the job that
    wrote them.

    Raises:
        CheckpointError: when a rank's file is missing or damaged, or files
            of two job sizes are mixed.
    """
    folder = Path(run_dir) / "shards"
    found: dict[int, tuple[int, Path]] = {}
    for path in sorted(folder.glob(f"{name}-*-of-*.pt")):
        match = SHARD_NAME.match(path.name)
        if match and match["name"] == name:
            found[int(match["rank"])] = (int(match["world"]), path)
    sizes = {w for w, _ in found.values()}
    if not found or len(sizes) != 1 or sorted(found) != list(range(sizes.pop())):
        raise CheckpointError(
            f"{folder}: expected a {name}-RANK-of-W.pt file from every rank, "
            f"found {sorted(p.name for _, p in found.values()) or 'none'}")
    return [load_checkpoint(found[r][1], device, required="rows")
            for r in sorted(found)]


def remove_other_shards(run_dir: Path, names: list[str], world_size: int) -> None:
    """Removes the shard files of checkpoints ``names`` written by a job of
    another size than ``world_size`` (a run resumed on more or fewer ranks)."""
    for path in (Path(run_dir) / "shards").glob("*-of-*.pt"):
        match = SHARD_NAME.match(path.name)
        if match and match["name"] in names and int(match["world"]) != world_size:
            path.unlink()


def read_json(path: Path) -> Any:
    """Parses a JSON file of a run folder, with an error naming it."""
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise DHNSError(f"{path}: cannot read ({exc})") from None


def run_facts(config: TrainConfig, data: HeteroData) -> dict:
    """The dataset facts a run depends on: sizes and feature provenance."""
    used = selected_features(data, config.features)
    return {"num_entities": num_entities(data),
            "num_relations": num_relations(data),
            "feature_sources": {m: source for m, source in (data.feature_sources or {}).items()
                                if m in used}}


def write_run_config(config: TrainConfig, data: HeteroData, run_dir: Path,
                     device: torch.device | str | None = None) -> None:
    """Writes ``config.json``: the config, the dataset facts it needs and
    the code that trains it (:func:`~dhns_geo.provenance.provenance`)."""
    from dhns_geo.provenance import provenance
    payload = {"config": config.to_dict(), "data": run_facts(config, data),
               "provenance": provenance(device)}
    atomic_write_text(json.dumps(payload, indent=2), run_dir / "config.json")


def _run_payload(run_dir: Path) -> tuple[Path, dict, TrainConfig]:
    """``config.json`` of a run folder: its path, its payload as stored and
    the config it holds (checked)."""
    path = Path(run_dir) / "config.json"
    if not path.is_file():
        raise DHNSError(f"{run_dir}: not a run folder (no config.json)")
    payload = read_json(path)
    if not isinstance(payload, dict) or not {"config", "data"} <= set(payload):
        raise DHNSError(f"{path}: not a dhns-geo run config (needs 'config' "
                        "and 'data')")
    return path, payload, TrainConfig.from_run(payload["config"], str(path))


def read_run_config(run_dir: Path) -> tuple[TrainConfig, dict]:
    """Reads ``config.json`` of a run folder."""
    _, payload, config = _run_payload(run_dir)
    return config, payload["data"]


def extend_run(run_dir: Path, epochs: int | None = None,
               time_limit: float | None = None) -> None:
    """Raises the budget in a run folder's ``config.json``: the epochs to
    ``epochs``, the seconds of training in all to ``time_limit`` (0: none).
    A resumed run, finished or not, then trains on from its last checkpoint
    to the new budget. Each earlier budget is kept (``extended_from``,
    ``time_limit_from``); a smaller one is refused."""
    path, payload, _ = _run_payload(run_dir)                 # a valid run folder
    config, changed = payload["config"], False
    for name, new, history, unit in (
            ("epochs", epochs, "extended_from", "epochs"),
            ("time_limit", time_limit, "time_limit_from", "s of training")):
        old = config.get(name, 0)
        if new is None or new == old:
            continue
        if (new or math.inf) < (old or math.inf):            # 0: no limit
            has = f"a budget of {old:g} {unit}" if old else "no time limit"
            raise DHNSError(f"{run_dir}: the run has {has}; {flag_name(name)} {new:g} "
                            "would shorten it (a run is extended only)")
        config[name], changed = new, True
        payload[history] = [*payload.get(history, []), old]
    if changed:
        atomic_write_text(json.dumps(payload, indent=2), path)


def check_run_data(run_dir: Path, config: TrainConfig, facts: dict,
                   data: HeteroData) -> None:
    """Fails when the dataset no longer matches what the run was trained on
    (entity or relation counts, or the feature files)."""
    now = run_facts(config, data)
    if (now["num_entities"], now["num_relations"]) != (facts["num_entities"],
                                                       facts["num_relations"]):
        raise DHNSError(f"{run_dir}: the dataset {config.dataset!r} no longer "
                        "matches the run (entity or relation count changed)")
    used = facts.get("feature_sources", {})
    if used != now["feature_sources"]:
        raise DHNSError(f"{run_dir}: the run was trained with features "
                        f"{used or 'none'} but the dataset now has "
                        f"{now['feature_sources'] or 'none'}; restore those "
                        "feature files to use this run")
