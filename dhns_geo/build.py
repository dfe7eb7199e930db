"""Factories that build a run's parts from its :class:`TrainConfig`.

A run folder's ``config.json`` is enough to rebuild the model
(:func:`build_model`), its objective (:func:`build_objective`: the sampler
and loss of sampled negatives, or 1-vs-all), the regulariser and the
optimizer.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import torch
from torch import Tensor
from torch_geometric.data import HeteroData

from dhns_geo.config import SHARED_SAMPLERS, TrainConfig, fusion_of
from dhns_geo.data import (EDGE_TYPE, num_entities, num_relations,
                           selected_features)
from dhns_geo.errors import DHNSError
from dhns_geo.losses import KGELoss, regularization
from dhns_geo.nn import KGCModel, RGCNEncoder, make_scorer
from dhns_geo.objectives import NegativesObjective, Objective, OneVsAllObjective
from dhns_geo.onevsall import GeneratedColumns
from dhns_geo.diffusion import DHNSSampler
from dhns_geo.sampling.registry import SAMPLERS, build_sampler


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
    features = selected_features(data, config.features)
    encoder = None
    if config.encoder == "rgcn":
        encoder = RGCNEncoder(config.dim, r, config.rgcn_layers,
                              config.rgcn_bases)
    edges = data[EDGE_TYPE]
    try:
        model = KGCModel(n, r, config.dim, make_scorer(config.scorer, config.p_norm,
                                                       config.rotate_p),
                         features, encoder, edges.edge_index, edges.edge_type,
                         reciprocal=config.reciprocal, structural=structural,
                         fusion=fusion_of(config))
    except ValueError as exc:
        raise DHNSError(str(exc)) from None
    if config.sparse_entities:          # a row-sparse store updates the table
        model.entities.structural.sparse = True
    return model


def build_loss(config: TrainConfig) -> KGELoss:
    """The loss of each group of sampled negatives."""
    return KGELoss(config.loss, config.margin, config.adversarial_temperature,
                   config.positive_weight)


def build_objective(config: TrainConfig, data: HeteroData) -> Objective:
    """What a step of ``config`` minimises: 1-vs-all, or sampled negatives
    (only then are a sampler and a loss built)."""
    if config.training == "1vsall":
        columns = (GeneratedColumns(DHNSSampler.from_run(config, data), config.dhns_margin)
                   if config.sampler == "dhns" else None)
        return OneVsAllObjective(not config.reciprocal, config.label_smoothing,
                                 columns, config.relation_prediction)
    return NegativesObjective(build_sampler(config, data), build_loss(config),
                              lazy_table=config.shared_negatives
                              and config.sampler in SHARED_SAMPLERS)


def build_regularizer(config: TrainConfig, complex: bool
                      ) -> Callable[[Sequence[Tensor]], Tensor | float]:
    """``penalty(factors)``: ``reg_weight`` times the regulariser of a
    batch's ``[head, relation, tail]`` factors (``0`` without one)."""
    if config.regularizer == "none" or config.reg_weight == 0:
        return lambda factors: 0.0
    return lambda factors: config.reg_weight * regularization(
        config.regularizer, factors, complex)


def build_optimizer(config: TrainConfig, params) -> torch.optim.Optimizer:
    """Adam (fused) or Adagrad (fused on the CPU, its only fused kernel;
    a tenth of the unfused step's time on a 1-vs-all step's dense
    gradients) over ``params`` at ``config.lr``."""
    params = list(params)
    if config.optimizer == "adagrad":
        on_cpu = all(p.device.type == "cpu" for p in params)
        return torch.optim.Adagrad(params, lr=config.lr, fused=on_cpu or None)
    return torch.optim.Adam(params, lr=config.lr, fused=True)


def cost_notice(config: TrainConfig, data: HeteroData) -> str | None:
    """One line naming the cost of an option that makes an epoch over 3x
    its cheaper twin's (structure only, uniform negatives), or that 1-vs-all
    pays for modality features, with the cheaper option to use; ``None``
    when there is none."""
    features = selected_features(data, config.features)
    if config.training == "1vsall" and features:
        if fusion_of(config) == "attention":
            return ("notice: 1vsall with --fusion attention fuses all N entities every "
                    "step (about 16x the structure-only epoch on MKG-Y); --fusion gate "
                    "scores through the features (about 1.6x)")
        return ("notice: 1vsall scores every entity through its features too: an "
                "epoch costs about 1.6x the structure-only one on MKG-Y; --features "
                "none trains on structure only")
    entry = SAMPLERS[config.sampler]
    shared = config.shared_negatives and entry.cost_shared is not None
    cost = entry.cost_shared if shared else entry.cost_for(config)
    if config.training == "negatives" and cost > 3 and not entry.cheaper_chosen(config):
        against = ("the shared pool of uniform negatives" if shared
                   else "self-adversarial uniform negatives")
        return (f"notice: --sampler {config.sampler} costs about {cost:g}x the epoch of "
                f"{against} ({entry.measured}); {entry.cheaper}")
    return None
