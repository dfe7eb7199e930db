"""The DDPM noise schedule, forward noising and reverse steps."""

from __future__ import annotations

import torch
from torch import Tensor, nn


class DiffusionSchedule(nn.Module):
    r"""Linear beta schedule over steps ``t = 1..T``.

    ``beta_t`` goes linearly from ``beta_start`` (``t = 1``) to ``beta_end``
    (``t = T``); :math:`\bar\alpha_t = \prod_{s \le t} (1 - \beta_s)` and
    :math:`\bar\alpha_0 = 1`. Tensors are indexed by ``t`` (entry 0 is
    ``t = 0``).

    Args:
        num_steps: ``T``.
        beta_start: ``beta_1``.
        beta_end: ``beta_T``.
    """

    def __init__(self, num_steps: int = 50, beta_start: float = 1e-4,
                 beta_end: float = 0.02) -> None:
        super().__init__()
        self.num_steps = num_steps
        betas = torch.cat([torch.zeros(1, dtype=torch.float64),
                           torch.linspace(beta_start, beta_end, num_steps,
                                          dtype=torch.float64)])
        alpha_bar = torch.cumprod(1 - betas, dim=0)
        for name, value in (("betas", betas), ("alpha_bar", alpha_bar)):
            self.register_buffer(name, value.float(), persistent=False)

    def q_sample(self, x0: Tensor, t: Tensor, noise: Tensor) -> Tensor:
        r"""Noisy :math:`x_t = \sqrt{\bar\alpha_t} x_0 + \sqrt{1 -
        \bar\alpha_t}\,\epsilon` of ``[..., n, d]`` data at steps ``t [n]``."""
        ab = self.alpha_bar[t].unsqueeze(-1)
        return ab.sqrt() * x0 + (1 - ab).sqrt() * noise

    def ddpm_step(self, x_t: Tensor, t: int, eps: Tensor, noise: Tensor) -> Tensor:
        r"""Ancestral step ``t -> t - 1`` (Ho et al., 2020) with the
        posterior variance :math:`\tilde\beta_t`."""
        beta, ab, ab_prev = self.betas[t], self.alpha_bar[t], self.alpha_bar[t - 1]
        mean = (x_t - beta / (1 - ab).sqrt() * eps) / (1 - beta).sqrt()
        var = beta * (1 - ab_prev) / (1 - ab)
        return mean + var.sqrt() * noise if t > 1 else mean

    def ddim_step(self, x_t: Tensor, t: int, t_prev: int, eps: Tensor) -> Tensor:
        """Deterministic DDIM step ``t -> t_prev`` (Song et al., 2021)."""
        ab, ab_prev = self.alpha_bar[t], self.alpha_bar[t_prev]
        x0 = (x_t - (1 - ab).sqrt() * eps) / ab.sqrt()
        return ab_prev.sqrt() * x0 + (1 - ab_prev).sqrt() * eps
