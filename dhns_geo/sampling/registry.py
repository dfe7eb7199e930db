"""Every negative sampler by name: ``dhns train --sampler NAME``.

A sampler is a module of its own under :mod:`dhns_geo.sampling` (or
:mod:`dhns_geo.diffusion` for DHNS) with a ``from_config(config, data)``
constructor; adding one is a new module, a row in :data:`SAMPLERS` and its
name in :data:`dhns_geo.config.SAMPLERS` (a test checks that the two agree),
with its options declared on :class:`~dhns_geo.config.TrainConfig`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable

from dhns_geo.diffusion.dhns import DHNSSampler
from dhns_geo.sampling.base import NegativeSampler
from dhns_geo.sampling.corruption import CorruptionSampler
from dhns_geo.sampling.kbgan import KBGANSampler
from dhns_geo.sampling.mans import MANSSampler
from dhns_geo.sampling.mmrns import MMRNSSampler
from dhns_geo.sampling.nscaching import NSCachingSampler
from dhns_geo.sampling.sans import SANSSampler

if TYPE_CHECKING:
    from torch_geometric.data import HeteroData

    from dhns_geo.config import TrainConfig


#: Where the costs were measured (benchmarks/results/samplers/cost-MKG-Y.md).
MEASURED = "MKG-Y, RotatE dim 256, 64 negatives per positive, one CPU thread"


@dataclass(frozen=True)
class SamplerEntry:
    """A sampler of the registry.

    Attributes:
        build: ``(config, data) -> NegativeSampler``.
        paper: Where it was published.
        summary: One line on what it draws.
        model_agnostic: Whether it needs nothing but a model's scores and
            embeddings (it then serves a PyG model through a
            :class:`~dhns_geo.adapters.KGEAdapter`).
        cost: Its epoch time over self-adversarial uniform negatives', as
            measured (``measured`` says where); ``dhns train`` names a cost
            over 3 at the start, with the ``cheaper`` option.
        cost_shared: The same against uniform negatives from the pool
            shared by the batch (the library default), for samplers that
            draw such a pool.
        cheaper_chosen: ``config -> bool``: the run already takes the
            ``cheaper`` option (no notice then).
        variant_costs: ``{variant: cost}`` for the variants measured apart
            whose cost differs from ``cost``, ``variant_of(config)`` naming
            a run's variant.
    """

    build: Callable[["TrainConfig", "HeteroData"], NegativeSampler]
    paper: str
    summary: str
    model_agnostic: bool = True
    cost: float = 1.0
    measured: str = MEASURED
    cheaper: str = ""
    cost_shared: float | None = None
    cheaper_chosen: Callable[["TrainConfig"], bool] = lambda config: False
    variant_costs: dict[str, float] = field(default_factory=dict)
    variant_of: Callable[["TrainConfig"], str] = lambda config: ""

    def cost_for(self, config: "TrainConfig") -> float:
        """The measured cost of ``config``'s variant of this sampler."""
        return self.variant_costs.get(self.variant_of(config), self.cost)


#: MANS's cost by variant; h: 0.58x a's epoch measured apart
#: (cost-MKG-Y-mans.md); t: v's epoch for the first 30 % of the steps,
#: uniform negatives' after.
MANS_COSTS = {"a": 3.89, "v": 3.55, "h": 2.26, "t": 1.77}

SAMPLERS: dict[str, SamplerEntry] = {
    "uniform": SamplerEntry(CorruptionSampler.from_config, "Bordes et al., NeurIPS 2013",
                            "a random entity in place of head or tail (1/2 each)"),
    "bernoulli": SamplerEntry(CorruptionSampler.from_config, "Wang et al., AAAI 2014",
                              "head or tail with each relation's tph/(tph+hpt)"),
    "nscaching": SamplerEntry(NSCachingSampler.from_config, "Zhang et al., ICDE 2019",
                              "a cache of high-scoring entities per (h, r) and (r, t)",
                              cost=1.03),
    "sans": SamplerEntry(SANSSampler.from_config, "Ahrabian et al., EMNLP 2020",
                         "entities within k hops of the kept entity"),
    "rw-sans": SamplerEntry(SANSSampler.from_config, "Ahrabian et al., EMNLP 2020",
                            "endpoints of random walks of length k from the kept entity"),
    "kbgan": SamplerEntry(KBGANSampler.from_config, "Cai & Wang, NAACL 2018",
                          "a generator KGE model picks among uniform candidates (REINFORCE)",
                          cost=1.31),
    "mans": SamplerEntry(MANSSampler.from_config, "Zhang, Chen & Zhang, IJCNN 2023 (arXiv 2304.11618)",
                         "the positive's structure with another entity's modality embeddings",
                         model_agnostic=False, cost=MANS_COSTS["a"],
                         cheaper="--mans-variant h mixes a --mans-beta share of the negatives "
                                 f"({MANS_COSTS['h'] / MANS_COSTS['a']:.2f}x variant a's epoch, "
                                 "as good on MKG-Y)",
                         variant_costs={v: c for v, c in MANS_COSTS.items() if v != "a"},
                         variant_of=lambda config: config.mans_variant),
    "mmrns": SamplerEntry(MMRNSSampler.from_config, "Xu et al., ACM MM 2022",
                          "relation-guided cross-modal similarity, Gumbel top-K draws",
                          model_agnostic=False, cost=1.37),
    "dhns": SamplerEntry(DHNSSampler.from_run, "Niu & Zhang, DASFAA 2025",
                         "diffusion-generated entities at graded hardness levels",
                         cost=2.68, cost_shared=8.0,
                         cheaper="--dhns-share 0.25 generates for a quarter of each batch "
                                 "(2.7x the shared pool's epoch)",
                         cheaper_chosen=lambda config: config.dhns_share < 1),
}


def build_sampler(config: "TrainConfig", data: "HeteroData") -> NegativeSampler:
    """The negative sampler of ``config`` (``config.sampler`` in
    :data:`SAMPLERS`). With ``filter_negatives`` the known true triples are
    the train triples: filtering by valid or test triples would tell
    training which corruptions are true there."""
    return SAMPLERS[config.sampler].build(config, data)
