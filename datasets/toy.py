"""A small synthetic MMKG with learnable structure and informative features."""

from __future__ import annotations

import math

import torch
from torch_geometric.data import HeteroData, InMemoryDataset

from dhns_geo.data.io import KnowledgeGraph
from dhns_geo.data.mmkg import attach_features, to_hetero_data


class ToyMMKG(InMemoryDataset):
    r"""A synthetic multimodal knowledge graph, generated on the fly.

    Entities fall into ``num_clusters`` latent clusters of equal size; entity
    ``e`` is member ``e // num_clusters`` of cluster ``e % num_clusters``.
    Relation ``r`` maps cluster ``c`` to ``(c + a_r) mod num_clusters`` and
    member ``i`` to ``(i + shift_r) mod size``: two cyclic shifts, which a
    RotatE model represents exactly (entities on two circles, relations as
    rotations); with probability ``noise`` the tail is replaced by a random
    member of the right cluster. Each ``(entity, relation)`` pair
    is a triple with probability ``density``; triples are split 80/10/10.

    Visual features encode the cluster and textual features the member
    position (plus Gaussian noise), so both carry real signal. About 15% of
    entities lack the visual and 10% the textual modality (all-zero rows,
    mask ``False``).

    Args:
        num_entities: Number of entities ``N`` (rounded down to a multiple of
            ``num_clusters``).
        num_relations: Number of relations.
        num_clusters: Number of latent clusters.
        density: Probability that an ``(entity, relation)`` pair is a triple.
        noise: Probability that a tail is random within its cluster.
        seed: Random seed; the same seed gives the same graph.
    """

    def __init__(self, num_entities: int = 1000, num_relations: int = 10,
                 num_clusters: int = 10, density: float = 0.8,
                 noise: float = 0.1, seed: int = 0, transform=None) -> None:
        super().__init__(None, transform)
        data = generate_toy_mmkg(num_entities, num_relations, num_clusters,
                                 density, noise, seed)
        self._data, self.slices = self.collate([data])

    @property
    def raw_file_names(self) -> list[str]:
        return []

    @property
    def processed_file_names(self) -> list[str]:
        return []


def _features(codes: torch.Tensor, dim: int, generator: torch.Generator,
              signal: float = 1.0) -> torch.Tensor:
    """Random projection of ``[N, k]`` codes to ``[N, dim]`` plus noise."""
    proj = torch.randn(codes.size(1), dim, generator=generator)
    x = codes @ proj / math.sqrt(codes.size(1))
    return signal * x + 0.1 * torch.randn(x.shape, generator=generator)


def generate_toy_mmkg(num_entities: int = 1000, num_relations: int = 10,
                      num_clusters: int = 10, density: float = 0.8,
                      noise: float = 0.1, seed: int = 0) -> HeteroData:
    """Generates the graph of :class:`ToyMMKG` as ``HeteroData``."""
    if num_entities < 2 * num_clusters or num_relations < 1:
        raise ValueError("need num_entities >= 2 * num_clusters and "
                         "num_relations >= 1")
    g = torch.Generator().manual_seed(seed)
    size = num_entities // num_clusters
    n = size * num_clusters
    triples = _toy_triples(n, num_relations, num_clusters, density, noise, g)
    n_test = n_valid = triples.size(0) // 10
    splits = {"valid": triples[:n_valid], "test": triples[n_valid:n_valid + n_test],
              "train": triples[n_valid + n_test:]}
    kg = KnowledgeGraph(n, num_relations, splits,
                        [f"entity_{i}" for i in range(n)],
                        [f"relation_{i}" for i in range(num_relations)],
                        source=f"ToyMMKG(seed={seed})")
    data = to_hetero_data(kg, warn=False)
    entity = torch.arange(n)
    cluster, member = entity % num_clusters, entity // num_clusters
    angle = 2 * math.pi * member.float() / size
    position = torch.stack([torch.cos(angle), torch.sin(angle),
                            torch.cos(2 * angle), torch.sin(2 * angle)], dim=1)
    onehot = torch.nn.functional.one_hot(cluster, num_clusters).float()
    for modality, codes, dim, missing in (("visual", onehot, 64, 0.15),
                                          ("textual", position, 32, 0.10)):
        x = _features(codes, dim, g)
        mask = torch.rand(n, generator=g) >= missing
        x[~mask] = 0.0
        attach_features(data, modality, x, source=f"ToyMMKG(seed={seed})",
                        mask=mask)
    return data


def _toy_triples(n: int, num_relations: int, num_clusters: int, density: float,
                 noise: float, g: torch.Generator) -> torch.Tensor:
    """The shuffled ``[E, 3]`` triples of the toy graph: relation ``r`` maps
    an entity to a shifted member of a shifted cluster, with noise."""
    size = n // num_clusters
    entity = torch.arange(n)
    cluster, member = entity % num_clusters, entity // num_clusters
    cluster_shift = torch.randint(1, num_clusters, (num_relations,), generator=g)
    shift = torch.randint(1, size, (num_relations,), generator=g)  # [R]

    h = entity.repeat_interleave(num_relations)
    r = torch.arange(num_relations).repeat(n)
    keep = torch.rand(h.numel(), generator=g) < density
    h, r = h[keep], r[keep]
    t_cluster = (cluster[h] + cluster_shift[r]) % num_clusters
    t_member = (member[h] + shift[r]) % size
    random_member = torch.randint(0, size, (h.numel(),), generator=g)
    is_noise = torch.rand(h.numel(), generator=g) < noise
    t_member = torch.where(is_noise, random_member, t_member)
    t = t_member * num_clusters + t_cluster
    triples = torch.unique(torch.stack([h, r, t], dim=1), dim=0)
    return triples[torch.randperm(triples.size(0), generator=g)]
