"""Named sets of :class:`~dhns_geo.config.TrainConfig` values.

``dhns train --preset NAME`` starts from a preset; a ``--config`` file and
flags override it. In Python: ``TrainConfig(**PRESETS[NAME], dataset=...)``.
"""

from __future__ import annotations

from typing import Any

#: The released ``train_dhns.py`` of github.com/ngl567/DHNS (MKG-Y, DistMult,
#: ``Trainer_dhns``, ``mmmodules_distmult.DiffHEG``), option by option.
AUTHORS_DISTMULT: dict[str, Any] = {
    "scorer": "distmult", "dim": 1024, "batch_size": 2000, "num_negatives": 64,
    "shared_negatives": False,           # each positive draws its own
    "filter_negatives": True,            # their loader's filter_flag=1
    "lr": 0.002, "epochs": 400,
    # SigmoidLoss(adv_temperature=0.5): the logistic loss with
    # self-adversarial weights and no margin. Their margin 200 and epsilon 2
    # only set DistMult's uniform init range, (200 + 2) / dim.
    "loss": "self-adversarial", "adversarial_temperature": 0.5, "margin": 0.0,
    "regularizer": "l3", "reg_weight": 5e-6,
    "sampler": "dhns", "dhns_mu": 0.01, "dhns_lr": 0.002, "dhns_steps": 50,
    "dhns_generator_steps": 1,           # g_epoch=10, but its loop returns after one
    "dhns_generator_grad": "model",      # diff_loss.backward() reaches the model
    "dhns_sampling": "full",             # the 50-step DDPM chain
    "dhns_authors_sampling": True,       # heads stepped from the tail chain
    "eval_every": 20, "patience": 5,
    "lr_plateau_factor": 1.0,            # a constant rate
}

#: The defaults of 0.2, pinned (issue 13; benchmarks/results/defaults):
#: 1024 negatives drawn once per batch and shared by its positives, chosen on
#: valid over MKG-Y, MKG-W and DB15K against the 0.1 defaults and K 64 pools,
#: at a constant learning rate (0.3 halves it after an evaluation without gain).
FAST: dict[str, Any] = {
    "dim": 256, "num_negatives": 1024, "batch_size": 1024, "lr": 0.02,
    "shared_negatives": True, "lr_plateau_factor": 1.0,
}

#: The defaults of 0.1: 32 negatives drawn per positive, dim 128, batch 512,
#: Adam 0.005 (several times slower to a good model; see the README).
CLASSIC: dict[str, Any] = {
    "dim": 128, "num_negatives": 32, "batch_size": 512, "lr": 0.005,
    "shared_negatives": False, "lr_plateau_factor": 1.0,
}

PRESETS: dict[str, dict[str, Any]] = {"authors-distmult": AUTHORS_DISTMULT,
                                      "fast": FAST, "classic": CLASSIC}
