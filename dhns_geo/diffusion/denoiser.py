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
    Linear(3d, h) -> ReLU -> LayerNorm -> Linear(h, d) -> Linear(d, d), with
    hidden width ``h = 4d`` by default.

    Args:
        groups: Number of modalities ``M`` (independent weights each).
        dim: Embedding size ``d``.
        num_steps: The largest step ``T``.
        hidden: The hidden width ``h`` (default ``4 * dim``).
    """

    def __init__(self, groups: int, dim: int, num_steps: int = 50,
                 hidden: int | None = None) -> None:
        super().__init__()
        self.dim, self.num_steps = dim, num_steps
        hidden = 4 * dim if hidden is None else hidden
        self.time_mlp = nn.Sequential(GroupedLinear(groups, dim, dim), nn.ReLU(),
                                      GroupedLinear(groups, dim, dim))
        self.block = nn.Sequential(
            GroupedLayerNorm(groups, 3 * dim), GroupedLinear(groups, 3 * dim, hidden),
            nn.ReLU(), GroupedLayerNorm(groups, hidden),
            GroupedLinear(groups, hidden, dim), GroupedLinear(groups, dim, dim))

    def time_table(self, groups: int, device: torch.device) -> Tensor:
        """Time embeddings ``[M, T + 1, d]`` of every step ``0..T``."""
        steps = torch.arange(self.num_steps + 1, device=device)
        temb = timestep_embedding(steps, self.dim).expand(groups, -1, -1)
        return self.time_mlp(temb)

    def _time(self, t: Tensor, groups: int) -> Tensor:
        """Time embeddings ``[M, n, d]`` of steps ``[n]``: the MLP runs on
        the ``T + 1`` possible steps, not once per row, and nothing is read
        back to the host (a CUDA graph can capture it)."""
        return self.time_table(groups, t.device)[:, t]

    def forward(self, x_t: Tensor, t: Tensor, cond: Tensor) -> Tensor:
        """Noise ``[M, n, d]`` of ``x_t`` ``[M, n, d]`` at steps ``t`` ``[n]``
        given conditions ``cond`` ``[M, n, d]``."""
        temb = self._time(t, x_t.size(0))
        return self.block(torch.cat([x_t, temb, cond], dim=-1))

    def condition(self, cond: Tensor) -> "Condition":
        """Precomputes the part of the first layer that depends only on the
        condition, for a reverse chain that calls :meth:`denoise` with the
        same ``cond`` at every step."""
        return Condition(self, cond)

    def denoise(self, x_t: Tensor, t: int, condition: "Condition") -> Tensor:
        """:meth:`forward` at one step ``t`` for all rows, reusing the
        condition's share of the first LayerNorm + Linear (per call only the
        ``d x h`` block of ``x_t`` is multiplied instead of ``3d x h``) and
        its time embeddings."""
        return condition.finish(x_t, condition.time[:, t:t + 1])   # [M, 1, d]


class Condition:
    """The condition's share of ``LayerNorm(3d) -> Linear(3d, h)``.

    With ``z = [x, e, c]``, ``LN(z) W + b = rstd (z * g) W - rstd mu (g W)
    + (beta W + b)``: ``(c * g_c) W_c`` and the row sums of ``c`` are
    computed once; ``x`` and the time embedding ``e`` are added per step.
    The time embeddings of every step are computed once too (``time``).
    """

    def __init__(self, denoiser: ConditionalDenoiser, cond: Tensor) -> None:
        norm, linear = denoiser.block[0], denoiser.block[1]
        d = denoiser.dim
        self.rest = denoiser.block[2:]
        self.eps = 1e-5
        gamma, beta = norm.weight, norm.bias                    # [M, 1, 3d]
        w = linear.weight                                       # [M, 3d, h]
        self.g = gamma.split(d, dim=-1)
        self.w = w.split(d, dim=1)
        self.gw = torch.bmm(gamma, w)                           # [M, 1, h]
        self.shift = torch.baddbmm(linear.bias, beta, w)        # [M, 1, h]
        self.cw = torch.bmm(cond * self.g[2], self.w[2])        # [M, n, h]
        self.c_sum = cond.sum(-1, keepdim=True)
        self.c_sq = cond.pow(2).sum(-1, keepdim=True)
        self.width = 3 * d
        self.time = denoiser.time_table(cond.size(0), cond.device)   # [M, T + 1, d]

    def finish(self, x: Tensor, temb: Tensor) -> Tensor:
        mean = (x.sum(-1, keepdim=True) + temb.sum(-1, keepdim=True)
                + self.c_sum) / self.width
        square = (x.pow(2).sum(-1, keepdim=True) + temb.pow(2).sum(-1, keepdim=True)
                  + self.c_sq) / self.width
        rstd = torch.rsqrt((square - mean.pow(2)).clamp_min(0) + self.eps)
        zgw = torch.baddbmm(self.cw + torch.bmm(temb * self.g[1], self.w[1]),
                            x * self.g[0], self.w[0])
        return self.rest(rstd * (zgw - mean * self.gw) + self.shift)
