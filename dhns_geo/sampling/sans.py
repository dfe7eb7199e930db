"""SANS and RW-SANS: negatives from the graph neighbourhood of the kept entity.

Ahrabian, Feizi, Salehi, Hamilton & Bose, "Structure Aware Negative Sampling
in Knowledge Graphs", EMNLP 2020 (official code: github.com/kahrabian/SANS).
"""

from __future__ import annotations

import hashlib
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from dhns_geo.data.filter import FilterIndex
from dhns_geo.sampling.base import (ModelView, NegativeSampler, Negatives,
                                    TableView, corrupted_sides,
                                    filter_with_fallback, with_sides)
from dhns_geo.sampling.inputs import SamplerInputs

if TYPE_CHECKING:
    from torch_geometric.data import HeteroData

    from dhns_geo.config import TrainConfig


#: A neighbourhood per entity in CSR form: ``(rowptr [N + 1], col [nnz])``,
#: row ``e`` is ``col[rowptr[e]:rowptr[e + 1]]``, sorted.
CSR = tuple[Tensor, Tensor]


def _csr(index: Tensor, n: int) -> CSR:
    """The CSR pattern of the sorted distinct cells ``row * n + col``."""
    rows = index // n
    rowptr = torch.zeros(n + 1, dtype=torch.long)
    rowptr[1:] = torch.bincount(rows, minlength=n).cumsum(0)
    return rowptr, index % n


def _cells(matrix: Tensor, n: int) -> Tensor:
    """The nonzero cells ``row * n + col`` of a sparse COO matrix."""
    index = matrix.coalesce().indices()
    return index[0] * n + index[1]


