"""Multimodal entity representation: structural embedding plus projected
visual / textual features, fused by attention over available modalities."""

from __future__ import annotations

from typing import Any, Mapping

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def residual_mix(x: Tensor, alpha: Tensor) -> Tensor:
    """``x_0 + sum_m alpha_m x_m`` of ``[..., M, d]`` modality embeddings
    and ``[..., M]`` weights: the structural row at full weight plus the
    weighted modalities (both fusions)."""
    return x[..., 0, :] + (alpha.unsqueeze(-1) * x).sum(dim=-2)


def combine_rows(x: Tensor, logits: Tensor, mask: Tensor | None = None) -> Tensor:
    """The fusion of ``[..., M, d]`` modality rows with their ``[..., M]``
    logits (a fusion's ``row_logits``) and bool mask: the softmax of the
    present modalities' logits weights their rows beside the structural
    row (both fusions)."""
    if mask is not None:
        logits = logits.masked_fill(~mask, float("-inf"))
    return residual_mix(x, torch.softmax(logits, dim=-1))


class ModalityFusion(nn.Module):
    r"""Attention fusion over modality embeddings, with a residual of the
    first (structural) modality.

    .. math::
        \alpha_m = \mathrm{softmax}_{m \in \mathcal{M}(e)}
        \big(w^\top \tanh(W x_m)\big), \qquad
        x = x_0 + \sum_m \alpha_m x_m

    The residual keeps every entity's own learned embedding at full weight:
    without it, shared feature projections dilute the structural embedding
    and RotatE on MKG-Y with textual features stalls (valid MRR 0.012
    against 0.093 structure-only after 10 epochs). Missing modalities are
    masked out of the softmax (never zero-filled into it).

    Args:
        dim: Embedding size ``d``.
    """

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.attention = nn.Sequential(nn.Linear(dim, dim), nn.Tanh(),
                                       nn.Linear(dim, 1, bias=False))

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        """Fuses ``[..., M, d]`` modality embeddings with a ``[..., M]`` bool
        mask (``True`` = present, at least one per row) into ``[..., d]``."""
        if x.size(-2) == 1:
            return x.squeeze(-2)
        return combine_rows(x, self.row_logits(x), mask)

    def row_logits(self, x: Tensor) -> Tensor:
        """``[..., M]`` attention logits of ``[..., M, d]`` rows, each from its
        own row alone: rows mixed from several entities take their logits
        from each entity's (see :func:`combine_rows`)."""
        return self.attention(x).squeeze(-1)


class GateFusion(nn.Module):
    r"""Fusion by learned per-modality weights, the same for every entity:

    .. math::
        \alpha_m = \mathrm{softmax}_{m \in \mathcal{M}(e)}(w_m), \qquad
        x = x_0 + \sum_m \alpha_m x_m

    The weights depend on which modalities an entity has, not on its
    embeddings, so they are cheap for all ``N`` entities at once
    (:meth:`weights`); with a scorer linear in the candidate, the scores of
    a query against every fused entity then factor through the raw features
    (:meth:`MultimodalEntityEmbedding.match_all`): no ``[N, d]`` projection
    per step, which makes modality features affordable in 1-vs-all training.

    Args:
        num_modalities: ``M`` (structural first).
    """

    factorable = True

    def __init__(self, num_modalities: int) -> None:
        super().__init__()
        self.logits = nn.Parameter(torch.zeros(num_modalities))

    def weights(self, mask: Tensor) -> Tensor:
        """``[..., M]`` weights of entities with a ``[..., M]`` bool mask."""
        logits = self.logits.masked_fill(~mask, float("-inf"))
        return torch.softmax(logits, dim=-1)

    def row_logits(self, x: Tensor) -> Tensor:
        """``[..., M]``: the learned logits, whatever the rows."""
        return self.logits.expand(x.shape[:-1])

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        """Fuses ``[..., M, d]`` modality embeddings with a ``[..., M]`` bool
        mask into ``[..., d]`` (see :class:`ModalityFusion`)."""
        if x.size(-2) == 1:
            return x.squeeze(-2)
        if mask is None:
            mask = torch.ones(x.shape[:-1], dtype=torch.bool, device=x.device)
        return residual_mix(x, self.weights(mask))


#: Fusions by name.
FUSIONS = {"attention": ModalityFusion, "gate": GateFusion}


