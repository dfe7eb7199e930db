"""MMRNS: relation-enhanced negatives for multimodal KGC.

Xu, Xu, Wu, Zhou & Chen, "Relation-enhanced Negative Sampling for Multimodal
Knowledge Graph Completion", ACM MM 2022 (official code:
github.com/quqxui/MMRNS).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dhns_geo.data.filter import FilterIndex
from dhns_geo.nn.scorers import make_scorer
from dhns_geo.sampling.base import (ModelView, Negatives, SelfTrainingSampler,
                                    TableView, candidate_scores, gumbel_noise,
                                    known_mask, with_sides)
from dhns_geo.sampling.inputs import SamplerInputs, num_modalities

if TYPE_CHECKING:
    from torch_geometric.data import HeteroData

    from dhns_geo.config import TrainConfig


class RelationGuidedAttention(nn.Module):
    """MMRNS's knowledge-guided cross-modal attention, on one embedding per
    modality.

    Each entity's ``M`` modality embeddings are projected to ``a``
    dimensions, attend to each other (cross-modal attention) and are
    layer-normalised; a relation gates each modality's view
    (``sigmoid(W r)``), and the similarity of two entities under a relation
    is the cosine of their gated views, per modality.

    Args:
        num_modalities: ``M``.
        dim: The model's entity embedding size ``d``.
        relation_dim: Its relation embedding size.
        hidden: ``a`` (50, the official attention size).
    """

    def __init__(self, num_modalities: int, dim: int, relation_dim: int,
                 hidden: int = 50) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(num_modalities, dim, hidden))
        self.bias = nn.Parameter(torch.zeros(num_modalities, hidden))
        nn.init.xavier_normal_(self.weight)
        self.norm = nn.LayerNorm(hidden)
        self.gate = nn.Linear(relation_dim, num_modalities * hidden)
        self.num_modalities, self.hidden = num_modalities, hidden

    def views(self, x: Tensor) -> Tensor:
        """``[*, M, a]`` views of ``[*, M, d]`` modality embeddings."""
        y = F.leaky_relu(torch.einsum("...md,mda->...ma", x, self.weight) + self.bias, 0.1)
        attention = torch.softmax(y @ y.transpose(-1, -2) / math.sqrt(self.hidden), -1)
        return self.norm(attention @ y) + self.norm(y)

    def similarities(self, pool: Tensor, answer: Tensor, relation: Tensor) -> Tensor:
        """``[B, M, P]`` cosines, per modality, between the pool's views
        ``[P, M, a]`` and each answer's ``[B, M, a]``, gated by its relation
        ``[B, d_r]``; one product per term (no ``[B, P, a]`` tensor). The
        norms are detached, as in the official code."""
        g2 = torch.sigmoid(self.gate(relation)).view(-1, self.num_modalities,
                                                     self.hidden) ** 2
        dots = torch.einsum("bma,pma->bmp", g2 * answer, pool)
        pool_sq = torch.einsum("bma,pma->bmp", g2, pool * pool)
        answer_sq = (g2 * answer * answer).sum(-1, keepdim=True)
        return dots / ((pool_sq * answer_sq).sqrt().detach() + 1e-10)


class MMRNSSampler(SelfTrainingSampler):
    """Negatives drawn from a shared candidate pool by their relation-guided
    multimodal similarity to the true answer.

    Each step draws a pool of ``P`` uniform entities shared by the batch.
    For a positive whose side ``s`` is corrupted (1/2 each, per positive),
    each pool entity's probability is the mean over modalities of
    ``softmax(similarity to the true answer / temperature)``, with the
    temperature annealed as ``T0 / (1 + log(step + 1))``; the known true
    answers (training triples) get probability 0. ``K`` negatives are drawn
    without replacement by Gumbel top-``K``. The attention is then trained
    one step by the paper's contrastive term: per modality,
    ``-log(sum over true answers / sum over the others)`` of
    ``exp(similarity)`` weighted ``1/P`` and, for the drawn negatives, by
    their self-adversarial weights under the trained model, divided by
    ``M`` times ``loss_rate``.

    Cost per step beside uniform: ``[B, M, P]`` similarities (forward and
    backward of the attention) and one ``[B, K]`` score matrix of the model.

    Differs from the paper in:

    * one embedding per modality (the model's projected features): the
      official code attends between 24 image and 4 text token vectors of
      its own feature files, and gates that attention matrix by the
      relation; here the relation gates each modality's view;
    * the structural modality is gated by the relation alone (official:
      by the entity and the relation);
    * the attention learns from the contrastive term only, with its own
      Adam: the KGE loss does not reach it (in the official code it does,
      through the straight-through Gumbel-softmax, which rewards easier
      negatives), and the model's embeddings are read detached;
    * the modality distributions are averaged (the official code sums
      them, a total of ``M``).

    Args:
        num_entities: ``N``.
        num_modalities: ``M``.
        dim: ``d``.
        relation_dim: The relation embedding size.
        num_negatives: ``K`` (at most ``pool``).
        filter_index: The training triples (the answers to mask).
        pool: ``P`` (1500, as published).
        temperature: ``T0`` (10).
        lr: The attention's Adam learning rate (``1e-3``).
        loss_rate: The contrastive term's divisor (100).
        adversarial_temperature: Of the drawn negatives' weights.
        hidden: The attention size ``a`` (50).
    """

    def __init__(self, num_entities: int, num_modalities: int, dim: int,
                 relation_dim: int, num_negatives: int, filter_index: FilterIndex,
                 pool: int = 1500, temperature: float = 10.0, lr: float = 1e-3,
                 loss_rate: float = 100.0, adversarial_temperature: float = 1.0,
                 hidden: int = 50) -> None:
        super().__init__()
        if num_negatives > min(pool, num_entities):
            raise ValueError(f"{num_negatives} negatives cannot be drawn without "
                             f"replacement from a pool of {min(pool, num_entities)}")
        self.num_entities, self.num_negatives = num_entities, num_negatives
        self.pool, self.temperature = min(pool, num_entities), temperature
        self.loss_rate, self.adversarial_temperature = loss_rate, adversarial_temperature
        self.filter_index = filter_index
        self.attention = RelationGuidedAttention(num_modalities, dim, relation_dim, hidden)
        self.optimizer = torch.optim.Adam(self.attention.parameters(), lr=lr)
        self.register_buffer("steps", torch.zeros((), dtype=torch.long))
        self._stats: dict[str, Tensor] = {}

    def current_temperature(self) -> float:
        return self.temperature / (1.0 + math.log(int(self.steps) + 1))

    def similarities(self, positives: Tensor, pool: Tensor, is_head: Tensor,
                     model: ModelView, table: TableView) -> Tensor:
        """``[B, M, P]`` relation-guided similarities of the pool's entities
        to each positive's answer on its corrupted side (``is_head`` ``[B]``)."""
        answer = torch.where(is_head, positives[:, 0], positives[:, 2])
        x = table.modalities(torch.cat([pool, answer]))[0].detach()
        views = self.attention.views(x)
        relation = model.relations(positives[:, 1]).detach()
        return self.attention.similarities(views[:pool.numel()],
                                           views[pool.numel():], relation)

    def distribution(self, sims: Tensor, true: Tensor) -> Tensor:
        """``[B, P]`` sampling probabilities: the mean over modalities of
        ``softmax(sims / temperature)``, 0 on the ``true`` answers,
        renormalised (each row sums to 1)."""
        probs = torch.softmax(sims.detach() / self.current_temperature(), -1).mean(1)
        probs = probs.masked_fill(true, 0.0)
        return probs / probs.sum(-1, keepdim=True).clamp_min(1e-30)

    def sample(self, positives: Tensor, model: ModelView, table: TableView,
               generator: torch.Generator) -> list[Negatives]:
        b, k, device = positives.size(0), self.num_negatives, positives.device
        pool = torch.randperm(self.num_entities, generator=generator,
                              device=device)[:self.pool]
        side = torch.rand(b, generator=generator, device=device) < 0.5
        sims = self.similarities(positives, pool, side, model, table)
        flags = side.unsqueeze(1).expand(b, self.pool)
        true = known_mask(positives, pool.expand(b, -1), flags, self.filter_index)
        log_p = torch.log(self.distribution(sims, true))
        pick = (log_p + gumbel_noise(log_p.shape, generator, device)).topk(k, -1).indices
        drawn, is_head = pool[pick], side.unsqueeze(1).expand(b, k)
        valid = torch.isfinite(log_p.gather(1, pick))
        if self.training:
            self.contrastive_step(sims, true, pick, positives, drawn, is_head, model, table)
            self.steps += 1
        heads, tails = with_sides(positives, drawn, is_head)
        return [Negatives(head=heads, tail=tails, weight=valid.float(),
                          corrupted_head=is_head)]

    def contrastive_step(self, sims: Tensor, true: Tensor, pick: Tensor,
                         positives: Tensor, drawn: Tensor, is_head: Tensor,
                         model: ModelView, table: TableView) -> None:
        """One Adam step of the attention on the contrastive term."""
        scores = candidate_scores(model, table, positives, drawn, is_head)
        adversarial = torch.softmax(scores * self.adversarial_temperature, -1)
        weight = torch.full(true.shape, 1.0 / self.pool, device=sims.device)
        weight = weight.scatter(1, pick, adversarial / self.pool)
        mass = sims.exp() * weight.unsqueeze(1)                         # [B, M, P]
        inside = (mass * true.unsqueeze(1)).sum((0, 2))
        outside = (mass * (~true).unsqueeze(1)).sum((0, 2))
        terms = torch.where(inside > 0, -torch.log(inside.clamp_min(1e-30) / outside), 0.0)
        loss = terms.sum() / (terms.numel() * self.loss_rate)
        self.optimizer.zero_grad(set_to_none=True)
        if loss.requires_grad:
            loss.backward()
            self.optimizer.step()
        self._stats = {"mmrns/contrastive_loss": loss.detach()}

    @classmethod
    def from_config(cls, config: "TrainConfig", data: "HeteroData") -> "MMRNSSampler":
        inputs = SamplerInputs.of(config, data)
        index = inputs.train_filter()
        torch.manual_seed(config.seed)
        relation_dim = make_scorer(config.scorer).relation_dim(config.dim)
        return cls(inputs.entities, num_modalities(config, data), config.dim,
                   relation_dim, config.num_negatives, index, config.mmrns_pool,
                   config.mmrns_temperature, config.mmrns_lr, config.mmrns_loss_rate,
                   config.adversarial_temperature)
