"""Negative samplers sharing one interface (:class:`NegativeSampler`); each
``--sampler`` name's builder is in :mod:`dhns_geo.sampling.registry`."""

from dhns_geo.sampling.base import NegativeSampler, Negatives
from dhns_geo.sampling.corruption import (BernoulliSampler, CorruptionSampler,
                                          UniformSampler, bernoulli_head_prob)
from dhns_geo.sampling.kbgan import KBGANSampler
from dhns_geo.sampling.mans import MANSSampler
from dhns_geo.sampling.mmrns import MMRNSSampler
from dhns_geo.sampling.nscaching import NSCachingSampler
from dhns_geo.sampling.sans import SANSSampler

__all__ = ["NegativeSampler", "Negatives", "BernoulliSampler",
           "CorruptionSampler", "UniformSampler", "bernoulli_head_prob",
           "KBGANSampler", "MANSSampler", "MMRNSSampler", "NSCachingSampler",
           "SANSSampler"]