class MultimodalEntityEmbedding(nn.Module):
    """Per-modality embeddings of entities.

    Modality ``structural`` is a learned ``[N, d]`` table (Xavier-uniform
    initialised); every other modality is a fixed ``[N, d_m]`` feature
    tensor (not saved in the state dict) passed through a learned
    ``Linear(d_m, d)``.

    Args:
        num_entities: ``N``.
        dim: Embedding size ``d``.
        features: ``{modality: ([N, d_m] features, [N] bool mask)}``.
        structural: A table held elsewhere (the rows of a
            :class:`~dhns_geo.sharding.ShardedEntities`, looked up by the
            step and passed to :meth:`forward` as ``rows``); not a module
            of this one.
    """

    def __init__(self, num_entities: int, dim: int,
                 features: Mapping[str, tuple[Tensor, Tensor]] | None = None,
                 structural: Any = None) -> None:
        super().__init__()
        self.num_entities, self.dim = num_entities, dim
        if structural is None:
            weight = torch.empty(num_entities, dim)
            nn.init.xavier_uniform_(weight)
            structural = nn.Embedding(num_entities, dim, _weight=weight)
        self.structural = structural
        features = dict(features or {})
        self.feature_names = list(features)
        self.projections = nn.ModuleDict()
        for name, (x, mask) in features.items():
            if x.size(0) != num_entities or mask.shape != (num_entities,):
                raise ValueError(f"{name} features must have {num_entities} "
                                 f"rows, got {list(x.shape)}")
            self.register_buffer(f"{name}_x", x.float(), persistent=False)
            self.register_buffer(f"{name}_mask", mask.bool(), persistent=False)
            self.projections[name] = nn.Linear(x.size(1), dim)

    @property
    def modalities(self) -> list[str]:
        """Modality names in stacking order, ``structural`` first."""
        return ["structural", *self.feature_names]

    def masks(self) -> Tensor:
        """``[N, M]`` bool: which modalities each entity has (every entity
        has its structural row); needs at least one feature modality."""
        rows = [getattr(self, f"{name}_mask") for name in self.feature_names]
        return torch.stack([torch.ones_like(rows[0]), *rows], dim=-1)

    def match_all(self, query: Tensor, fusion: GateFusion,
                  structural: Tensor | None = None) -> Tensor:
        """``query @ fused.T``, ``[Q, N]``, for a fusion whose weights do not
        depend on the embeddings, without the ``[N, d]`` fused table: the
        structural table's scores plus, per modality, ``(query W_m) @ f_m.T``
        (``[Q, d_m]`` by ``[d_m, N]``) and ``query . b_m``, each weighted per
        entity by the fusion.

        Args:
            query: ``[Q, d]`` queries of a scorer linear in the candidate.
            fusion: The model's :class:`GateFusion`.
            structural: Optional ``[N, d]`` replacement of the structural
                table (its R-GCN encoding).
        """
        table = self.structural.weight if structural is None else structural
        scores = query @ table.t()
        if not self.feature_names:
            return scores
        alpha = fusion.weights(self.masks())                      # [N, M]
        scores = scores * (1 + alpha[:, 0])
        for m, name in enumerate(self.feature_names, start=1):
            linear = self.projections[name]
            x = getattr(self, f"{name}_x")
            part = (query @ linear.weight) @ x.t() + (query @ linear.bias).unsqueeze(1)
            scores = scores + part * alpha[:, m]
        return scores

    def forward(self, index: Tensor | None = None,
                structural: Tensor | None = None,
                rows: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Modality embeddings of entities.

        Args:
            index: ``[*]`` entity ids, or ``None`` for all ``N`` entities.
            structural: Optional ``[N, d]`` replacement of the structural
                table (e.g. its R-GCN encoding).
            rows: Optional ``[*, d]`` structural rows of ``index``, already
                looked up (a table held elsewhere).

        Returns:
            ``([*, M, d] embeddings, [*, M] bool mask)``.
        """
        if rows is None:
            table = self.structural.weight if structural is None else structural
            sparse = structural is None and self.structural.sparse
            rows = table if index is None else F.embedding(index, table,
                                                           sparse=sparse)
        masks = [torch.ones(rows.shape[:-1], dtype=torch.bool,
                            device=rows.device)]
        if not self.feature_names:           # a view: no copy of the table
            return rows.unsqueeze(-2), masks[0].unsqueeze(-1)
        rows = [rows]
        for name in self.feature_names:
            x, mask = getattr(self, f"{name}_x"), getattr(self, f"{name}_mask")
            if index is not None:
                x, mask = x[index], mask[index]
            rows.append(self.projections[name](x))
            masks.append(mask)
        return torch.stack(rows, dim=-2), torch.stack(masks, dim=-1)
