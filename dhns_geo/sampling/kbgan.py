"""KBGAN: a generator KGE model picks the negatives, trained by REINFORCE.

Cai & Wang, "KBGAN: Adversarial Learning for Knowledge Graph Embeddings",
NAACL 2018 (official code: github.com/cai-lw/KBGAN).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dhns_geo.data.filter import FilterIndex
from dhns_geo.nn.scorers import make_scorer
from dhns_geo.sampling.base import (ModelView, Negatives, SelfTrainingSampler,
                                    TableView, candidate_scores,
                                    corrupted_sides, gumbel_noise, known_mask,
                                    with_sides)
from dhns_geo.sampling.corruption import bernoulli_head_prob
from dhns_geo.sampling.inputs import SamplerInputs

if TYPE_CHECKING:
    from torch_geometric.data import HeteroData

    from dhns_geo.config import TrainConfig

GENERATORS = ("distmult", "complex")


class GeneratorModel(nn.Module):
    """KBGAN's generator: a small DistMult or ComplEx of its own.

    Args:
        num_entities: ``N``.
        num_relations: ``R``.
        dim: Embedding size (real numbers).
        scorer: ``distmult`` or ``complex``.
    """

    def __init__(self, num_entities: int, num_relations: int, dim: int,
                 scorer: str = "distmult") -> None:
        super().__init__()
        self.scorer = make_scorer(scorer)
        self.entities = nn.Embedding(num_entities, dim)
        self.relations = nn.Embedding(num_relations, self.scorer.relation_dim(dim))
        nn.init.xavier_uniform_(self.entities.weight)
        self.scorer.init_relations(self.relations.weight.data)

    def logits(self, positives: Tensor, candidates: Tensor, is_head: Tensor) -> Tensor:
        """Scores ``[B, C]`` of the positives with their corrupted side
        replaced by ``candidates`` ``[B, C]`` (``is_head`` ``[B, 1]`` or ``[B, C]``)."""
        h, r, t = positives.unbind(1)
        rel = self.relations(r)
        query = torch.where(is_head[:, :1], self.scorer.compose(self.entities(t), rel, "head"),
                            self.scorer.compose(self.entities(h), rel, "tail"))
        # One [B, N] product at the generator's small dimension, then the
        # candidates' columns.
        return self.scorer.match_all(query, self.entities.weight).gather(1, candidates)


class KBGANSampler(SelfTrainingSampler):
    """Each negative is the generator's pick among ``Ns`` uniform candidates.

    For each of the ``K`` negatives of a positive, ``Ns`` uniform entities
    are candidates for its corrupted side (the relation's Bernoulli side,
    one per positive); the generator draws one from
    ``softmax(generator score / tau)``. After the draw the generator takes
    one REINFORCE step: the reward of a pick is the trained model's score
    of the negative (no gradient), minus a moving baseline (the mean reward
    of the picks so far, an exponential average); the generator's loss is
    ``-mean((reward - baseline) * log p(pick))``.

    Cost per step beside uniform: the generator's ``[B, K, Ns]`` scores
    (forward and backward, at the generator's small dimension) and one
    ``[B, K]`` score matrix of the trained model.

    Differs from the paper in:

    * ``K`` negatives per positive, each the pick of its own ``Ns``
      candidates (the paper picks one);
    * the baseline is an exponential moving average of the rewards (decay
      ``0.99``) instead of the previous epoch's mean reward;
    * the trained model is not pretrained (the generator can be:
      ``pretrain_epochs``); filtered candidates (known training triples)
      get probability 0.

    Args:
        num_entities: ``N``.
        num_relations: ``R``.
        num_negatives: ``K``.
        head_prob: ``[R]`` probability of corrupting the head.
        candidates: ``Ns`` (20, as published).
        temperature: ``tau`` of the generator's softmax (1).
        generator: ``distmult`` (as published) or ``complex``.
        dim: The generator's embedding size (50).
        lr: Its Adam learning rate (``1e-3``, Adam's default in the code).
        filter_index: Known true triples to keep out.
    """

    def __init__(self, num_entities: int, num_relations: int, num_negatives: int,
                 head_prob: Tensor, candidates: int = 20, temperature: float = 1.0,
                 generator: str = "distmult", dim: int = 50, lr: float = 1e-3,
                 filter_index: FilterIndex | None = None) -> None:
        super().__init__()
        self.num_entities, self.num_negatives = num_entities, num_negatives
        self.candidates, self.temperature = candidates, temperature
        self.filter_index = filter_index
        self.generator_model = GeneratorModel(num_entities, num_relations, dim, generator)
        self.optimizer = torch.optim.Adam(self.generator_model.parameters(), lr=lr)
        self.register_buffer("head_prob", head_prob.float(), persistent=False)
        self.register_buffer("baseline", torch.zeros(()))
        self.register_buffer("rewards_seen", torch.zeros((), dtype=torch.long))
        self._stats: dict[str, Tensor] = {}

    def draw(self, positives: Tensor, generator: torch.Generator
             ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """``(picks [B, K], is_head [B, K], log p(pick) [B, K], valid [B, K])``:
        the generator's draws (``valid``: not a filtered known triple)."""
        b, k, device = positives.size(0), self.num_negatives, positives.device
        is_head = corrupted_sides(positives, self.head_prob, k, generator, per_row=True)
        cand = torch.randint(0, self.num_entities, (b, k * self.candidates),
                             generator=generator, device=device)
        flags = is_head[:, :1].expand_as(cand)
        logits = self.generator_model.logits(positives, cand, flags) / self.temperature
        if self.filter_index is not None:
            logits = logits.masked_fill(known_mask(positives, cand, flags,
                                                   self.filter_index), float("-inf"))
        logits = logits.view(b, k, self.candidates)
        log_p = torch.log_softmax(logits, dim=-1)
        choice = (log_p.detach() + gumbel_noise(log_p.shape, generator, device)).argmax(-1)
        picks = cand.view(b, k, self.candidates).gather(2, choice.unsqueeze(-1)).squeeze(-1)
        chosen = log_p.gather(2, choice.unsqueeze(-1)).squeeze(-1)
        return picks, is_head, chosen, torch.isfinite(chosen)

    def sample(self, positives: Tensor, model: ModelView, table: TableView,
               generator: torch.Generator) -> list[Negatives]:
        picks, is_head, log_p, valid = self.draw(positives, generator)
        if self.training:
            reward = candidate_scores(model, table, positives, picks, is_head)
            self.reinforce(log_p, reward, valid)
        heads, tails = with_sides(positives, picks, is_head)
        weight = None if self.filter_index is None else valid.float()
        return [Negatives(head=heads, tail=tails, weight=weight,
                          corrupted_head=is_head)]

    def reinforce(self, log_p: Tensor, reward: Tensor, valid: Tensor) -> Tensor:
        """One REINFORCE step of the generator on picks with ``log p``
        ``[B, K]`` and ``reward`` ``[B, K]`` (detached); updates the moving
        baseline; returns the generator's loss."""
        reward = reward.detach().masked_fill(~valid, 0.0)
        advantage = torch.where(valid, reward - self.baseline, 0.0)
        loss = -(advantage * log_p.masked_fill(~valid, 0.0)).sum() / valid.sum().clamp_min(1)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        mean = reward.sum() / valid.sum().clamp_min(1)
        first = self.rewards_seen == 0
        self.baseline.copy_(torch.where(first, mean, 0.99 * self.baseline + 0.01 * mean))
        self.rewards_seen += 1
        self._stats = {"kbgan/generator_loss": loss.detach(),
                       "kbgan/reward": mean.detach()}
        return loss.detach()

    def pretrain(self, train: Tensor, epochs: int, batch_size: int,
                 generator: torch.Generator) -> None:
        """Pretrains the generator on ``[E, 3]`` triples for ``epochs``: the
        cross-entropy of each positive against ``Ns`` uniform candidates of
        a corrupted side."""
        model = self.generator_model
        for _ in range(epochs):
            order = torch.randperm(train.size(0), generator=generator)
            for batch in train[order].to(self.baseline.device).split(batch_size):
                b = batch.size(0)
                is_head = corrupted_sides(batch, self.head_prob, 1, generator)
                cand = torch.randint(0, self.num_entities, (b, self.candidates),
                                     generator=generator, device=batch.device)
                own = torch.where(is_head[:, 0], batch[:, 0], batch[:, 2])
                logits = model.logits(batch, torch.cat([own.unsqueeze(1), cand], 1),
                                      is_head)
                loss = F.cross_entropy(logits, torch.zeros(b, dtype=torch.long,
                                                           device=batch.device))
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                self.optimizer.step()

    @classmethod
    def from_config(cls, config: "TrainConfig", data: "HeteroData") -> "KBGANSampler":
        inputs = SamplerInputs.of(config, data)
        torch.manual_seed(config.seed)
        sampler = cls(inputs.entities, inputs.relations, config.num_negatives,
                      bernoulli_head_prob(inputs.train, inputs.relations),
                      config.kbgan_candidates, config.kbgan_temperature,
                      config.kbgan_generator, config.kbgan_dim, config.kbgan_lr,
                      inputs.filter_index)
        if config.kbgan_pretrain:
            sampler.pretrain(inputs.train, config.kbgan_pretrain, config.batch_size,
                             torch.Generator().manual_seed(config.seed))
        return sampler
