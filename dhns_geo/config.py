"""Training configuration and the factories that build a run from it.

A run folder's ``config.json`` holds a :class:`TrainConfig` and is enough to
rebuild the model (:func:`build_model`), its sampler and its loss.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch_geometric.data import HeteroData

from dhns_geo.data import (EDGE_TYPE, FilterIndex, modality_features,
                           num_entities, num_relations, split_triples)
from dhns_geo.errors import DHNSError, OptionError
from dhns_geo.data import add_reciprocals
from dhns_geo.losses import LOSSES, REGULARIZERS, KGELoss
from dhns_geo.nn import KGCModel, RGCNEncoder, make_scorer
from dhns_geo.nn.scorers import SCORERS
from dhns_geo.sampling import (BernoulliSampler, CorruptionSampler,
                               NegativeSampler, UniformSampler)
from dhns_geo.validation import (Rule, check, choice, device_rule, flag, integer,
                                 number, number_list, optional, text)

SAMPLERS = ("uniform", "bernoulli", "dhns")
TRAININGS = ("negatives", "1vsall")
OPTIMIZERS = ("adam", "adagrad")
ENCODERS = ("none", "rgcn")
GENERATOR_GRADS = ("detached", "model")


@dataclass
class TrainConfig:
    """Everything that defines a training run."""

    # data
    dataset: str = "toy"
    root: str | None = None
    features: str = "auto"            # auto: the dataset's; none: structure only
    visual: str | None = None         # a user's [N, d] visual feature file
    textual: str | None = None        # a user's [N, d] textual feature file
    trust_features: bool = False      # accept paper files with another hash
    # model
    scorer: str = "rotate"
    p_norm: float = 1.0               # TransE norm
    rotate_p: float = 2.0             # RotatE norm over moduli (1: the authors' code)
    dim: int = 256
    encoder: str = "none"             # none | rgcn
    rgcn_layers: int = 1
    rgcn_bases: int = 4
    reciprocal: bool = False          # a relation r + R answers (?, r, t)
    # training regime, negatives and loss
    training: str = "negatives"       # negatives (sampled) | 1vsall
    label_smoothing: float = 0.0      # of the 1-vs-all cross-entropy
    sampler: str = "uniform"          # uniform | bernoulli | dhns
    num_negatives: int = 1024
    filter_negatives: bool = False
    shared_negatives: bool = True     # K negatives drawn once per batch
    loss: str = "self-adversarial"    # margin | softplus | self-adversarial
    adversarial_temperature: float = 1.0
    margin: float = 6.0
    positive_weight: float = 1.0      # of the positives' term (logistic losses)
    regularizer: str = "none"         # none | l2 | l3 | n3
    reg_weight: float = 0.0
    # optimisation
    optimizer: str = "adam"           # adam | adagrad
    epochs: int = 40
    batch_size: int = 1024
    lr: float = 0.02
    lr_half_life: int = 0             # steps; 0: constant learning rate
    lr_drop_at: int = 0               # steps; from then on lr / 10 (0: never)
    lr_plateau_factor: float = 0.5    # lr x this after an evaluation without gain; 1: never
    lr_plateau_patience: int = 1      # ... after every this many in a row
    device: str = "auto"
    shard_entities: bool = False      # entity rows sharded over torchrun ranks (TorchRec)
    seed: int = 0
    deterministic: bool = True        # torch deterministic algorithms
    eval_every: int = 5
    select_on: str = "valid"          # valid | valid-unseen (not in train)
    patience: int = 3
    eval_batch_size: int = 256
    # DHNS (sampler "dhns")
    dhns_mu: float = 0.01
    dhns_steps: int = 50
    dhns_levels: list[int] | None = None     # default: 1, T/10, T/8, T/4, T/2
    dhns_level_weights: list[float] = field(
        default_factory=lambda: [0.0, 0.5, 1.0, 1.0, 0.5])
    dhns_margin_factors: list[float] = field(
        default_factory=lambda: [0.1, 0.3, 0.5, 0.7, 0.9])
    dhns_sampling: str = "strided"    # strided (DDIM) | full (DDPM)
    dhns_generator_steps: int = 1
    dhns_lr: float = 1e-3
    dhns_normalize: bool = False      # diffusion on unit-RMS embeddings
    dhns_generator_grad: str = "detached"   # detached | model (the authors')
    dhns_authors_sampling: bool = False      # heads stepped from the tail chain
    dhns_share: float = 1.0           # share of each batch the generator serves
    dhns_guard: bool = False          # drop generated negatives scored >= positive
    dhns_width: float = 4.0           # denoiser hidden width / dim

    def __post_init__(self) -> None:
        validate_config(self)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def defaults(cls) -> dict[str, Any]:
        """The default value of every option (without validating)."""
        return {f.name: f.default if f.default is not dataclasses.MISSING
                else f.default_factory() for f in dataclasses.fields(cls)}

    @classmethod
    def from_dict(cls, values: dict[str, Any],
                  source: str | None = None) -> "TrainConfig":
        """A config from a mapping; errors name ``source`` (a file) if given."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise DHNSError(f"{source or 'config'}: unknown option(s) "
                            f"{', '.join(unknown)}")
        try:
            return cls(**values)
        except OptionError as exc:
            raise (exc.within(source) if source else exc) from None


