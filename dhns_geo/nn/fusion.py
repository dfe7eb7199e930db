"""Multimodal entity representation: structural embedding plus projected
visual / textual features, fused by attention over available modalities."""

from __future__ import annotations

from typing import Any, Mapping

import torch
import torch.nn.functional as F
from torch import Tensor, nn


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
        logits = self.attention(x).squeeze(-1)
        if mask is not None:
            logits = logits.masked_fill(~mask, float("-inf"))
        alpha = torch.softmax(logits, dim=-1)
        return x[..., 0, :] + (alpha.unsqueeze(-1) * x).sum(dim=-2)


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
        rows = [rows]
        for name in self.feature_names:
            x, mask = getattr(self, f"{name}_x"), getattr(self, f"{name}_mask")
            if index is not None:
                x, mask = x[index], mask[index]
            rows.append(self.projections[name](x))
            masks.append(mask)
        return torch.stack(rows, dim=-2), torch.stack(masks, dim=-1)
