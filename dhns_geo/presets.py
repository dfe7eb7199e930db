"""Named sets of :class:`~dhns_geo.config.TrainConfig` values, each with its
source and the command that reproduces its row.

``dhns train --preset NAME`` starts from a preset; a ``--config`` file and
flags override it. ``dhns presets`` lists them. In Python:
``TrainConfig(**PRESETS[NAME].values, dataset=...)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Preset:
    """A named set of options.

    Attributes:
        values: The :class:`~dhns_geo.config.TrainConfig` values it sets.
        summary: What it is, in a line.
        source: Where its values come from: a paper and table, the authors'
            code, or the results file that chose it.
        row: The row it reproduces (or ``""``).
        data: The arguments a reproducing command adds (``--root DATA``,
            a dataset when the preset names none).
    """

    values: dict[str, Any]
    summary: str
    source: str
    row: str = ""
    data: str = "--root DATA"

    def command(self, name: str) -> str:
        """The command that reproduces its row."""
        return f"dhns train --preset {name} {self.data}".rstrip()

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

#: The defaults of 0.2, pinned (benchmarks/results/defaults):
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

#: RotatE on FB15k-237 as published (Sun et al., ICLR 2019, Table 5: MRR
#: .338, Hits@1 .241, Hits@10 .533): the authors' ``best_config.sh`` line
#: ``RotatE FB15k-237 ... 1024 256 1000 9.0 1.0 0.00005 100000 16 -de`` with
#: the ``-adv`` that their ``run.sh`` always passes. Hidden size 1000 with a
#: double entity embedding (``-de``) is 2000 real numbers; their score sums
#: the complex moduli (``rotate_p`` 1); each positive draws 256 negatives,
#: filtered against the train triples; 100,000 steps of 1024 are 376 epochs of
#: FB15k-237's 272,115 triples; the rate drops 10x at step 50,000 (their
#: warm-up end). They report the last model, so nothing stops early.
#: Not reproduced: their subsampling weights (a positive weighs
#: ``1/sqrt(#(h, r) + #(r, t))``) and their head/tail batches in turn.
ROTATE_FB15K237: dict[str, Any] = {
    "dataset": "FB15k-237", "features": "none",
    "scorer": "rotate", "rotate_p": 1.0, "dim": 2000,
    "batch_size": 1024, "num_negatives": 256, "shared_negatives": False,
    "filter_negatives": True, "loss": "self-adversarial",
    "adversarial_temperature": 1.0, "margin": 9.0,
    "optimizer": "adam", "lr": 5e-5, "lr_drop_at": 50000, "epochs": 376,
    "eval_every": 38, "patience": 100, "lr_plateau_factor": 1.0,
}

#: ComplEx-N3 on FB15k-237 as published (Lacroix et al., ICML 2018, Table 2:
#: MRR .37, Hits@10 .56 at rank 1000): their ``kbc`` README command
#: ``--model ComplEx --rank 1000 --optimizer Adagrad --learning_rate 1e-1
#: --batch_size 100 --regularizer N3 --reg 5e-2 --max_epochs 100 --valid 5``:
#: reciprocal relations, the cross-entropy of each query over all entities,
#: N3 on the batch's factors. Rank 1000 is 2000 real numbers.
COMPLEX_N3_FB15K237: dict[str, Any] = {
    "dataset": "FB15k-237", "features": "none",
    "scorer": "complex", "dim": 2000, "training": "1vsall", "reciprocal": True,
    "regularizer": "n3", "reg_weight": 0.05, "optimizer": "adagrad",
    "lr": 0.1, "batch_size": 100, "epochs": 100, "eval_every": 5,
    "patience": 100, "lr_plateau_factor": 1.0,
}

#: The ComplEx-N3 recipe on the multimodal benchmarks, structure only, at the
#: budget that runs on a 2-core CPU (benchmarks/results/published): rank 250,
#: the FB15k-237 optimisation settings, DB15K selected on its valid triples
#: that are not train triples.
COMPLEX_N3_MMKG: dict[str, Any] = {
    **COMPLEX_N3_FB15K237, "dim": 500, "eval_every": 2}

#: The convergence protocol of the sampler comparison (benchmarks/samplers.py)
#: at its MKG-W budget, structure only: RotatE dim 256, 64 negatives per
#: positive drawn for each positive, lr 0.05, the best epoch on valid. The
#: presets of the samplers that beat self-adversarial negatives add theirs.
ROTATE_SAMPLER_PROTOCOL: dict[str, Any] = {
    "dataset": "MKG-W", "features": "none", "scorer": "rotate", "dim": 256,
    "num_negatives": 64, "batch_size": 1024, "lr": 0.05, "epochs": 60,
    "shared_negatives": False, "eval_every": 1, "patience": 100,
    "lr_plateau_factor": 1.0,
}
NSCACHING_FILTERED: dict[str, Any] = {"sampler": "nscaching", "filter_negatives": True}

MMKG_SOURCE = ("the FB15k-237 recipe at rank 250 (benchmarks/results/published/runs.csv, "
               "docs: Published tables)")
GRID = "benchmarks/results/mmkg-sota/grid.md (chosen on seed-0 valid)"


#: The sampler comparison's settings on the datasets with textual features.
TEXT_DB15K: dict[str, Any] = {"dataset": "DB15K", "features": "textual", "lr": 0.01,
                              "epochs": 30, "select_on": "valid-unseen"}
TEXT_MKG_Y: dict[str, Any] = {"dataset": "MKG-Y", "features": "textual", "epochs": 30}


def sampler_preset(values: dict[str, Any], summary: str, gain: str, seeds: int,
                   row: str) -> Preset:
    """A sampler that beat self-adversarial negatives in the sampler
    comparison: its protocol plus ``values``, with the measured ``gain``."""
    results = "benchmarks/results/samplers"
    return Preset({**ROTATE_SAMPLER_PROTOCOL, **values}, summary,
                  f"{results}/paired.md ({gain} over self-adversarial negatives, {seeds} seeds)",
                  f"{row} ({seeds} seeds, {results}/runs.csv)")


def structure_only(dataset: str, epochs: int, test_mrr: float, **extra: Any) -> Preset:
    """The ComplEx-N3 recipe on a multimodal benchmark, structure only."""
    return Preset({**COMPLEX_N3_MMKG, "dataset": dataset, "epochs": epochs, **extra},
                  f"ComplEx-N3 on {dataset}, structure only, at a CPU budget", MMKG_SOURCE,
                  f"{dataset} test MRR {test_mrr} (benchmarks/results/published/runs.csv)")


PRESETS: dict[str, Preset] = {
    "authors-distmult": Preset(
        AUTHORS_DISTMULT, "the DHNS authors' released train_dhns.py, option by option",
        "github.com/ngl567/DHNS train_dhns.py (MKG-Y, DistMult)",
        data="--dataset MKG-Y --root DATA"),
    "fast": Preset(FAST, "the 0.2 defaults, pinned: 1024 shared negatives, a constant rate",
                   "benchmarks/results/defaults (chosen on valid over MKG-Y, MKG-W, DB15K)",
                   data="--dataset MKG-Y --root DATA"),
    "classic": Preset(CLASSIC, "the 0.1 defaults: 32 negatives per positive, dim 128",
                      "the 0.1 release", data="--dataset MKG-Y --root DATA"),
    "rotate-fb15k237": Preset(
        ROTATE_FB15K237, "RotatE on FB15k-237 as published",
        "Sun et al., ICLR 2019, Table 5; the authors' best_config.sh",
        "FB15k-237 test MRR .338, Hits@1 .241, Hits@10 .533 (published)"),
    "complex-n3-fb15k237": Preset(
        COMPLEX_N3_FB15K237, "ComplEx-N3 on FB15k-237 as published, rank 1000",
        "Lacroix et al., ICML 2018, Table 2; the kbc README command",
        "FB15k-237 test MRR .37, Hits@10 .56 (published)"),
    "complex-n3-mkg-y": structure_only("MKG-Y", 12, 0.376),
    "complex-dura-mkg-y": Preset(
        {**COMPLEX_N3_MMKG, "dataset": "MKG-Y", "epochs": 12, "regularizer": "dura"},
        "DURA in place of N3 on MKG-Y",
        "benchmarks/results/mmkg-sota/paired.md (+0.0027 [+0.0009, +0.0044], 3 seeds)",
        "MKG-Y test MRR 0.379 (3 seeds, benchmarks/results/mmkg-sota/runs.csv)"),
    "complex-dura-text-mkg-y": Preset(
        {**COMPLEX_N3_MMKG, "dataset": "MKG-Y", "epochs": 12, "regularizer": "dura",
         "features": "textual", "fusion": "gate"},
        "DURA and textual features from the names (dhns features text MKG-Y)", GRID,
        "MKG-Y test MRR 0.379 (3 seeds, benchmarks/results/mmkg-sota/runs.csv)"),
    "complex-n3-mkg-w": structure_only("MKG-W", 10, 0.362),
    "rotate-nscaching-mkg-w": sampler_preset(
        NSCACHING_FILTERED, "RotatE with NSCaching's filtered cache on MKG-W",
        "+0.0089 [+0.0056, +0.0121]", 3, "MKG-W test MRR 0.330"),
    "rotate-nscaching-text-db15k": sampler_preset(
        {**NSCACHING_FILTERED, **TEXT_DB15K},
        "RotatE with NSCaching's filtered cache and textual features from the names on "
        "DB15K (dhns features text DB15K)",
        "+0.0311 [+0.0283, +0.0338]", 2, "DB15K test MRR 0.349"),
    "rotate-kbgan-text-db15k": sampler_preset(
        {**TEXT_DB15K, "sampler": "kbgan"},
        "RotatE with KBGAN's negatives and textual features from the names on DB15K "
        "(dhns features text DB15K)",
        "+0.0364 [+0.0334, +0.0396]", 2, "DB15K test MRR 0.354"),
    "rotate-mans-a-text-mkg-y": sampler_preset(
        {**TEXT_MKG_Y, "sampler": "mans", "mans_variant": "a"},
        "RotatE with MANS's adaptive modality negatives and textual features from the "
        "names on MKG-Y (dhns features text MKG-Y)",
        "+0.0087 [+0.0056, +0.0118]", 3, "MKG-Y test MRR 0.368"),
    "rotate-mans-h-text-mkg-y": sampler_preset(
        {**TEXT_MKG_Y, "sampler": "mans", "mans_variant": "h"},
        "RotatE with MANS's hybrid negatives (30 % modality negatives) and textual features "
        "from the names on MKG-Y, at 0.6x the adaptive variant's epoch",
        "+0.0091 [+0.0058, +0.0127]", 3, "MKG-Y test MRR 0.368"),
    "complex-n3-db15k": structure_only("DB15K", 12, 0.394, select_on="valid-unseen"),
    "complex-n3-text-db15k": Preset(
        {**COMPLEX_N3_MMKG, "dataset": "DB15K", "epochs": 6, "select_on": "valid-unseen",
         "features": "textual", "fusion": "gate"},
        "textual features from the names on DB15K, at a 6-epoch budget", GRID,
        "DB15K test MRR 0.389 (3 seeds, benchmarks/results/mmkg-sota/runs.csv)"),
}


def presets_markdown() -> str:
    """The presets as a Markdown table (the documentation's)."""
    lines = ["| preset | what | source | row it reproduces | command |",
             "| --- | --- | --- | --- | --- |"]
    lines += [f"| `{name}` | {p.summary} | {p.source} | {p.row or '—'} | "
              f"`{p.command(name)}` |" for name, p in PRESETS.items()]
    return "\n".join(lines) + "\n"