# -- validation ---------------------------------------------------------------
def fraction_rule(value: Any) -> str | None:
    ok = number(0, above=True)(value) is None and value <= 1
    return None if ok else "a number above 0 and at most 1"


def fraction_or_zero(value: Any) -> str | None:
    ok = number(0)(value) is None and value < 1
    return None if ok else "a number from 0 to below 1"


RULES: dict[str, Rule] = {
    "dataset": text, "root": optional(text), "features": choice("auto", "none"),
    "visual": optional(text), "textual": optional(text), "trust_features": flag,
    "scorer": choice(*SCORERS), "p_norm": number(0, above=True),
    "rotate_p": number(0, above=True), "reciprocal": flag,
    "training": choice(*TRAININGS), "label_smoothing": fraction_or_zero,
    "dim": integer(1), "encoder": choice(*ENCODERS),
    "rgcn_layers": integer(1), "rgcn_bases": integer(1),
    "sampler": choice(*SAMPLERS), "num_negatives": integer(1),
    "filter_negatives": flag, "shared_negatives": flag, "loss": choice(*LOSSES),
    "adversarial_temperature": number(0, above=True), "margin": number(0),
    "positive_weight": number(0, above=True),
    "regularizer": choice(*REGULARIZERS), "reg_weight": number(0),
    "optimizer": choice(*OPTIMIZERS),
    "epochs": integer(1), "batch_size": integer(1),
    "lr": number(0, above=True), "lr_half_life": integer(0),
    "lr_drop_at": integer(0),
    "lr_plateau_factor": fraction_rule, "lr_plateau_patience": integer(1),
    "device": device_rule, "shard_entities": flag,
    "seed": integer(0, 2 ** 63 - 1), "deterministic": flag,
    "eval_every": integer(1), "patience": integer(1),
    "select_on": choice("valid", "valid-unseen"),
    "eval_batch_size": integer(1),
    "dhns_mu": number(0, above=True), "dhns_steps": integer(1),
    "dhns_levels": optional(number_list(integer(1), "diffusion steps "
                                         "(integers of at least 1)")),
    "dhns_level_weights": number_list(number(0), "finite numbers of at least 0"),
    "dhns_margin_factors": number_list(number(), "finite numbers"),
    "dhns_sampling": choice("strided", "full"),
    "dhns_generator_steps": integer(1), "dhns_lr": number(0, above=True),
    "dhns_normalize": flag, "dhns_generator_grad": choice(*GENERATOR_GRADS),
    "dhns_authors_sampling": flag, "dhns_share": fraction_rule,
    "dhns_guard": flag, "dhns_width": number(0, above=True),
}

