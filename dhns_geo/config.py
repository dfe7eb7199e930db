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
from dhns_geo.errors import DHNSError
from dhns_geo.losses import KGELoss
from dhns_geo.nn import KGCModel, RGCNEncoder, make_scorer
from dhns_geo.sampling import BernoulliSampler, NegativeSampler, UniformSampler

SAMPLERS = ("uniform", "bernoulli", "dhns")
ENCODERS = ("none", "rgcn")


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
    dim: int = 128
    encoder: str = "none"             # none | rgcn
    rgcn_layers: int = 1
    rgcn_bases: int = 4
    # negatives and loss
    sampler: str = "uniform"          # uniform | bernoulli | dhns
    num_negatives: int = 32
    filter_negatives: bool = False
    loss: str = "self-adversarial"    # margin | softplus | self-adversarial
    adversarial_temperature: float = 1.0
    margin: float = 6.0
    positive_weight: float = 1.0      # of the positives' term (logistic losses)
    regularizer: str = "none"         # none | l2 | l3
    reg_weight: float = 0.0
    # optimisation
    epochs: int = 40
    batch_size: int = 512
    lr: float = 0.005
    device: str = "auto"
    seed: int = 0
    deterministic: bool = True        # torch deterministic algorithms
    eval_every: int = 5
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

    def __post_init__(self) -> None:
        for name, value, choices in (("sampler", self.sampler, SAMPLERS),
                                     ("encoder", self.encoder, ENCODERS),
                                     ("features", self.features, ("auto", "none")),
                                     ("regularizer", self.regularizer,
                                      ("none", "l2", "l3")),
                                     ("dhns_sampling", self.dhns_sampling,
                                      ("strided", "full"))):
            if value not in choices:
                raise DHNSError(f"{name} must be one of {', '.join(choices)}; "
                                f"got {value!r}")
        for name in ("dim", "num_negatives", "epochs", "batch_size",
                     "eval_every", "eval_batch_size", "dhns_steps",
                     "dhns_generator_steps"):
            if getattr(self, name) < 1:
                raise DHNSError(f"{name} must be at least 1")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any], source: str = "config") -> "TrainConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise DHNSError(f"{source}: unknown option(s) {', '.join(unknown)}")
        return cls(**values)


def read_config_file(path: str | Path) -> dict[str, Any]:
    """Reads a YAML or JSON file of :class:`TrainConfig` values."""
    path = Path(path)
    if not path.is_file():
        raise DHNSError(f"{path}: config file not found")
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


def build_model(config: TrainConfig, data: HeteroData) -> KGCModel:
    """The KGC model of ``config`` for ``data`` (initialised from the seed)."""
    torch.manual_seed(config.seed)
    n, r = num_entities(data), num_relations(data)
    features = modality_features(data) if config.features == "auto" else {}
    encoder = None
    if config.encoder == "rgcn":
        encoder = RGCNEncoder(config.dim, r, config.rgcn_layers,
                              config.rgcn_bases)
    store = data[EDGE_TYPE]
    try:
        return KGCModel(n, r, config.dim, make_scorer(config.scorer,
                                                      config.p_norm),
                        features, encoder, store.edge_index, store.edge_type)
    except ValueError as exc:
        raise DHNSError(str(exc)) from None


def build_sampler(config: TrainConfig, data: HeteroData,
                  filter_index: FilterIndex | None) -> NegativeSampler:
    """The negative sampler of ``config``."""
    n, r = num_entities(data), num_relations(data)
    index = filter_index if config.filter_negatives else None
    if config.sampler == "bernoulli":
        return BernoulliSampler(n, split_triples(data, "train"), r,
                                config.num_negatives, index)
    base = UniformSampler(n, r, config.num_negatives, index)
    if config.sampler == "dhns":
        from dhns_geo.diffusion import DHNSSampler
        modalities = 1 + (len(modality_features(data))
                          if config.features == "auto" else 0)
        return DHNSSampler.from_config(config, base, modalities)
    return base


def build_loss(config: TrainConfig) -> KGELoss:
    return KGELoss(config.loss, config.margin, config.adversarial_temperature,
                   config.positive_weight)