def _coo(cells: Tensor, n: int) -> Tensor:
    index = torch.stack([cells // n, cells % n])
    return torch.sparse_coo_tensor(index, torch.ones(cells.numel()), (n, n),
                                   check_invariants=False, is_coalesced=True)


def _product_cells(a: Tensor, b: Tensor, n: int) -> Tensor:
    """The nonzero cells of the sparse product ``a @ b``."""
    with warnings.catch_warnings():         # torch's one-time "beta" notices
        warnings.filterwarnings("ignore", "Sparse CSR tensor support")
        warnings.filterwarnings("ignore", "Sparse invariant checks")
        return _cells(torch.sparse.mm(a, b), n)


def adjacency_cells(train: Tensor, num_entities: int) -> Tensor:
    """The nonzero cells ``row * N + col`` (sorted) of the undirected
    ``[N, N]`` adjacency of the training graph, relations ignored."""
    h, _, t = train.unbind(1)
    return torch.unique(torch.cat([h * num_entities + t, t * num_entities + h]))


def k_hop(train: Tensor, num_entities: int, k: int) -> CSR:
    """The SANS neighbourhoods: the pattern of ``A^k + A^(k-1)`` (``A^0 = I``),
    the entities a walk of ``k`` or ``k - 1`` steps reaches: every entity
    within ``k`` hops."""
    n = num_entities
    a = _coo(adjacency_cells(train, n), n)
    power = torch.arange(n) * (n + 1)                   # the cells of I
    for _ in range(k - 1):
        power = _product_cells(_coo(power, n), a, n)
    reach = _product_cells(_coo(power, n), a, n)
    return _csr(torch.unique(torch.cat([reach, power])), n)


def random_walks(train: Tensor, num_entities: int, k: int, walks: int,
                 generator: torch.Generator, chunk: int = 2 ** 22) -> CSR:
    """The RW-SANS neighbourhoods: the distinct end points of ``walks``
    random walks of ``k`` steps from each entity, every walk starting anew
    from its entity (an entity without neighbours gets ``walks`` uniform
    entities, as in the official code)."""
    n = num_entities
    rowptr, col = _csr(adjacency_cells(train, n), n)
    degree = rowptr[1:] - rowptr[:-1]
    ends = []
    for start in torch.arange(n).repeat_interleave(walks).split(chunk):
        walker = start
        for _ in range(k):
            step = (torch.rand(walker.shape, generator=generator)
                    * degree[walker]).long()
            walker = col[(rowptr[walker] + step).clamp(max=max(col.numel() - 1, 0))]
        isolated = degree[start] == 0
        walker = torch.where(isolated, torch.randint(
            0, n, start.shape, generator=generator), walker)
        ends.append(torch.unique(start * n + walker))
    return _csr(torch.unique(torch.cat(ends)), n)


class SANSSampler(NegativeSampler):
    """Each negative replaces a side by an entity near the side kept.

    The neighbourhood of each entity is computed once (``k``-hop: the
    pattern of ``A^k + A^(k-1)`` of the undirected training graph; or, with
    ``walks > 0``, RW-SANS: the end points of that many random walks of ``k``
    steps). A negative of ``(h, r, t)`` that corrupts the tail draws
    uniformly from ``h``'s neighbourhood, one that corrupts the head from
    ``t``'s. A neighbourhood holds the true answers too (``t`` is one hop
    from ``h``), so the negatives are always filtered against the training
    triples, as in the official code: a drawn true answer is replaced by a
    uniform entity (three rounds, then weight 0); entities without a
    neighbourhood fall back to uniform entities.
    Combine with ``--loss self-adversarial`` for the paper's
    self-adversarial SANS.

    Cost per step beside uniform: two gathers per negative; the
    neighbourhoods once per dataset (cached on disk beside its processed
    files).

    Differs from the paper in:

    * every random walk starts from its entity's own neighbours (the
      official code carries the last walk's neighbour set into the next
      walk);
    * the side of each negative is drawn per negative (1/2 each) instead of
      alternating head and tail batches;
    * a filtered negative is redrawn uniformly (three rounds, then weight
      0) instead of from the neighbourhood until it runs out.

    Args:
        num_entities: ``N``.
        neighbourhood: :data:`CSR` ``(rowptr, col)``: row ``e`` holds
            ``e``'s neighbourhood.
        num_negatives: ``K``.
        num_relations: ``R``.
        filter_index: Known true triples to keep out (the training
            triples; ``None`` only where none are known).
    """

    def __init__(self, num_entities: int, neighbourhood: CSR,
                 num_negatives: int, num_relations: int,
                 filter_index: FilterIndex | None = None) -> None:
        super().__init__()
        self.num_entities, self.num_negatives = num_entities, num_negatives
        self.filter_index = filter_index
        rowptr, col = neighbourhood
        self.register_buffer("rowptr", rowptr.clone(), persistent=False)
        self.register_buffer("col", col.clone(), persistent=False)
        self.register_buffer("head_prob", torch.full((num_relations,), 0.5),
                             persistent=False)

    def neighbours(self, entity: int) -> Tensor:
        """The sorted neighbourhood ``[n]`` of ``entity``."""
        return self.col[self.rowptr[entity]:self.rowptr[entity + 1]]

    def sample(self, positives: Tensor, model: ModelView, table: TableView,
               generator: torch.Generator) -> list[Negatives]:
        b, k, device = positives.size(0), self.num_negatives, positives.device
        is_head = corrupted_sides(positives, self.head_prob, k, generator)
        h, _, t = positives.unbind(1)
        kept = torch.where(is_head, t.unsqueeze(1), h.unsqueeze(1))
        start, degree = self.rowptr[kept], self.rowptr[kept + 1] - self.rowptr[kept]
        step = (torch.rand((b, k), generator=generator, device=device)
                * degree).long()
        near = self.col[(start + step).clamp(max=max(self.col.numel() - 1, 0))]
        uniform = torch.randint(0, self.num_entities, (b, k), generator=generator,
                                device=device)
        drawn = torch.where(degree > 0, near, uniform)
        drawn, weight = filter_with_fallback(positives, drawn, is_head,
                                             self.filter_index, self.num_entities,
                                             generator)
        heads, tails = with_sides(positives, drawn, is_head)
        return [Negatives(head=heads, tail=tails, weight=weight,
                          corrupted_head=is_head)]

    @classmethod
    def from_config(cls, config: "TrainConfig", data: "HeteroData") -> "SANSSampler":
        inputs = SamplerInputs.of(config, data)
        index = inputs.train_filter()
        walks = config.sans_walks if config.sampler == "rw-sans" else 0
        hood = neighbourhood(inputs.train, inputs.entities, config.sans_hops, walks,
                             config.seed, cache_folder(data))
        return cls(inputs.entities, hood, config.num_negatives, inputs.relations, index)


def cache_folder(data: "HeteroData") -> Path | None:
    """The folder of the dataset's processed files, when it has one."""
    folder = getattr(data, "processed_dir", None)
    return Path(folder) if folder else None


def neighbourhood(train: Tensor, num_entities: int, k: int, walks: int,
                  seed: int, folder: Path | None = None) -> CSR:
    """:func:`k_hop` (``walks == 0``) or :func:`random_walks`, read from
    ``folder`` when computed before for the same training triples (the file
    name holds their hash, ``k``, ``walks`` and the seed of the walks)."""
    digest = hashlib.sha256(train.cpu().numpy().tobytes()).hexdigest()[:12]
    name = f"sans-{digest}-k{k}-rw{walks}" + (f"-seed{seed}" if walks else "") + ".pt"
    path = folder / name if folder is not None else None
    if path is not None and path.is_file():
        rowptr, col = torch.load(path, weights_only=True)
        return rowptr, col
    if walks:
        hood = random_walks(train, num_entities, k, walks,
                            torch.Generator().manual_seed(seed))
    else:
        hood = k_hop(train, num_entities, k)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        torch.save(hood, tmp)
        tmp.replace(path)
    return hood