#: Options that only mean something with another option's value.
REQUIRES = {"p_norm": ("scorer", "transe"), "rotate_p": ("scorer", "rotate"),
            "rgcn_layers": ("encoder", "rgcn"), "rgcn_bases": ("encoder", "rgcn"),
            "label_smoothing": ("training", "1vsall")}

#: Options of sampled negatives, unused by 1-vs-all training.
SAMPLED_ONLY = ("sampler", "num_negatives", "filter_negatives", "loss",
                "adversarial_temperature", "margin", "positive_weight")


def validate_config(config: "TrainConfig") -> None:
    """Checks every value of ``config`` and their combinations.

    Raises:
        OptionError: naming the first bad option and its allowed values.
    """
    for name, rule in RULES.items():
        check(name, getattr(config, name), rule)
    defaults = TrainConfig.defaults()
    for name, (other, needed) in REQUIRES.items():
        if getattr(config, name) != defaults[name] and getattr(config, other) != needed:
            raise OptionError(name, getattr(config, name),
                              f"used only with {other} {needed}")
    if config.sampler != "dhns":
        for name in RULES:
            if name.startswith("dhns_") and getattr(config, name) != defaults[name]:
                raise OptionError(name, getattr(config, name),
                                  "used only with sampler dhns")
    if config.reg_weight > 0 and config.regularizer == "none":
        raise OptionError("reg_weight", config.reg_weight,
                          "used only with regularizer l2, l3 or n3")
    if config.regularizer == "n3" and config.scorer == "rotate":
        raise OptionError("regularizer", "n3", "used with scorers transe, "
                          "distmult or complex (RotatE's relations are phases)")
    if config.training == "1vsall":
        for name in SAMPLED_ONLY:
            if getattr(config, name) != defaults[name]:
                raise OptionError(name, getattr(config, name),
                                  "used only with training negatives (1vsall "
                                  "scores every entity)")
    if config.reciprocal and config.sampler != "uniform":
        raise OptionError("sampler", config.sampler, "uniform with reciprocal "
                          "(each negative then corrupts the tail of a triple "
                          "or of its reciprocal)")
    if config.shard_entities:
        for name, needed in (("encoder", "none"), ("training", "negatives"),
                             ("dhns_generator_grad", "detached")):
            if getattr(config, name) != needed:
                raise OptionError(name, getattr(config, name), f"{needed} with "
                                  "shard_entities (it needs every entity's row "
                                  "on each rank)")
    if config.positive_weight != 1.0 and config.loss == "margin":
        raise OptionError("positive_weight", config.positive_weight,
                          "used only with loss softplus or self-adversarial")
    if make_scorer(config.scorer).complex and config.dim % 2:
        raise OptionError("dim", config.dim, f"even for scorer {config.scorer}")
    levels = config.dhns_levels
    if levels is not None and max(levels) > config.dhns_steps:
        raise OptionError("dhns_levels", levels,
                          f"steps from 1 to dhns_steps ({config.dhns_steps})")
    count = len(levels) if levels is not None else 5
    for name in ("dhns_level_weights", "dhns_margin_factors"):
        if len(getattr(config, name)) != count:
            raise OptionError(name, getattr(config, name),
                              f"{count} values, one per level of dhns_levels")
    if not any(w > 0 for w in config.dhns_level_weights):
        raise OptionError("dhns_level_weights", config.dhns_level_weights,
                          "at least one positive weight")


def read_config_file(path: str | Path) -> dict[str, Any]:
    """Reads a YAML or JSON file of :class:`TrainConfig` values."""
    path = Path(path)
    if not path.is_file():
        raise OptionError("config", str(path), "an existing YAML or JSON file")
    text = path.read_text()
    try:
        if path.suffix == ".json":
            values = json.loads(text)
        else:
            import yaml
            values = yaml.safe_load(text)
    except Exception as exc:  # noqa: BLE001 - parser errors vary by format
        raise DHNSError(f"{path}: cannot parse config ({exc})") from None
    if not isinstance(values, dict):
        raise DHNSError(f"{path}: expected a mapping of options")
    return {k.replace("-", "_"): v for k, v in values.items()}


