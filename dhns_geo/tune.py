"""Hyper-parameter search with Optuna (the optional ``[tune]`` extra).

Each trial is an ordinary run folder (``STUDY/trial-N``) trained from a base
:class:`~dhns_geo.config.TrainConfig` plus the trial's values. The objective
is the valid MRR of the best epoch (the trainer's model-selection MRR); the
intermediate valid MRRs feed a median pruner. Test is never evaluated. The
study lives in ``STUDY/study.db`` (SQLite), so an interrupted search resumes
where it stopped; ``best.yaml`` is a file ``dhns train --config`` accepts and
``trials.csv`` lists every trial.

A search space is a mapping of option names to distributions::

    lr: {type: float, low: 0.001, high: 0.1, log: true}
    num_negatives: {type: int, low: 16, high: 128, log: true}
    dim: {type: categorical, choices: [64, 128, 256]}
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any, Callable

from dhns_geo.config import TrainConfig
from dhns_geo.errors import DHNSError, OptionError
from dhns_geo.run_folder import atomic_write_text
from dhns_geo.runs import run_training

KINDS = ("float", "int", "categorical")


def default_space(config: TrainConfig) -> dict[str, dict]:
    """A sensible space for ``config``'s scorer, loss and sampler (or, for
    1-vs-all training, its regulariser and label smoothing)."""
    lr = {"type": "float", "low": 1e-3, "high": 1e-1, "log": True}
    dim = {"type": "categorical", "choices": [64, 128, 256]}
    if config.training == "1vsall":         # no negatives, margin or temperature
        space = {"lr": lr, "dim": dim,
                 "label_smoothing": {"type": "float", "low": 0.0, "high": 0.3}}
        if config.regularizer != "none":
            space["reg_weight"] = {"type": "float", "low": 1e-3, "high": 1e-1,
                                   "log": True}
        return space
    space: dict[str, dict] = {
        "lr": lr,
        "dim": dim,
        # A pool shared by the batch wants more negatives than a positive's own.
        "num_negatives": {"type": "categorical",
                          "choices": ([256, 512, 1024, 2048] if config.shared_negatives
                                      else [16, 32, 64, 128])},
    }
    if config.scorer in ("rotate", "transe"):
        space["margin"] = {"type": "float", "low": 2.0, "high": 12.0}
    if config.loss == "self-adversarial":
        space["adversarial_temperature"] = {"type": "float", "low": 0.25,
                                            "high": 2.0, "log": True}
    if config.sampler == "dhns":
        space |= {"dhns_mu": {"type": "float", "low": 1e-3, "high": 1.0, "log": True},
                  "dhns_lr": {"type": "float", "low": 1e-4, "high": 1e-2, "log": True},
                  "dhns_normalize": {"type": "categorical", "choices": [False, True]}}
    return space


def check_space(space: Any, source: str) -> dict[str, dict]:
    """Validates a space: known options, known kinds, bounds in order."""
    if not isinstance(space, dict) or not space:
        raise DHNSError(f"{source}: a search space is a non-empty mapping of "
                        "option names to distributions")
    fields = TrainConfig.__dataclass_fields__
    for name, spec in space.items():
        where = f"{source}: {name}"
        if name not in fields:
            raise DHNSError(f"{where}: not a dhns train option")
        if not isinstance(spec, dict) or spec.get("type") not in KINDS:
            raise DHNSError(f"{where}: needs type: {', '.join(KINDS)}")
        if spec["type"] == "categorical":
            if not isinstance(spec.get("choices"), list) or not spec["choices"]:
                raise DHNSError(f"{where}: categorical needs a list of choices")
        elif not (isinstance(spec.get("low"), (int, float))
                  and isinstance(spec.get("high"), (int, float))
                  and spec["low"] < spec["high"]):
            raise DHNSError(f"{where}: {spec['type']} needs numbers low < high")
    return space


def suggest(trial: Any, space: dict[str, dict]) -> dict[str, Any]:
    """The trial's values of every option of ``space``."""
    values = {}
    for name, spec in space.items():
        if spec["type"] == "categorical":
            values[name] = trial.suggest_categorical(name, spec["choices"])
        else:
            draw = trial.suggest_float if spec["type"] == "float" else trial.suggest_int
            values[name] = draw(name, spec["low"], spec["high"],
                                log=bool(spec.get("log", False)))
    return values


