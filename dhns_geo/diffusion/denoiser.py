"""The conditional noise predictor of DiffHEG, one per modality, evaluated
for all modalities in one batched pass (grouped weights, ``baddbmm``)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def timestep_embedding(t: Tensor, dim: int) -> Tensor:
    """Sinusoidal embeddings ``[n, dim]`` of integer steps ``[n]``."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, device=t.device)
                      / max(half, 1))
    args = t.float().unsqueeze(-1) * freqs
    emb = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
    return F.pad(emb, (0, dim - emb.size(-1)))


class GroupedLinear(nn.Module):
    """``G`` independent linear layers applied to ``[G, n, in]`` at once."""

    def __init__(self, groups: int, in_features: int, out_features: int) -> None:
        super().__init__()
        bound = 1 / math.sqrt(in_features)
        self.weight = nn.Parameter(torch.empty(groups, in_features, out_features)
                                   .uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(groups, 1, out_features)
                                 .uniform_(-bound, bound))

    def forward(self, x: Tensor) -> Tensor:
        return torch.baddbmm(self.bias, x, self.weight)


class GroupedLayerNorm(nn.Module):
    """Layer normalisation with a separate affine transform per group."""

    def __init__(self, groups: int, dim: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(groups, 1, dim))
        self.bias = nn.Parameter(torch.zeros(groups, 1, dim))

    def forward(self, x: Tensor) -> Tensor:
        return F.layer_norm(x, x.shape[-1:]) * self.weight + self.bias


class ConditionalDenoiser(nn.Module):
    r"""Predicts the noise of noisy embeddings given a condition.

    Per modality: ``[x_t, MLP(sinusoid(t)), c]`` (``3d``) -> LayerNorm ->
    Linear(3d, 4d) -> ReLU -> LayerNorm -> Linear(4d, d) -> Linear(d, d).

    Args:
        groups: Number of modalities ``M`` (independent weights each).
        dim: Embedding size ``d``.
    """

    def __init__(self, groups: int, dim: int) -> None:
        super().__init__()
        self.dim = dim
        self.time_mlp = nn.Sequential(GroupedLinear(groups, dim, dim), nn.ReLU(),
                                      GroupedLinear(groups, dim, dim))
        self.block = nn.Sequential(
            GroupedLayerNorm(groups, 3 * dim), GroupedLinear(groups, 3 * dim, 4 * dim),
            nn.ReLU(), GroupedLayerNorm(groups, 4 * dim),
            GroupedLinear(groups, 4 * dim, dim), GroupedLinear(groups, dim, dim))

    def forward(self, x_t: Tensor, t: Tensor, cond: Tensor) -> Tensor:
        """Noise ``[M, n, d]`` of ``x_t`` ``[M, n, d]`` at steps ``t`` ``[n]``
        given conditions ``cond`` ``[M, n, d]``."""
        temb = timestep_embedding(t, self.dim).expand(x_t.size(0), -1, -1)
        return self.block(torch.cat([x_t, self.time_mlp(temb), cond], dim=-1))
