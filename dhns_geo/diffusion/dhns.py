"""DHNS: Diffusion-based Hierarchical Negative Sampling (Niu & Zhang, 2025).

:class:`DiffHEG` is a conditional DDPM over per-modality entity embeddings;
:class:`DHNSSampler` trains it on every batch and turns the embeddings it
holds at several reverse-diffusion steps into negatives of graded hardness,
each level with its own NTAT margin factor and loss weight.
"""

from __future__ import annotations

import functools
import math
from typing import Any, Sequence

import torch
from torch import Tensor, nn

from dhns_geo.diffusion.denoiser import ConditionalDenoiser
from dhns_geo.diffusion.schedule import DiffusionSchedule
from dhns_geo.errors import DHNSError
from dhns_geo.nn.model import EntityTable, KGCModel
from dhns_geo.sampling.base import NegativeSampler, Negatives, SelfTrainingSampler
from dhns_geo.sampling.corruption import CorruptionSampler
from dhns_geo.sampling.inputs import num_modalities


def modality_rms(x: Tensor, mask: Tensor) -> Tensor:
    """``[M]`` root mean square of each modality's rows ``x`` ``[M, R, d]``,
    over the rows that ``mask`` ``[M, R]`` keeps (what ``normalize`` divides
    by)."""
    rows = mask.sum(1).clamp_min(1) * x.size(-1)
    return ((x.pow(2).sum(-1) * mask).sum(1) / rows).sqrt()


