"""MANS: modality-aware negatives.

Zhang, Chen & Zhang, "Modality-Aware Negative Sampling for Multi-modal
Knowledge Graph Embedding", IJCNN 2023, arXiv 2304.11618 (official code:
github.com/zjukg/MANS).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import Tensor

from dhns_geo.data.filter import FilterIndex
from dhns_geo.errors import DHNSError
from dhns_geo.sampling.base import (ModelView, NegativeSampler, Negatives, scoring_inputs,
                                    TableView, corrupted_sides,
                                    filter_with_fallback, with_sides)
from dhns_geo.sampling.inputs import SamplerInputs, num_modalities

if TYPE_CHECKING:
    from torch_geometric.data import HeteroData

    from dhns_geo.config import TrainConfig

VARIANTS = ("v", "t", "h", "a")


class MANSSampler(NegativeSampler):
    """Negatives that keep an entity's structure and swap its modalities.

    A *modality negative* of ``(h, r, t)`` that corrupts the tail is the
    entity whose structural embedding is ``t``'s own and whose other
    modality embeddings (visual, textual: whichever the model has) are
    those of a uniform entity ``e``, fused by the model's fusion; it teaches
    the model to align an entity's structure with its own modalities. The
    other negatives are uniform corruptions. The variants as published:

    * ``v``: every negative is a modality negative;
    * ``t`` (two-stage): ``v`` for the first ``beta`` of the training steps,
      then uniform negatives;
    * ``h`` (hybrid): a share ``beta`` of each positive's ``K`` negatives;
    * ``a`` (adaptive): the share is the fraction of the batch's negatives
      that the model scores higher as modality negatives than as uniform
      ones (no gradient), recomputed each step.

    ``a``, the paper's full method, is the default: in the comparison of
    docs/results/samplers.md it is the one variant that does not trail
    self-adversarial uniform negatives (``v`` trails them widely: every
    negative keeps the positive's own structural embedding).

    Cost per step beside uniform: the fusion of ``B K`` mixed entities
    (``a``: and the comparison's scores).

    Differs from the paper in:

    * the entity is the model's fusion of its modality embeddings (the
      paper's MMTransE sums the scores of the four structure/visual
      combinations);
    * ``K`` negatives per positive (the official scripts use one), each of
      its own side (1/2 each);
    * ``t`` switches at ``beta`` of the run's steps (``beta`` 0.3, the
      official two-stage script), whichever epoch that falls in.

    Args:
        num_entities: ``N``.
        num_negatives: ``K``.
        num_relations: ``R``.
        variant: ``a``, ``v``, ``t`` or ``h``.
        beta: The share of ``h`` and the switch point of ``t``.
        total_steps: The run's optimisation steps (for ``t``).
        filter_index: Known true triples to keep out.
    """

    def __init__(self, num_entities: int, num_negatives: int, num_relations: int,
                 variant: str = "a", beta: float = 0.3, total_steps: int = 0,
                 filter_index: FilterIndex | None = None) -> None:
        super().__init__()
        if variant not in VARIANTS:
            raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")
        self.num_entities, self.num_negatives = num_entities, num_negatives
        self.variant, self.beta, self.total_steps = variant, beta, total_steps
        self.filter_index = filter_index
        self.register_buffer("head_prob", torch.full((num_relations,), 0.5),
                             persistent=False)
        self.register_buffer("steps", torch.zeros((), dtype=torch.long))
        self._stats: dict[str, Tensor | float] = {}

    def modality_columns(self) -> int | None:
        """How many of the ``K`` columns are modality negatives (``None``:
        decided by the batch, variant ``a``)."""
        k = self.num_negatives
        if self.variant == "v":
            return k
        if self.variant == "t":
            return k if int(self.steps) < math.ceil(self.beta * self.total_steps) else 0
        if self.variant == "h":
            return round(self.beta * k)
        return None

    def sample(self, positives: Tensor, model: ModelView, table: TableView,
               generator: torch.Generator) -> list[Negatives]:
        b, k, device = positives.size(0), self.num_negatives, positives.device
        is_head = corrupted_sides(positives, self.head_prob, k, generator)
        drawn = torch.randint(0, self.num_entities, (b, k), generator=generator,
                              device=device)
        drawn, weight = filter_with_fallback(positives, drawn, is_head,
                                             self.filter_index, self.num_entities,
                                             generator)
        columns = self.modality_columns()
        self.steps += int(self.training)
        heads, tails = with_sides(positives, drawn, is_head)
        if columns == 0:
            self._stats = {"mans/modality_share": 0.0}
            return [Negatives(head=heads, tail=tails, weight=weight,
                              corrupted_head=is_head)]
        normal = table.entity(drawn)                                   # [B, K, d]
        if columns is None:                       # MANS-A: decided by the batch
            mixed = self.mixed(positives, drawn, is_head, model, table)
            columns = self.adaptive_columns(model, table, positives, normal, mixed,
                                            is_head)
            use = (torch.arange(k, device=device) < columns).view(1, k, 1)
            negative = torch.where(use, mixed, normal)
        else:                                     # only the modality columns
            mixed = self.mixed(positives, drawn[:, :columns], is_head[:, :columns],
                               model, table)
            negative = torch.cat([mixed, normal[:, columns:]], dim=1)
        self._stats = {"mans/modality_share": columns / k}
        return [Negatives(head=negative, tail=negative, weight=weight,
                          corrupted_head=is_head, source=drawn)]

    @staticmethod
    def mixed(positives: Tensor, drawn: Tensor, is_head: Tensor,
              model: ModelView, table: TableView) -> Tensor:
        """``[B, K, d]``: the fusion of the replaced entity's structural
        embedding with ``drawn``'s other modality embeddings, as the model's
        fusion (:func:`~dhns_geo.nn.fusion.combine_rows`) makes it. The
        fusion's logits are per modality row, so each entity's are computed
        once per step (``[N, M]``) and gathered: no fusion network over
        ``B K`` rows."""
        every, every_mask = table.modalities(None)           # [N, M, d]
        logits = model.fusion.row_logits(every)              # [N, M]
        own = torch.where(is_head, positives[:, :1], positives[:, 2:])
        mask = every_mask[drawn].clone()
        mask[..., 0] = True
        mixed_logits = torch.cat([logits[own][..., :1], logits[drawn][..., 1:]], dim=-1)
        weight = torch.softmax(mixed_logits.masked_fill(~mask, float("-inf")), -1)
        # combine_rows of the mixed rows, x_0 + sum_m w_m x_m, one row at a
        # time (no [B, K, M, d] tensor).
        mixed = F.embedding(own, every[:, 0]) * (1 + weight[..., :1])
        for m in range(1, every.size(1)):
            mixed = mixed + weight[..., m:m + 1] * F.embedding(drawn, every[:, m])
        return mixed

    def adaptive_columns(self, model: ModelView, table: TableView, positives: Tensor,
                         normal: Tensor, mixed: Tensor, is_head: Tensor) -> int:
        """MANS-A's share: the fraction of negatives that score higher as
        modality negatives than as uniform ones, times ``K``."""
        with torch.no_grad():
            args = scoring_inputs(model, table, positives)
            plain, modal = (Negatives(head=x, tail=x, corrupted_head=is_head).score(*args)
                            for x in (normal, mixed))
            harder = (modal > plain).float().mean()
        return int(torch.round(harder * self.num_negatives))

    @classmethod
    def from_config(cls, config: "TrainConfig", data: "HeteroData") -> "MANSSampler":
        if num_modalities(config, data) < 2:
            raise DHNSError(
                "--sampler mans swaps modality embeddings, and this run has no "
                "modality features: compute textual ones (dhns features text "
                f"{config.dataset}) or pass --textual/--visual FILE")
        inputs = SamplerInputs.of(config, data)
        steps = config.epochs * math.ceil(inputs.train.size(0) / config.batch_size)
        return cls(inputs.entities, config.num_negatives, inputs.relations,
                   config.mans_variant, config.mans_beta, steps, inputs.filter_index)
