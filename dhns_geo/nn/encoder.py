"""R-GCN encoder of structural entity embeddings over the training graph."""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch_geometric.nn import FastRGCNConv, RGCNConv


def add_inverse_edges(edge_index: Tensor, edge_type: Tensor,
                      num_relations: int) -> tuple[Tensor, Tensor]:
    """Adds ``(t, r + R, h)`` for every edge ``(h, r, t)``.

    Returns:
        ``([2, 2E] edge_index, [2E] edge_type)`` over ``2R`` relations.
    """
    return (torch.cat([edge_index, edge_index.flip(0)], dim=1),
            torch.cat([edge_type, edge_type + num_relations]))


class RGCNEncoder(nn.Module):
    """Stack of R-GCN layers with basis decomposition and residual links.

    Args:
        dim: Embedding size ``d`` (in and out).
        num_relations: ``R``; inverse relations are added, so the layers
            see ``2R`` relation types.
        num_layers: Number of layers.
        num_bases: Number of bases of the weight decomposition.
        fast: Use :class:`FastRGCNConv` (gathers per-edge weights: faster on
            small graphs, more memory) instead of :class:`RGCNConv`.
    """

    def __init__(self, dim: int, num_relations: int, num_layers: int = 1,
                 num_bases: int = 4, fast: bool = False) -> None:
        super().__init__()
        conv = FastRGCNConv if fast else RGCNConv
        self.num_relations = num_relations
        self.convs = nn.ModuleList(
            conv(dim, dim, 2 * num_relations, num_bases=num_bases)
            for _ in range(num_layers))

    def forward(self, x: Tensor, edge_index: Tensor, edge_type: Tensor) -> Tensor:
        """Encodes ``[N, d]`` embeddings over a graph that already holds
        inverse edges (``[2, E]``, ``[E]`` with ids in ``[0, 2R)``)."""
        for i, conv in enumerate(self.convs):
            out = conv(x, edge_index, edge_type)
            x = x + (torch.tanh(out) if i < len(self.convs) - 1 else out)
        return x
