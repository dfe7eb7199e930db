"""``dhns train`` and ``dhns eval``."""

from __future__ import annotations

import inspect
import json
import time
from pathlib import Path
from typing import Optional

import typer

from dhns_geo.cli.app import PanelledCommand, app
from dhns_geo.cli.options import comma_list, config_from
from dhns_geo.cli.output import metrics_table
from dhns_geo.config import TrainConfig, flag_name, options, read_config_file
from dhns_geo.distributed import is_main_process
from dhns_geo.errors import OptionError
from dhns_geo.presets import PRESETS
from dhns_geo.run_folder import run_facts
from dhns_geo.runs import load_run, run_training
from dhns_geo.validation import check, choice, device_rule, integer, optional

def _shown(value: object) -> str:
    if isinstance(value, list):
        return ",".join(map(str, value))
    if isinstance(value, bool):
        return "on" if value else "off"
    return str(value)


def config_parameters() -> list[inspect.Parameter]:
    """One ``--name`` option of ``dhns train`` per declared config option
    (:func:`dhns_geo.config.options`), its help ending with its default."""
    defaults, params = TrainConfig.defaults(), []
    for name, opt in options().items():
        flag = flag_name(name)
        default = defaults[name]
        help_ = (opt.help.rstrip(".") + f" (default {_shown(default)})."
                 if opt.show_default else opt.help)
        if isinstance(default, bool):
            names, kind = [f"{flag}/--no-{flag[2:]}"], bool
        else:
            names = [flag] + ([opt.short] if opt.short else [])
            kind = (str if opt.items or default is None
                    else type(default))
        params.append(inspect.Parameter(
            name, inspect.Parameter.KEYWORD_ONLY, annotation=Optional[kind],
            default=typer.Option(None, *names, help=help_, rich_help_panel=opt.panel)))
    return params


#: The options of ``dhns train`` that are not config options.
COMMAND_PARAMETERS = [
    inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, annotation=kind,
                      default=default) for name, kind, default in (
        ("preset", Optional[str], typer.Option(None, "--preset", help="Start from a named set of options (`dhns presets` lists each with its source and the command that reproduces its row); --config and flags override it.", rich_help_panel="Run")),
        ("config", Optional[Path], typer.Option(None, "--config", help="YAML or JSON file of options; flags override it.", rich_help_panel="Run")),
        ("out", Optional[Path], typer.Option(None, "--out", help="Run folder (default runs/<dataset>-<scorer>-<sampler>-<time>).", rich_help_panel="Run")),
        ("resume", Optional[Path], typer.Option(None, "--resume", help="Continue the interrupted run in this folder (with --epochs N or --time-limit S: a finished run trains on to N epochs or S seconds of training in all, 0: no limit).", rich_help_panel="Run")),
        ("progress", Optional[bool], typer.Option(None, "--progress/--no-progress", help="Progress bar (default: on a terminal).", rich_help_panel="Run")),
        ("tensorboard", Optional[Path], typer.Option(None, "--tensorboard", help="Also log loss, throughput, valid MRR and DHNS generator numbers to this TensorBoard folder.", rich_help_panel="Run")),
    )]


def with_signature(params: list[inspect.Parameter]):
    """Gives a ``**kwargs`` command the typed parameters ``params`` (what
    typer reads to make its options)."""
    def decorate(func):
        func.__signature__ = inspect.Signature(params)
        func.__annotations__ = {p.name: p.annotation for p in params}
        return func
    return decorate


@app.command(cls=PanelledCommand)
@with_signature(config_parameters() + COMMAND_PARAMETERS)
def train(**given) -> None:
    """Train a KGC model; writes config.json, model.pt, last.pt,
    metrics.json and history.csv to the run folder."""
    flags = {k: v for k, v in given.items()
             if k in TrainConfig.__dataclass_fields__ and v is not None}
    preset, config, out, resume, progress, tensorboard = (
        given[p.name] for p in COMMAND_PARAMETERS)

    def tracking() -> list:                  # made once the options are checked
        if tensorboard is None or not is_main_process():
            return []
        from dhns_geo.tracking import TensorBoardLogger
        return [TensorBoardLogger(tensorboard)]

    if resume is not None:
        budget = {name: flags.pop(name, None) for name in ("epochs", "time_limit")}
        given = {**flags, "preset": preset, "config": config, "out": out}
        for name, value in given.items():
            if value is not None:
                raise OptionError(name, value, "left out with --resume (a "
                                  "resumed run keeps the options of its "
                                  "config.json; --epochs and --time-limit extend it)")
        for name, value in budget.items():          # each option's own rule
            check(flag_name(name), value, optional(options()[name].rule))
        metrics = run_training(TrainConfig(), resume, resume=True, log=typer.echo,
                               progress=progress, callbacks=tracking(), **budget)
        run_dir = resume
    else:
        check("--preset", preset, optional(choice(*PRESETS)))
        values = {**(PRESETS[preset].values if preset else {}),
                  **(read_config_file(config) if config is not None else {})}
        for name, opt in options().items():
            if opt.items and name in flags:
                flags[name] = comma_list(flags[name], opt.items, flag_name(name))
        cfg = config_from(values, flags,
                          str(config) if config else f"--preset {preset}")
        run_dir = out or Path("runs") / (
            f"{Path(cfg.dataset).name}-{cfg.scorer}-{cfg.sampler}-"
            f"{time.strftime('%Y%m%d-%H%M%S')}")
        metrics = run_training(cfg, run_dir, log=typer.echo, progress=progress,
                               callbacks=tracking())
    if not is_main_process():                 # rank 0 reports for torchrun jobs
        return
    typer.echo(f"\ntest metrics (best epoch {metrics['best_epoch']}):")
    typer.echo(metrics_table(metrics["test"]))
    typer.echo(f"\nrun folder: {run_dir}")


@app.command("eval")
def evaluate(
    run_dir: Path = typer.Argument(..., help="A run folder written by dhns train."),
    split: str = typer.Option("test", "--split", help="test or valid."),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", help="Queries scored at once."),
    device: Optional[str] = typer.Option(None, "--device", help="auto, cpu or cuda."),
    as_json: bool = typer.Option(False, "--json", help="Print the metrics as JSON."),
) -> None:
    """Rebuild a run's best model and evaluate it (filtered ranking)."""
    from dhns_geo.data import build_filter_index, split_triples
    from dhns_geo.data.features import describe_sources
    from dhns_geo.evaluation import evaluate_link_prediction

    check("--split", split, choice("test", "valid"))
    check("--batch-size", batch_size, optional(integer(1)))
    check("--device", device, optional(device_rule))
    config, data, model, _ = load_run(run_dir, device)
    metrics = evaluate_link_prediction(
        model.score_all_fn(), split_triples(data, split),
        build_filter_index(data), batch_size or config.eval_batch_size,
        model.device)
    if as_json:
        typer.echo(json.dumps(metrics, indent=2))
        return
    typer.echo(f"run: {run_dir}  dataset: {config.dataset}  scorer: "
               f"{config.scorer}  sampler: {config.sampler}")
    # load_run has checked that these are the features the run recorded.
    typer.echo(describe_sources(run_facts(config, data)["feature_sources"]))
    typer.echo(f"{split} ({metrics['num_triples']} triples):")
    typer.echo(metrics_table(metrics))
