"""``dhns train`` and ``dhns eval``."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Optional

import typer

from dhns_geo.cli.main import app
from dhns_geo.cli.options import comma_list, config_from
from dhns_geo.cli.output import metrics_table
from dhns_geo.config import TrainConfig, read_config_file
from dhns_geo.distributed import is_main_process
from dhns_geo.errors import OptionError
from dhns_geo.presets import PRESETS
from dhns_geo.run_folder import run_facts
from dhns_geo.training import load_run, run_training
from dhns_geo.validation import check, choice, device_rule, integer, optional

DEFAULTS = TrainConfig.defaults()

#: Options given as comma-separated text, and the type of their values.
LIST_OPTIONS = {"dhns_levels": int, "dhns_level_weights": float,
                "dhns_margin_factors": float}


def _opt(default_help: str, *names: str):
    return typer.Option(None, *names, help=default_help)


@app.command()
def train(
    dataset: Optional[str] = _opt("DB15K, MKG-W, MKG-Y, FB15k-237, toy, or a KG folder (default toy).", "--dataset"),
    root: Optional[str] = _opt("Dataset root (default $DHNS_DATA or ~/.cache/dhns-geo).", "--root"),
    features: Optional[str] = _opt("auto (the dataset's modality features) or none.", "--features"),
    visual: Optional[str] = _opt("Visual feature file [N, d] (.pth, .pt or .npy); replaces the dataset's.", "--visual"),
    textual: Optional[str] = _opt("Textual feature file [N, d] (.pth, .pt or .npy); replaces the dataset's.", "--textual"),
    trust_features: Optional[bool] = typer.Option(None, "--trust-features", help="Use paper feature files whose sha256 differs from the published one."),
    scorer: Optional[str] = _opt("transe, distmult, complex or rotate (default rotate).", "--scorer"),
    p_norm: Optional[float] = _opt("Norm of TransE (default 1).", "--p-norm"),
    rotate_p: Optional[float] = _opt("Norm of RotatE over the complex differences' moduli: 2 (default, Euclidean) or 1 (their sum, as in the RotatE authors' code).", "--rotate-p"),
    reciprocal: Optional[bool] = typer.Option(None, "--reciprocal/--no-reciprocal", help="Learn a reciprocal relation r' per relation: (?, r, t) is answered as (t, r', ?); epochs also go through the reciprocal triples (default off)."),
    training: Optional[str] = _opt("negatives (sampled negatives, default) or 1vsall (cross-entropy of each query over all entities).", "--training"),
    label_smoothing: Optional[float] = _opt("Label smoothing of the 1vsall cross-entropy (default 0).", "--label-smoothing"),
    dim: Optional[int] = _opt(f"Entity embedding size in real numbers (default {DEFAULTS['dim']}).", "--dim"),
    encoder: Optional[str] = _opt("none or rgcn (default none).", "--encoder"),
    sampler: Optional[str] = _opt("uniform, bernoulli or dhns (default uniform).", "--sampler"),
    num_negatives: Optional[int] = _opt(f"Negatives per positive: the batch's shared pool, or each positive's own with --no-shared-negatives (default {DEFAULTS['num_negatives']}).", "--num-negatives", "-k"),
    filter_negatives: Optional[bool] = typer.Option(None, "--filter-negatives/--no-filter-negatives", help="Redraw negatives that are known true triples."),
    shared_negatives: Optional[bool] = typer.Option(None, "--shared-negatives/--no-shared-negatives", help="Draw the K negatives once per batch and share them across its positives (default on; a step then scores one [B, K] matrix and fuses only the entities it touches). --no-shared-negatives draws K per positive."),
    loss: Optional[str] = _opt("margin, softplus or self-adversarial (default).", "--loss"),
    adversarial_temperature: Optional[float] = _opt("Self-adversarial temperature (default 1).", "--adversarial-temperature"),
    margin: Optional[float] = _opt("Loss margin gamma (default 6).", "--margin"),
    positive_weight: Optional[float] = _opt("Weight of the positives' term of the softplus and self-adversarial losses (default 1).", "--positive-weight"),
    regularizer: Optional[str] = _opt("none, l2, l3 or n3 (Lacroix et al. 2018: cubes of complex moduli).", "--regularizer"),
    reg_weight: Optional[float] = _opt("Regularisation weight.", "--reg-weight"),
    epochs: Optional[int] = _opt("Maximum epochs (default 40).", "--epochs"),
    batch_size: Optional[int] = _opt(f"Positives per batch (default {DEFAULTS['batch_size']}).", "--batch-size"),
    optimizer: Optional[str] = _opt("adam (default) or adagrad.", "--optimizer"),
    lr: Optional[float] = _opt(f"Learning rate (default {DEFAULTS['lr']}).", "--lr"),
    lr_half_life: Optional[int] = _opt("Halve the learning rate every this many steps, smoothly (default 0: constant).", "--lr-half-life"),
    lr_drop_at: Optional[int] = _opt("Divide the learning rate by 10 from this step on, as the RotatE authors' code does at half its steps (default 0: never).", "--lr-drop-at"),
    lr_plateau_factor: Optional[float] = _opt("Multiply the learning rate by this after each evaluation that does not improve on the best (default 0.5; 1: never).", "--lr-plateau-factor"),
    lr_plateau_patience: Optional[int] = _opt("Apply --lr-plateau-factor only after this many evaluations in a row without gain, and again after each further this many (default 1: after every one). Steadies the rate when a small or noisy selection split is evaluated often.", "--lr-plateau-patience"),
    device: Optional[str] = _opt("auto, cpu or cuda (default auto).", "--device"),
    shard_entities: Optional[bool] = typer.Option(None, "--shard-entities/--no-shard-entities", help="Under torchrun: shard the structural entity table row-wise over the ranks (TorchRec; the [distributed] extra), each rank keeping about N/W rows and their optimizer state; needs --optimizer adagrad on CPUs (default off)."),
    seed: Optional[int] = _opt("Random seed (default 0).", "--seed"),
    eval_every: Optional[int] = _opt("Evaluate on valid every N epochs (default 5).", "--eval-every"),
    select_on: Optional[str] = _opt("Triples that choose the best epoch: valid (default) or valid-unseen (valid triples not in train; DB15K's valid split is mostly train triples).", "--select-on"),
    patience: Optional[int] = _opt("Stop after N evaluations without gain (default 3).", "--patience"),
    eval_batch_size: Optional[int] = _opt("Queries ranked at once; bounds evaluation memory to this x entities (default 256).", "--eval-batch-size"),
    dhns_mu: Optional[float] = _opt("Weight of the DHNS loss (default 0.01).", "--dhns-mu"),
    dhns_steps: Optional[int] = _opt("Diffusion steps T (default 50).", "--dhns-steps"),
    dhns_sampling: Optional[str] = _opt("strided (DDIM, default) or full (DDPM).", "--dhns-sampling"),
    dhns_generator_steps: Optional[int] = _opt("Generator steps per batch (default 1).", "--dhns-generator-steps"),
    dhns_normalize: Optional[bool] = typer.Option(None, "--dhns-normalize/--no-dhns-normalize", help="Diffuse embeddings scaled to unit root mean square (default off, as in the authors' code)."),
    dhns_lr: Optional[float] = _opt("Learning rate of the generator's Adam (default 0.001).", "--dhns-lr"),
    dhns_levels: Optional[str] = _opt("Hardness levels as comma-separated diffusion steps (default 1,T/10,T/8,T/4,T/2).", "--dhns-levels"),
    dhns_level_weights: Optional[str] = _opt("Loss weight per level, comma-separated (default 0,0.5,1,1,0.5).", "--dhns-level-weights"),
    dhns_margin_factors: Optional[str] = _opt("NTAT margin factor per level, comma-separated (default 0.1,0.3,0.5,0.7,0.9).", "--dhns-margin-factors"),
    dhns_authors_sampling: Optional[bool] = typer.Option(None, "--dhns-authors-sampling/--no-dhns-authors-sampling", help="The authors' sampler: each head reverse step starts from the tail chain's sample; each corruption is a loss of its own."),
    dhns_guard: Optional[bool] = typer.Option(None, "--dhns-guard/--no-dhns-guard", help="Drop generated negatives the model scores at least as high as their positive (likely false negatives)."),
    dhns_width: Optional[float] = _opt("Hidden width of the DHNS denoiser as a multiple of dim (default 4, as published; lower is faster).", "--dhns-width"),
    dhns_share: Optional[float] = _opt("Share of each batch the DHNS generator trains on and generates for (default 1, the method as published; lower is faster).", "--dhns-share"),
    dhns_generator_grad: Optional[str] = _opt("detached (default): the diffusion loss trains the generator only; model: it also trains the model, as the authors' trainer does.", "--dhns-generator-grad"),
    preset: Optional[str] = typer.Option(None, "--preset", help="Start from a named set of options (authors-distmult: the authors' released train_dhns.py; rotate-fb15k237 and complex-n3-fb15k237: the published RotatE and ComplEx-N3 rows on FB15k-237; complex-n3-mkg-y, complex-n3-mkg-w, complex-n3-db15k: that recipe on the MMKGs at a CPU budget; fast: the defaults, pinned; classic: the 0.1 defaults, 32 negatives per positive, dim 128, batch 512, lr 0.005); --config and flags override it."),
    config: Optional[Path] = typer.Option(None, "--config", help="YAML or JSON file of options; flags override it."),
    out: Optional[Path] = typer.Option(None, "--out", help="Run folder (default runs/<dataset>-<scorer>-<sampler>-<time>)."),
    resume: Optional[Path] = typer.Option(None, "--resume", help="Continue the interrupted run in this folder."),
    progress: Optional[bool] = typer.Option(None, "--progress/--no-progress", help="Progress bar (default: on a terminal)."),
    tensorboard: Optional[Path] = typer.Option(None, "--tensorboard", help="Also log loss, throughput, valid MRR and DHNS generator numbers to this TensorBoard folder."),
) -> None:
    """Train a KGC model; writes config.json, model.pt, last.pt,
    metrics.json and history.csv to the run folder."""
    flags = {k: v for k, v in locals().items()
             if k in TrainConfig.__dataclass_fields__ and v is not None}

    def tracking() -> list:                  # made once the options are checked
        if tensorboard is None or not is_main_process():
            return []
        from dhns_geo.tracking import TensorBoardLogger
        return [TensorBoardLogger(tensorboard)]

    if resume is not None:
        given = {**flags, "preset": preset, "config": config, "out": out}
        for name, value in given.items():
            if value is not None:
                raise OptionError(name, value, "left out with --resume (a "
                                  "resumed run keeps the options of its "
                                  "config.json)")
        metrics = run_training(TrainConfig(), resume, resume=True,
                               log=typer.echo, progress=progress, callbacks=tracking())
        run_dir = resume
    else:
        check("--preset", preset, optional(choice(*PRESETS)))
        values = {**PRESETS.get(preset, {}),
                  **(read_config_file(config) if config is not None else {})}
        for name, kind in LIST_OPTIONS.items():
            if name in flags:
                flags[name] = comma_list(flags[name], kind,
                                         "--" + name.replace("_", "-"))
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