def _optuna():
    try:
        import optuna
    except ImportError:
        raise DHNSError("dhns tune needs Optuna: pip install 'dhns-geo[tune]'") from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna


def tune(base: TrainConfig, space: dict[str, dict], study_dir: Path,
         trials: int, timeout: float | None = None,
         log: Callable[[str], None] = print) -> dict[str, Any]:
    """Runs (or resumes) a study until it holds ``trials`` finished trials.

    Returns:
        ``{"best_value", "best_params", "best_config", "trials"}``.
    """
    optuna = _optuna()
    study_dir = Path(study_dir)
    study_dir.mkdir(parents=True, exist_ok=True)
    for values in _corners(space):                    # bad combinations, now
        try:
            TrainConfig.from_dict({**base.to_dict(), **values})
        except OptionError as exc:
            raise DHNSError(f"search space: {exc}") from None
    study = _study(optuna, study_dir, base.seed)
    done = optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED
    finished = len(study.get_trials(states=done))
    if finished:
        log(f"resuming the study in {study_dir}: {finished} of {trials} trials done")
    if trials > finished:
        study.optimize(_trial_objective(optuna, base, space, study_dir, log),
                       n_trials=trials - finished, timeout=timeout, catch=())
    return _write_results(study, base, study_dir, optuna)


def _study(optuna: Any, study_dir: Path, seed: int) -> Any:
    """The study stored in ``study_dir`` (made or reopened)."""
    return optuna.create_study(
        study_name="dhns", storage=f"sqlite:///{study_dir / 'study.db'}",
        load_if_exists=True, direction="maximize",
        sampler=optuna.samplers.TPESampler(seed=seed),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=1))


def _trial_objective(optuna: Any, base: TrainConfig, space: dict[str, dict],
                     study_dir: Path, log: Callable[[str], None]
                     ) -> Callable[[Any], float]:
    """Optuna's objective: train a trial's config, pruned on valid MRR."""
    def objective(trial) -> float:
        values = suggest(trial, space)
        config = TrainConfig.from_dict({**base.to_dict(), **values})
        run_dir = study_dir / f"trial-{trial.number}"
        trial.set_user_attr("run", str(run_dir))

        def report(trainer, record) -> None:
            if record["valid_mrr"] != "":
                trial.report(float(record["valid_mrr"]), record["epoch"])
                if trial.should_prune():
                    log(f"trial {trial.number}: pruned at epoch {record['epoch']} "
                        f"(valid MRR {float(record['valid_mrr']):.4f})")
                    raise optuna.TrialPruned()

        metrics = run_training(config, run_dir, progress=False,
                               log=lambda line: None, callbacks=[report], test=False)
        best = metrics.get("selection", {}).get("best_mrr", metrics["valid"]["mrr"])
        log(f"trial {trial.number}: valid MRR {best:.4f} {values}")
        return best

    return objective


def _corners(space: dict[str, dict]) -> list[dict[str, Any]]:
    """The lowest and highest value of every option (to check up front)."""
    def end(spec: dict, i: int) -> Any:
        if spec["type"] == "categorical":
            return spec["choices"][i]
        value = spec["low" if i == 0 else "high"]
        return int(value) if spec["type"] == "int" else float(value)
    return [{n: end(s, i) for n, s in space.items()} for i in (0, -1)]


def _write_results(study: Any, base: TrainConfig, study_dir: Path,
                   optuna: Any) -> dict[str, Any]:
    trials = study.get_trials()
    names = sorted({k for t in trials for k in t.params})
    with open(study_dir / "trials.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["number", "state", "valid_mrr", *names, "run"])
        for t in trials:
            writer.writerow([t.number, t.state.name, "" if t.value is None else t.value,
                             *(t.params.get(n, "") for n in names),
                             t.user_attrs.get("run", "")])
    complete = study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
    if not complete:
        raise DHNSError(f"{study_dir}: no trial finished; see trials.csv")
    best = study.best_trial
    config = TrainConfig.from_dict({**base.to_dict(), **best.params})
    import yaml
    text = (f"# best of {len(complete)} finished trials in {study_dir} "
            f"(valid MRR {best.value:.4f}, trial {best.number})\n"
            + yaml.safe_dump(config.to_dict(), sort_keys=False))
    atomic_write_text(text, study_dir / "best.yaml")
    return {"best_value": best.value, "best_params": best.params,
            "best_config": config, "trials": len(trials)}
