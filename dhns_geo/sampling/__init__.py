"""Negative samplers sharing one interface (:class:`NegativeSampler`)."""

from dhns_geo.sampling.base import NegativeSampler, Negatives
from dhns_geo.sampling.corruption import (BernoulliSampler, CorruptionSampler,
                                          UniformSampler, bernoulli_head_prob)

__all__ = ["NegativeSampler", "Negatives", "BernoulliSampler",
           "CorruptionSampler", "UniformSampler", "bernoulli_head_prob"]
