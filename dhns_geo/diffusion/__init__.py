"""DiffHEG and the DHNS sampler."""

from dhns_geo.diffusion.denoiser import (ConditionalDenoiser, GroupedLinear,
                                         timestep_embedding)
from dhns_geo.diffusion.dhns import DHNSSampler, DiffHEG, default_levels
from dhns_geo.diffusion.schedule import DiffusionSchedule

__all__ = ["ConditionalDenoiser", "GroupedLinear", "timestep_embedding",
           "DHNSSampler", "DiffHEG", "default_levels", "DiffusionSchedule"]

from dhns_geo.diffusion.mining import (SIDES, mine_hard_negatives,  # noqa: E402
                                       train_generator)

__all__ += ["SIDES", "mine_hard_negatives", "train_generator"]