def default_levels(num_steps: int) -> list[int]:
    """Hardness levels ``1, T/10, T/8, T/4, T/2`` (hardest first)."""
    return [max(1, s) for s in (1, num_steps // 10, num_steps // 8,
                                num_steps // 4, num_steps // 2)]


class DiffHEG(nn.Module):
    """Diffusion-based Hierarchical Embedding Generation.

    Args:
        num_modalities: ``M`` (structural, then feature modalities).
        dim: Embedding size ``d``.
        num_steps: Diffusion steps ``T``.
        beta_start: First beta of the linear schedule.
        beta_end: Last beta of the linear schedule.
        hidden: The denoiser's hidden width (default ``4 * dim``).
    """

    def __init__(self, num_modalities: int, dim: int, num_steps: int = 50,
                 beta_start: float = 1e-4, beta_end: float = 0.02,
                 hidden: int | None = None) -> None:
        super().__init__()
        self.schedule = DiffusionSchedule(num_steps, beta_start, beta_end)
        self.denoiser = ConditionalDenoiser(num_modalities, dim, num_steps, hidden)

    @property
    def num_steps(self) -> int:
        return self.schedule.num_steps

    def errors(self, x0: Tensor, cond: Tensor,
               generator: torch.Generator) -> Tensor:
        """``[M, n]`` L1 errors (mean over ``d``) between true and predicted
        noise at uniform random steps.

        Args:
            x0: ``[M, n, d]`` clean embeddings.
            cond: ``[M, n, d]`` conditions.
        """
        n = x0.size(1)
        t = torch.randint(1, self.num_steps + 1, (n,), generator=generator,
                          device=x0.device)
        noise = torch.randn(x0.shape, generator=generator, device=x0.device)
        pred = self.denoiser(self.schedule.q_sample(x0, t, noise), t, cond)
        return (pred - noise).abs().mean(dim=-1)

    @staticmethod
    def reduce(errors: Tensor, mask: Tensor | None = None, groups: int = 0) -> Tensor:
        """The loss of ``[M, n]`` errors.

        Args:
            mask: ``[M, n]`` bool, rows that count (entities that have the
                modality).
            groups: ``0``: the mean over all rows that count; ``g > 0``: the
                rows of each modality are ``g`` equal groups (tails, heads),
                and the loss is the sum of the ``M * g`` group means, as the
                authors' trainer adds one loss per modality and side.
        """
        mask = torch.ones_like(errors, dtype=torch.bool) if mask is None else mask
        if groups:
            errors, mask = errors.unflatten(1, (groups, -1)), mask.unflatten(1, (groups, -1))
            return ((errors * mask).sum(-1) / mask.sum(-1).clamp_min(1)).sum()
        return (errors * mask).sum() / mask.sum().clamp_min(1)

    def loss(self, x0: Tensor, cond: Tensor, generator: torch.Generator,
             mask: Tensor | None = None) -> Tensor:
        """The mean of :meth:`errors` over the rows that count (``mask``)."""
        return self.reduce(self.errors(x0, cond, generator), mask)

    def step_grid(self, keep: Sequence[int], strided: bool) -> list[int]:
        """Steps visited by the reverse chain, from ``T`` down to
        ``min(keep)``: every step (DDPM), or only ``T`` and ``keep`` (DDIM)."""
        low = min(keep)
        if not strided:
            return list(range(self.num_steps, low - 1, -1))
        return sorted({self.num_steps, *keep}, reverse=True)

    @torch.no_grad()
    def sample(self, cond: Tensor, keep: Sequence[int],
               generator: torch.Generator, strided: bool = True,
               paired: bool = False) -> dict[int, Tensor]:
        """Runs the reverse chain from Gaussian noise and keeps ``x_t`` for
        ``t`` in ``keep``.

        Args:
            cond: ``[M, n, d]`` conditions.
            keep: Steps to keep (``1 <= t <= T``).
            strided: DDIM steps over the kept steps only, instead of every
                DDPM step.
            paired: The authors' sampler (``DiffHEG.sample`` in
                github.com/ngl567/DHNS): the rows are ``[tails; heads]`` of
                the same positives, and every reverse step of a head starts
                from its tail chain's current sample (after the tail's step
                at ``t``), not from the head's own previous sample; the kept
                head at ``t`` is that step's output.

        Returns:
            ``{t: [M, n, d]}``.
        """
        self._check_steps(keep)
        grid = self.step_grid(keep, strided)
        x = torch.randn(cond.shape, generator=generator, device=cond.device)
        halves = cond.chunk(2, dim=1) if paired else (cond,)
        conditions = [self.denoiser.condition(c) for c in halves]
        step = functools.partial(self._reverse_step, grid=grid, strided=strided,
                                 generator=generator)
        out = {}
        if grid[0] in keep:
            out[grid[0]] = x
        if paired:
            x = x.chunk(2, dim=1)[0]                 # the tail chain
        for i in range(len(grid) - 1):
            x = step(x, i, conditions[0])
            if grid[i + 1] in keep:           # heads never chain: step only here
                out[grid[i + 1]] = (torch.cat([x, step(x, i, conditions[1])], dim=1)
                                    if paired else x)
        return out

    def _check_steps(self, keep: Sequence[int]) -> None:
        if not keep or min(keep) < 1 or max(keep) > self.num_steps:
            raise DHNSError(f"levels must lie in [1, {self.num_steps}], got "
                            f"{list(keep)}")

    def _reverse_step(self, x: Tensor, i: int, condition: Any, grid: list[int],
                      strided: bool, generator: torch.Generator) -> Tensor:
        """``x`` at step ``grid[i]`` -> ``grid[i + 1]`` (DDIM) or one step
        below (DDPM)."""
        t = grid[i]
        eps = self.denoiser.denoise(x, t, condition)
        if strided:
            return self.schedule.ddim_step(x, t, grid[i + 1], eps)
        noise = torch.randn(x.shape, generator=generator, device=x.device)
        return self.schedule.ddpm_step(x, t, eps, noise)


class DHNSSampler(SelfTrainingSampler):
    """Hierarchical negatives from :class:`DiffHEG` plus a base sampler's.

    On each batch the generator takes ``generator_steps`` Adam steps on the
    (detached) modality embeddings of the positives, for the tail given
    ``(h, r)`` and the head given ``(t, r)``; then it samples, and for every
    level ``i`` with ``level_weights[i] > 0`` it emits three negatives per
    positive, ``(h~, r, t)``, ``(h, r, t~)`` and ``(h~, r, t~)``, where ``h~``
    and ``t~`` are the model's fusion of the generated modality embeddings
    (detached). Their margin factor is ``margin_factors[i]`` and their loss
    weight ``mu * level_weights[i] / #non-zero weights`` (NTAT).

    Args:
        base: The sampler of the ordinary negatives (e.g. uniform).
        num_modalities: ``M`` of the model.
        dim: Embedding size of the model.
        num_steps: Diffusion steps ``T``.
        levels: Hardness steps (default :func:`default_levels`).
        level_weights: Loss weight per level.
        margin_factors: Margin factor per level.
        mu: Weight of the DHNS loss.
        generator_steps: Generator updates per batch.
        lr: Learning rate of the generator's Adam.
        strided: DDIM sampling over the kept steps (fast) instead of the
            full DDPM chain.
        normalize: Run the diffusion on embeddings divided by each
            modality's root mean square over the batch (and scale the
            samples back), so that the unit Gaussian the reverse chain
            starts from matches the data's scale. Off, as in the authors'
            code, embeddings far smaller than the noise come out far from
            every real entity (see the README's investigation).
        generator_grad: ``detached``: the diffusion loss trains the
            generator only. ``model``: as in the authors' trainer
            (``Trainer_dhns.py``), it is computed on the model's own
            embeddings, summed over modalities and both sides, and its
            gradient is added to the model's gradient of the step (the
            generator still steps on the mean, which Adam treats alike).
        share: The share of each batch's positives (the first, batches being
            shuffled) that the generator trains on and generates negatives
            for; the rest get the base sampler's negatives only. ``1`` (the
            default) is the method as published; lower values trade fidelity
            for time (the generator's work scales with it).
        guard: Drop each generated negative that the model scores at least
            as high as its positive (a likely false negative; see
            :class:`~dhns_geo.sampling.Negatives`).
        width: The denoiser's hidden width as a multiple of ``dim`` (``4``,
            the default, as published). A width of ``1`` does about a third
            of the generator's multiply-adds (training ``(4w + 1) d^2`` per
            row, each reverse step ``(2w + 1) d^2``); a narrower denoiser
            trades fidelity for time.
        authors_sampling: The authors' sampler: each head's reverse step
            starts from the tail chain's current sample (see
            :meth:`DiffHEG.sample`), and each of the three corruptions of a
            level is a loss of its own (fixed weights 1/3) instead of one
            group weighted by the self-adversarial softmax.
    """

    def __init__(self, base: NegativeSampler, num_modalities: int, dim: int,
                 num_steps: int = 50, levels: Sequence[int] | None = None,
                 level_weights: Sequence[float] = (0.0, 0.5, 1.0, 1.0, 0.5),
                 margin_factors: Sequence[float] = (0.1, 0.3, 0.5, 0.7, 0.9),
                 mu: float = 0.01, generator_steps: int = 1, lr: float = 1e-3,
                 strided: bool = True, normalize: bool = False,
                 generator_grad: str = "detached",
                 authors_sampling: bool = False, share: float = 1.0,
                 guard: bool = False, width: float = 4.0) -> None:
        super().__init__()
        levels = list(levels) if levels is not None else default_levels(num_steps)
        if not len(levels) == len(level_weights) == len(margin_factors):
            raise DHNSError("levels, level weights and margin factors must "
                            f"have the same length, got {len(levels)}, "
                            f"{len(level_weights)}, {len(margin_factors)}")
        if min(levels) < 1 or max(levels) > num_steps:
            raise DHNSError(f"levels must lie in [1, {num_steps}], got {levels}")
        if not any(w > 0 for w in level_weights):
            raise DHNSError("at least one level weight must be positive")
        if generator_grad not in ("detached", "model"):
            raise DHNSError("generator_grad must be detached or model, got "
                            f"{generator_grad!r}")
        if width <= 0:
            raise DHNSError(f"width must be positive, got {width}")
        self.base = base
        self.diffheg = DiffHEG(num_modalities, dim, num_steps,
                               hidden=max(1, round(width * dim)))
        self.levels, self.level_weights = levels, list(level_weights)
        self.margin_factors = list(margin_factors)
        self.mu, self.generator_steps, self.strided = mu, generator_steps, strided
        self.normalize = normalize
        self.generator_grad, self.authors_sampling = generator_grad, authors_sampling
        if not 0 < share <= 1:
            raise DHNSError(f"share must be in (0, 1], got {share}")
        self.share, self.guard = share, guard
        self.optimizer = torch.optim.Adam(self.diffheg.parameters(), lr=lr, fused=True)
        # Which sides of (h~, r, t), (h, r, t~), (h~, r, t~) are the positive's.
        self.register_buffer("own", torch.tensor([[False, True], [True, False],
                                                  [False, False]]), persistent=False)

    @classmethod
    def from_config(cls, config: Any, base: NegativeSampler,
                    num_modalities: int) -> "DHNSSampler":
        return cls(base, num_modalities, config.dim, config.dhns_steps,
                   config.dhns_levels, config.dhns_level_weights,
                   config.dhns_margin_factors, config.dhns_mu,
                   config.dhns_generator_steps, config.dhns_lr,
                   config.dhns_sampling == "strided", config.dhns_normalize,
                   config.dhns_generator_grad, config.dhns_authors_sampling,
                   config.dhns_share, config.dhns_guard, config.dhns_width)

    @classmethod
    def from_run(cls, config: Any, data: Any,
                 base: NegativeSampler | None = None) -> "DHNSSampler":
        """The sampler of a run's ``dhns_*`` options (their defaults when
        the run had another sampler) for its data, around ``base`` (default:
        the run's uniform corruption)."""
        if base is None:
            base = CorruptionSampler.from_config(config, data)
        return cls.from_config(config, base, num_modalities(config, data))

    def step_stats(self) -> dict[str, Tensor]:
        loss = getattr(self, "_generator_loss", None)
        return {} if loss is None else {"dhns/generator_loss": loss}

    @property
    def active_levels(self) -> list[int]:
        """Indices of the levels whose loss weight is positive."""
        return [i for i, w in enumerate(self.level_weights) if w > 0]

    def loss_weight(self, level: int) -> float:
        """NTAT weight of level ``level``'s loss: ``mu * level weight /
        number of active levels``."""
        return self.mu * self.level_weights[level] / len(self.active_levels)

    def _inputs(self, positives: Tensor, model: KGCModel,
                table: EntityTable) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """Targets, conditions ``[M, 2B, d]``, mask ``[M, 2B]`` and the
        scale ``[M, 1, 1]`` they were divided by (ones unless
        ``normalize``): the first ``B`` rows are tails given ``(h, r)``, the
        last ``B`` heads given ``(t, r)``. They carry the model's graph
        only where grad mode is on."""
        h, r, t = positives.unbind(dim=1)
        x_h, m_h = table.modalities(h)                  # [B, M, d], [B, M]
        x_t, m_t = table.modalities(t)
        rel = model.relations(r).unsqueeze(1)           # [B, 1, d_r]
        cond = torch.cat([model.scorer.compose(x_h, rel, "tail"),
                          model.scorer.compose(x_t, rel, "head")]).transpose(0, 1)
        target = torch.cat([x_t, x_h]).transpose(0, 1)
        mask = torch.cat([m_t, m_h]).t()
        if not self.normalize:
            return target, cond, mask, target.new_ones(target.size(0), 1, 1)
        scale = modality_rms(target, mask).clamp_min(1e-12).view(-1, 1, 1)
        return target / scale, cond / scale, mask, scale

    def fit_generator(self, positives: Tensor, model: KGCModel,
                      table: EntityTable, generator: torch.Generator) -> Tensor:
        """``generator_steps`` updates of DiffHEG on a batch; returns the
        last loss (a 0-dim tensor on the device, not read back)."""
        into_model = self.generator_grad == "model"
        with torch.set_grad_enabled(into_model):
            target, cond, mask, _ = self._inputs(positives, model, table)
        self.diffheg.train()
        for _ in range(self.generator_steps):
            errors = self.diffheg.errors(target, cond, generator)
            loss = self.diffheg.reduce(errors, mask)
            self.optimizer.zero_grad(set_to_none=True)
            if into_model:
                self._add_model_gradient(self.diffheg.reduce(errors, mask, 2), model)
            loss.backward(inputs=list(self.diffheg.parameters()),
                          retain_graph=into_model)
            self.optimizer.step()
        return loss.detach()

    @staticmethod
    def _add_model_gradient(loss: Tensor, model: KGCModel) -> None:
        """Adds ``d loss / d theta`` to the ``.grad`` of the model's
        parameters ``theta`` (kept for the step's KGC backward)."""
        params = [p for p in model.parameters() if p.requires_grad]
        grads = torch.autograd.grad(loss, params, retain_graph=True,
                                    allow_unused=True)
        for p, g in zip(params, grads):
            if g is not None:
                p.grad = g if p.grad is None else p.grad + g

    @torch.no_grad()
    def generate(self, positives: Tensor, model: KGCModel, table: EntityTable,
                 generator: torch.Generator,
                 levels: Sequence[int] | None = None) -> dict[int, tuple[Tensor, Tensor]]:
        """Generated entities per level.

        Returns:
            ``{level index: (head [B, d], tail [B, d])}``: the fused
            generated head given ``(t, r)`` and tail given ``(h, r)``.
        """
        levels = levels if levels is not None else self.active_levels
        _, cond, _, scale = self._inputs(positives, model, table)
        self.diffheg.eval()
        samples = self.diffheg.sample(cond, [self.levels[i] for i in levels],
                                      generator, self.strided,
                                      paired=self.authors_sampling)
        b = positives.size(0)
        out = {}
        for i in levels:
            x = (samples[self.levels[i]] * scale).transpose(0, 1)   # [2B, M, d]
            fused = model.fusion(x)
            out[i] = (fused[b:], fused[:b])
        return out

    def level_negatives(self, positives: Tensor, model: KGCModel,
                        table: EntityTable, generator: torch.Generator,
                        batch_size: int | None = None) -> list[Negatives]:
        """One group per active level (in :attr:`active_levels` order) of
        negatives ``(h~, r, t)``, ``(h, r, t~)``, ``(h~, r, t~)`` of the
        ``B`` positives, with the level's margin factor and loss weight (with
        ``authors_sampling``: three groups of one column per level, each a
        third of the weight). ``head``/``tail`` hold the generated
        ``[B, 3, d]`` embeddings; the real sides are the positive's own
        (``own``).

        Args:
            batch_size: ``b >= B``: the groups then cover a batch whose first
                ``B`` positives are ``positives``; the other rows get weight
                0 (no negative term). Default ``B``.
        """
        n = positives.size(0)
        b = n if batch_size is None else batch_size
        parts = 3 if self.authors_sampling else 1
        weights: Sequence[Tensor | None] = [None] * parts
        if b > n:
            covered = (torch.arange(b, device=positives.device) < n).float()
            weights = covered.unsqueeze(1).expand(b, 3).chunk(parts, dim=1)
        groups = []
        for i, (gen_h, gen_t) in self.generate(positives, model, table,
                                               generator).items():
            heads = gen_h.unsqueeze(1).expand(-1, 3, -1).chunk(parts, dim=1)
            tails = gen_t.unsqueeze(1).expand(-1, 3, -1).chunk(parts, dim=1)
            groups += [Negatives(head=hd, tail=tl, margin_factor=self.margin_factors[i],
                                 weight=w, loss_weight=self.loss_weight(i) / parts,
                                 name=f"dhns/score_level_t{self.levels[i]}",
                                 guard=self.guard, own=o)
                       for hd, tl, o, w in zip(heads, tails, self.own.chunk(parts),
                                               weights)]
        return groups

    def served(self, positives: Tensor) -> Tensor:
        """The positives the generator trains on and generates for: the
        first ``share`` of the batch (batches are shuffled), at least one."""
        return positives[:max(1, math.ceil(self.share * positives.size(0)))]

    def sample(self, positives: Tensor, model: KGCModel, table: EntityTable,
               generator: torch.Generator) -> list[Negatives]:
        groups = self.base.sample(positives, model, table, generator)
        b = positives.size(0)
        chosen = self.served(positives)
        if self.training:
            self._generator_loss = self.fit_generator(chosen, model, table, generator)
        return groups + self.level_negatives(chosen, model, table, generator, b)