def resolve_device(name: str) -> torch.device:
    """``auto`` is CUDA when available, else the CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise DHNSError("device cuda requested but CUDA is not available")
    return device


def build_model(config: TrainConfig, data: HeteroData, dist: Any = None,
                device: torch.device | None = None) -> KGCModel:
    """The KGC model of ``config`` for ``data`` (initialised from the seed).

    With ``shard_entities`` and the job's ``dist`` context, its structural
    table is a :class:`~dhns_geo.sharding.ShardedEntities` on ``device``
    (initialised as one process would); without ``dist`` the whole table
    is built (one machine reading a sharded run).
    """
    torch.manual_seed(config.seed)
    n, r = num_entities(data), num_relations(data)
    structural = None
    if config.shard_entities and dist is not None:
        from dhns_geo.sharding import ShardedEntities
        structural = ShardedEntities(n, config.dim, config.optimizer, config.lr,
                                     dist, device or torch.device("cpu"))
    features = modality_features(data) if config.features == "auto" else {}
    encoder = None
    if config.encoder == "rgcn":
        encoder = RGCNEncoder(config.dim, r, config.rgcn_layers,
                              config.rgcn_bases)
    store = data[EDGE_TYPE]
    try:
        return KGCModel(n, r, config.dim, make_scorer(config.scorer,
                                                      config.p_norm, config.rotate_p),
                        features, encoder, store.edge_index, store.edge_type,
                        reciprocal=config.reciprocal, structural=structural)
    except ValueError as exc:
        raise DHNSError(str(exc)) from None


def build_sampler(config: TrainConfig, data: HeteroData) -> NegativeSampler:
    """The negative sampler of ``config``. With ``filter_negatives`` the
    known true triples are the train triples: filtering by valid or test
    triples would tell training which corruptions are true there."""
    n, r = num_entities(data), num_relations(data)
    train = training_triples(config, data)
    relations = 2 * r if config.reciprocal else r
    index = FilterIndex(train, n, relations) if config.filter_negatives else None
    if config.reciprocal:                      # tails of triples and reciprocals
        return CorruptionSampler(n, config.num_negatives, torch.zeros(relations),
                                 index, shared=config.shared_negatives)
    if config.sampler == "bernoulli":
        return BernoulliSampler(n, train, r, config.num_negatives, index,
                                shared=config.shared_negatives)
    base = UniformSampler(n, r, config.num_negatives, index,
                          shared=config.shared_negatives)
    if config.sampler == "dhns":
        from dhns_geo.diffusion import DHNSSampler
        modalities = 1 + (len(modality_features(data))
                          if config.features == "auto" else 0)
        return DHNSSampler.from_config(config, base, modalities)
    return base


def training_triples(config: TrainConfig, data: HeteroData) -> torch.Tensor:
    """The ``[E, 3]`` triples an epoch goes through: the train split, and
    with ``reciprocal`` their reciprocals too (``[2E, 3]``)."""
    train = split_triples(data, "train")
    return add_reciprocals(train, num_relations(data)) if config.reciprocal else train


def build_optimizer(config: TrainConfig, params) -> torch.optim.Optimizer:
    """Adam (fused) or Adagrad (fused on the CPU, its only fused kernel;
    a tenth of the unfused step's time on a 1-vs-all step's dense
    gradients) over ``params`` at ``config.lr``."""
    params = list(params)
    if config.optimizer == "adagrad":
        on_cpu = all(p.device.type == "cpu" for p in params)
        return torch.optim.Adagrad(params, lr=config.lr, fused=on_cpu or None)
    return torch.optim.Adam(params, lr=config.lr, fused=True)


def build_loss(config: TrainConfig) -> KGELoss:
    return KGELoss(config.loss, config.margin, config.adversarial_temperature,
                   config.positive_weight)
