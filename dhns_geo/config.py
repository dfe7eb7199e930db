"""The training configuration: one declaration per option.

Each field of :class:`TrainConfig` is declared once, with :func:`option`:
its default, its help text, the rule its values obey and the options it is
used only with. From these declarations come the config's validation
(:func:`validate_config`), the options of ``dhns train`` and their help
(:mod:`dhns_geo.cli.train_commands`) and the command line of a config
(:func:`command_line`). A run folder's ``config.json`` holds a
:class:`TrainConfig`; :mod:`dhns_geo.build` rebuilds the run from it.

This module imports nothing heavy: reading a ``config.json`` loads no model.
"""

from __future__ import annotations

import dataclasses
import json
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

from dhns_geo.errors import DHNSError, OptionError
from dhns_geo.validation import (Rule, check, choice, device_rule, flag, integer,
                                 number, number_list, optional, text)

SCORERS = ("transe", "distmult", "complex", "rotate")
#: Scorers whose entity vectors hold complex numbers (an even ``dim``).
COMPLEX_SCORERS = ("complex", "rotate")
LOSSES = ("margin", "softplus", "self-adversarial")
REGULARIZERS = ("none", "l2", "l3", "n3", "dura")
#: ``--sampler`` names: the rows of :data:`dhns_geo.sampling.registry.SAMPLERS`.
SAMPLERS = ("uniform", "bernoulli", "nscaching", "sans", "rw-sans", "kbgan",
            "mans", "mmrns", "dhns")
#: Samplers that draw one pool of negatives shared by the batch
#: (``--shared-negatives``); the others draw per positive.
SHARED_SAMPLERS = ("uniform", "bernoulli", "dhns")
TRAININGS = ("negatives", "1vsall")
OPTIMIZERS = ("adam", "adagrad")
ENCODERS = ("none", "rgcn")
GENERATOR_GRADS = ("detached", "model")
FUSIONS = ("auto", "attention", "gate")


#: The groups of ``dhns train --help``, in the order shown.
PANELS = ("Data", "Model", "Negatives", "DHNS", "1-vs-all", "Optimisation",
          "Evaluation", "Run")


@dataclass(frozen=True)
class Option:
    """The declaration of one option (see :func:`option`)."""

    help: str
    rule: Rule
    only_with: Mapping[str, tuple] = field(default_factory=dict)
    why: str = ""
    short: str | None = None
    items: type | None = None
    show_default: bool = True
    panel: str = "Run"

    def unmet(self, value_of: Callable[[str], Any]) -> tuple[str, tuple] | None:
        """The first ``(other option, allowed values)`` of :attr:`only_with`
        whose option's value (``value_of(name)``) is not allowed, or None."""
        return next(((other, allowed) for other, allowed in self.only_with.items()
                     if value_of(other) not in allowed), None)


def option(default: Any, help: str, rule: Rule, *,
           only_with: Mapping[str, Any] | None = None, why: str = "",
           short: str | None = None, items: type | None = None,
           show_default: bool = True, panel: str = "Run") -> Any:
    """A field of :class:`TrainConfig` and everything said of it.

    Args:
        default: The default value (a list is copied per config).
        help: What the option does (``dhns train --help``; the default is
            appended from ``default``).
        rule: The values it takes (:mod:`dhns_geo.validation`).
        only_with: ``{other option: value or tuple of values}``: a value
            other than the default is refused unless each other option has
            one of those values.
        why: Said after "used only with ..." when ``only_with`` refuses.
        short: A one-letter flag beside ``--name`` (e.g. ``-k``).
        items: For a list option, the type of its comma-separated items.
        show_default: Append the default to the help text.
        panel: The group of ``dhns train --help`` it is listed in
            (:data:`PANELS`).
    """
    needs = {k: v if isinstance(v, tuple) else (v,)
             for k, v in (only_with or {}).items()}
    if panel not in PANELS:
        raise ValueError(f"panel {panel!r} is not one of {PANELS}")
    meta = {"option": Option(help, rule, needs, why, short, items, show_default, panel)}
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata=meta)
    return field(default=default, metadata=meta)


def fraction_rule(value: Any) -> str | None:
    ok = number(0, above=True)(value) is None and value <= 1
    return None if ok else "a number above 0 and at most 1"


def fraction_or_zero(value: Any) -> str | None:
    ok = number(0)(value) is None and value < 1
    return None if ok else "a number from 0 to below 1"


SAMPLED = {"training": "negatives"}
SAMPLED_WHY = " (1vsall scores every entity)"
DHNS = {"sampler": "dhns"}
DHNS_SAMPLED = {**DHNS, **SAMPLED}


@dataclass
class TrainConfig:
    """Everything that defines a training run."""

    # data
    dataset: str = option("toy", "DB15K, MKG-W, MKG-Y, FB15k-237, toy, pyg:<class> (a torch_geometric.datasets KG, e.g. pyg:FB15k_237), or a KG folder.", text, panel="Data")
    root: str | None = option(None, "Dataset root (unset: $DHNS_DATA or ~/.cache/dhns-geo).", optional(text), show_default=False, panel="Data")
    features: str = option("auto", "auto (every modality feature the dataset has), none, or one modality: visual or textual, which must be there.", choice("auto", "none", "visual", "textual"), panel="Data")
    visual: str | None = option(None, "Visual feature file [N, d] (.pth, .pt or .npy); replaces the dataset's.", optional(text), show_default=False, panel="Data")
    textual: str | None = option(None, "Textual feature file [N, d] (.pth, .pt or .npy); replaces the dataset's.", optional(text), show_default=False, panel="Data")
    trust_features: bool = option(False, "Use paper feature files whose sha256 differs from the published one.", flag, panel="Data")
    # model
    scorer: str = option("rotate", "transe, distmult, complex or rotate.", choice(*SCORERS), panel="Model")
    p_norm: float = option(1.0, "Norm of TransE.", number(0, above=True), only_with={"scorer": "transe"}, panel="Model")
    rotate_p: float = option(2.0, "Norm of RotatE over the complex differences' moduli: 2 (Euclidean) or 1 (their sum, as in the RotatE authors' code).", number(0, above=True), only_with={"scorer": "rotate"}, panel="Model")
    dim: int = option(256, "Entity embedding size in real numbers.", integer(1), panel="Model")
    encoder: str = option("none", "none or rgcn.", choice(*ENCODERS), panel="Model")
    fusion: str = option("auto", "How modalities fuse: attention (per entity, from its embeddings), gate (learned weights per modality; 1vsall scores then factor through the raw features, no [N, d] fused table per step) or auto (gate with 1vsall, attention with sampled negatives).", choice(*FUSIONS), panel="Model")
    rgcn_layers: int = option(1, "R-GCN layers.", integer(1), only_with={"encoder": "rgcn"}, panel="Model")
    rgcn_bases: int = option(4, "R-GCN basis matrices.", integer(1), only_with={"encoder": "rgcn"}, panel="Model")
    reciprocal: bool = option(False, "Learn a reciprocal relation r' per relation: (?, r, t) is answered as (t, r', ?); epochs also go through the reciprocal triples.", flag, panel="Model")
    # training regime, negatives and loss
    training: str = option("negatives", "negatives (sampled negatives) or 1vsall (cross-entropy of each query over all entities).", choice(*TRAININGS), panel="1-vs-all")
    label_smoothing: float = option(0.0, "Label smoothing of the 1vsall cross-entropy.", fraction_or_zero, only_with={"training": "1vsall"}, panel="1-vs-all")
    sampler: str = option("uniform", "uniform, bernoulli, nscaching, sans, rw-sans, kbgan, mans, mmrns or dhns (`dhns samplers` lists them with their papers); with 1vsall, dhns adds the generated entities of each hardness level as candidates beside the real ones.", choice(*SAMPLERS), panel="Negatives")
    num_negatives: int = option(1024, "Negatives per positive: the batch's shared pool, or each positive's own with --no-shared-negatives.", integer(1), only_with=SAMPLED, why=SAMPLED_WHY, short="-k", panel="Negatives")
    filter_negatives: bool = option(False, "Redraw negatives that are known true triples.", flag, only_with=SAMPLED, why=SAMPLED_WHY, panel="Negatives")
    shared_negatives: bool = option(True, "Draw the K negatives once per batch and share them across its positives (a step then scores one [B, K] matrix and fuses only the entities it touches); off: K per positive. Samplers uniform, bernoulli and dhns; the others draw per positive.", flag, panel="Negatives")
    loss: str = option("self-adversarial", "margin, softplus or self-adversarial.", choice(*LOSSES), only_with=SAMPLED, why=SAMPLED_WHY, panel="Negatives")
    adversarial_temperature: float = option(1.0, "Self-adversarial temperature.", number(0, above=True), only_with=SAMPLED, why=SAMPLED_WHY, panel="Negatives")
    margin: float = option(6.0, "Loss margin gamma.", number(0), only_with=SAMPLED, why=SAMPLED_WHY, panel="Negatives")
    positive_weight: float = option(1.0, "Weight of the positives' term of the softplus and self-adversarial losses.", number(0, above=True), only_with={**SAMPLED, "loss": ("softplus", "self-adversarial")}, panel="Negatives")
    regularizer: str = option("none", "none, l2, l3, n3 (Lacroix et al. 2018: cubes of complex moduli) or dura (Zhang et al. 2020, for distmult and complex).", choice(*REGULARIZERS), panel="Model")
    reg_weight: float = option(0.0, "Regularisation weight.", number(0), only_with={"regularizer": REGULARIZERS[1:]}, panel="Model")
    relation_prediction: float = option(0.0, "Weight of relation prediction, an auxiliary 1vsall objective: the cross-entropy of each training triple's relation over all relations (Chen et al. 2021).", number(0), only_with={"training": "1vsall"}, panel="1-vs-all")
    # samplers' own options
    nscaching_cache_size: int = option(30, "NSCaching: entities per cache, N1.", integer(1), only_with={"sampler": "nscaching"}, panel="Negatives")
    nscaching_candidates: int = option(30, "NSCaching: uniform candidates per cache refresh, N2.", integer(0), only_with={"sampler": "nscaching"}, panel="Negatives")
    nscaching_update: str = option("importance", "NSCaching: the refresh keeps N1 of the N1 + N2 by importance sampling of softmax(score / temperature) or the top N1.", choice("importance", "top"), only_with={"sampler": "nscaching"}, panel="Negatives")
    nscaching_temperature: float = option(2.0, "NSCaching: temperature of the refresh's softmax.", number(0, above=True), only_with={"sampler": "nscaching"}, panel="Negatives")
    sans_hops: int = option(2, "SANS: the neighbourhood's radius k in hops (rw-sans: the walks' length).", integer(1), only_with={"sampler": ("sans", "rw-sans")}, panel="Negatives")
    sans_walks: int = option(4000, "RW-SANS: random walks per entity.", integer(1), only_with={"sampler": "rw-sans"}, panel="Negatives")
    kbgan_candidates: int = option(20, "KBGAN: uniform candidates per negative, Ns.", integer(1), only_with={"sampler": "kbgan"}, panel="Negatives")
    kbgan_temperature: float = option(1.0, "KBGAN: temperature of the generator's softmax.", number(0, above=True), only_with={"sampler": "kbgan"}, panel="Negatives")
    kbgan_generator: str = option("distmult", "KBGAN: the generator's interaction, distmult or complex.", choice("distmult", "complex"), only_with={"sampler": "kbgan"}, panel="Negatives")
    kbgan_dim: int = option(50, "KBGAN: the generator's embedding size.", integer(2), only_with={"sampler": "kbgan"}, panel="Negatives")
    kbgan_lr: float = option(1e-3, "KBGAN: the generator's Adam learning rate.", number(0, above=True), only_with={"sampler": "kbgan"}, panel="Negatives")
    kbgan_pretrain: int = option(0, "KBGAN: epochs of generator pretraining before the run (0: none).", integer(0), only_with={"sampler": "kbgan"}, panel="Negatives")
    mans_variant: str = option("a", "MANS: a (the share of modality negatives that the batch's scores choose), v (every negative a modality negative), t (v, then uniform after mans_beta of the steps) or h (a share mans_beta of each positive's negatives).", choice("v", "t", "h", "a"), only_with={"sampler": "mans"}, panel="Negatives")
    mans_beta: float = option(0.3, "MANS: the share of modality negatives of variant h, the switch point of variant t.", fraction_rule, only_with={"sampler": "mans"}, panel="Negatives")
    mmrns_pool: int = option(1500, "MMRNS: candidates drawn per step, shared by the batch.", integer(1), only_with={"sampler": "mmrns"}, panel="Negatives")
    mmrns_temperature: float = option(10.0, "MMRNS: initial temperature T0 of the similarity softmax, annealed as T0 / (1 + log(step + 1)).", number(0, above=True), only_with={"sampler": "mmrns"}, panel="Negatives")
    mmrns_lr: float = option(1e-3, "MMRNS: Adam learning rate of the relation-guided attention.", number(0, above=True), only_with={"sampler": "mmrns"}, panel="Negatives")
    mmrns_loss_rate: float = option(100.0, "MMRNS: divisor of the contrastive term.", number(0, above=True), only_with={"sampler": "mmrns"}, panel="Negatives")
    # optimisation
    optimizer: str = option("adam", "adam or adagrad.", choice(*OPTIMIZERS), panel="Optimisation")
    epochs: int = option(40, "Maximum epochs.", integer(1), panel="Optimisation")
    batch_size: int = option(1024, "Positives per batch.", integer(1), panel="Optimisation")
    lr: float = option(0.02, "Learning rate.", number(0, above=True), panel="Optimisation")
    lr_half_life: int = option(0, "Halve the learning rate every this many steps, smoothly (0: constant).", integer(0), panel="Optimisation")
    lr_drop_at: int = option(0, "Divide the learning rate by 10 from this step on, as the RotatE authors' code does at half its steps (0: never).", integer(0), panel="Optimisation")
    lr_plateau_factor: float = option(0.5, "Multiply the learning rate by this after each evaluation that does not improve on the best (1: never).", fraction_rule, panel="Optimisation")
    lr_plateau_patience: int = option(1, "Apply --lr-plateau-factor only after this many evaluations in a row without gain, and again after each further this many (1: after every one). Steadies the rate when a small or noisy selection split is evaluated often.", integer(1), panel="Optimisation")
    device: str = option("auto", "auto, cpu or cuda.", device_rule, panel="Run")
    shard_entities: bool = option(False, "Under torchrun: shard the structural entity table row-wise over the ranks (TorchRec; the [distributed] extra), each rank keeping about N/W rows and their optimizer state; needs --optimizer adagrad on CPUs.", flag, panel="Run")
    sparse_entities: bool = option(False, "One process: a row-sparse gradient and Adagrad update of the structural table, reading and writing only the rows a step touches (the updates of dense Adagrad); pays on large tables with negatives shared by the batch.", flag, only_with={"optimizer": "adagrad", "training": "negatives", "encoder": "none", "shard_entities": False}, panel="Run")
    seed: int = option(0, "Random seed.", integer(0, 2 ** 63 - 1), panel="Run")
    deterministic: bool = option(True, "torch deterministic algorithms.", flag, panel="Run")
    eval_every: int = option(5, "Evaluate on valid every N epochs.", integer(1), panel="Evaluation")
    select_on: str = option("valid", "Triples that choose the best epoch: valid or valid-unseen (valid triples not in train; DB15K's valid split is mostly train triples).", choice("valid", "valid-unseen"), panel="Evaluation")
    patience: int = option(3, "Stop after N evaluations without gain.", integer(1), panel="Evaluation")
    time_limit: float = option(0.0, "Stop after the epoch in which training has taken this many seconds in all (0: no limit). That epoch is evaluated, and the best model is tested as after the last epoch; a budget in wall-clock time on a machine of unknown speed.", number(0), panel="Run")
    eval_batch_size: int = option(256, "Queries ranked at once; bounds evaluation memory to this x entities.", integer(1), panel="Evaluation")
    # DHNS (sampler "dhns")
    dhns_mu: float = option(0.01, "Weight of the DHNS loss.", number(0, above=True), only_with=DHNS_SAMPLED, panel="DHNS")
    dhns_steps: int = option(50, "Diffusion steps T.", integer(1), only_with=DHNS, panel="DHNS")
    dhns_levels: list[int] | None = option(None, "Hardness levels as comma-separated diffusion steps (unset: 1,T/10,T/8,T/4,T/2).", optional(number_list(integer(1), "diffusion steps (integers of at least 1)")), only_with=DHNS, items=int, show_default=False, panel="DHNS")
    dhns_level_weights: list[float] = option([0.0, 0.5, 1.0, 1.0, 0.5], "Loss weight per level, comma-separated.", number_list(number(0), "finite numbers of at least 0"), only_with=DHNS, items=float, panel="DHNS")
    dhns_margin_factors: list[float] = option([0.1, 0.3, 0.5, 0.7, 0.9], "NTAT margin factor per level, comma-separated.", number_list(number(), "finite numbers"), only_with=DHNS, items=float, panel="DHNS")
    dhns_sampling: str = option("strided", "strided (DDIM) or full (DDPM).", choice("strided", "full"), only_with=DHNS, panel="DHNS")
    dhns_generator_steps: int = option(1, "Generator steps per batch.", integer(1), only_with=DHNS, panel="DHNS")
    dhns_lr: float = option(1e-3, "Learning rate of the generator's Adam.", number(0, above=True), only_with=DHNS, panel="DHNS")
    dhns_normalize: bool = option(False, "Diffuse embeddings scaled to unit root mean square (off, as in the authors' code).", flag, only_with=DHNS, panel="DHNS")
    dhns_generator_grad: str = option("detached", "detached: the diffusion loss trains the generator only; model: it also trains the model, as the authors' trainer does.", choice(*GENERATOR_GRADS), only_with=DHNS_SAMPLED, panel="DHNS")
    dhns_authors_sampling: bool = option(False, "The authors' sampler: each head reverse step starts from the tail chain's sample; each corruption is a loss of its own.", flag, only_with=DHNS_SAMPLED, panel="DHNS")
    dhns_share: float = option(1.0, "Share of each batch the DHNS generator trains on and generates for (1: the method as published; lower is faster).", fraction_rule, only_with=DHNS, panel="DHNS")
    dhns_guard: bool = option(False, "Drop generated negatives the model scores at least as high as their positive (likely false negatives).", flag, only_with=DHNS, panel="DHNS")
    dhns_margin: float = option(1.0, "With 1vsall: the base NTAT margin added to the generated columns' logits (times each level's margin factor).", number(0), only_with={**DHNS, "training": "1vsall"}, panel="DHNS")
    dhns_width: float = option(4.0, "Hidden width of the DHNS denoiser as a multiple of dim (4, as published; lower is faster).", number(0, above=True), only_with=DHNS, panel="DHNS")

    def __post_init__(self) -> None:
        validate_config(self)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def defaults(cls) -> dict[str, Any]:
        """The default value of every option (without validating)."""
        return {f.name: f.default if f.default is not dataclasses.MISSING
                else f.default_factory() for f in dataclasses.fields(cls)}

    @classmethod
    def from_dict(cls, values: dict[str, Any],
                  source: str | None = None) -> "TrainConfig":
        """A config from a mapping; errors name ``source`` (a file) if given."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise DHNSError(f"{source or 'config'}: unknown option(s) "
                            f"{', '.join(unknown)}")
        try:
            return cls(**values)
        except OptionError as exc:
            raise (exc.within(source) if source else exc) from None

    @classmethod
    def from_run(cls, values: dict[str, Any], source: str | None = None) -> "TrainConfig":
        """The config a run folder stored: as :meth:`from_dict`, but an
        option that the run could not use (an option it is used only with
        differs) takes today's default. Such a value is the default of the
        version that wrote the run, which may have changed since, and never
        touched its training (``mans_variant`` ``v`` of a run without MANS)."""
        defaults, values = cls.defaults(), dict(values)
        value_of = lambda name: values.get(name, defaults[name])  # noqa: E731
        for name, opt in options().items():
            if name in values and opt.unmet(value_of):
                values[name] = defaults[name]
        return cls.from_dict(values, source)


def options() -> dict[str, Option]:
    """Every option's declaration, in declaration order."""
    return {f.name: f.metadata["option"] for f in dataclasses.fields(TrainConfig)}


def _words(values: tuple) -> str:
    values = [str(v) for v in values]
    return values[0] if len(values) == 1 else f"{', '.join(values[:-1])} or {values[-1]}"


# -- validation ---------------------------------------------------------------
def validate_config(config: TrainConfig) -> None:
    """Checks every value of ``config`` (its declared rule and the options
    it is used only with) and the combinations below.

    Raises:
        OptionError: naming the first bad option and its allowed values.
    """
    defaults = TrainConfig.defaults()
    declared = options()
    for name, opt in declared.items():
        check(name, getattr(config, name), opt.rule)
    for name, opt in declared.items():
        if getattr(config, name) != defaults[name] and (
                unmet := opt.unmet(lambda other: getattr(config, other))):
            other, allowed = unmet
            raise OptionError(name, getattr(config, name),
                              f"used only with {other} {_words(allowed)}{opt.why}")
    _check_combinations(config)
    _check_levels(config)


def _check_combinations(config: TrainConfig) -> None:
    if config.regularizer == "n3" and config.scorer == "rotate":
        raise OptionError("regularizer", "n3", "used with scorers transe, "
                          "distmult or complex (RotatE's relations are phases)")
    if config.regularizer == "dura" and config.scorer not in ("distmult", "complex"):
        raise OptionError("regularizer", "dura", "used with scorers distmult or "
                          "complex (bilinear models)")
    if config.training == "1vsall" and config.sampler not in ("uniform", "dhns"):
        raise OptionError("sampler", config.sampler, "uniform or dhns with "
                          "training 1vsall (dhns: generated columns)")
    if config.reciprocal and config.training == "negatives" and config.sampler != "uniform":
        raise OptionError("sampler", config.sampler, "uniform with reciprocal "
                          "(each negative then corrupts the tail of a triple "
                          "or of its reciprocal)")
    if config.shard_entities:
        if config.sampler not in SHARED_SAMPLERS:
            raise OptionError("sampler", config.sampler, "uniform, bernoulli or "
                              "dhns with shard_entities (the others read "
                              "entity rows that a rank does not hold)")
        for name, needed in (("encoder", "none"), ("training", "negatives"),
                             ("dhns_generator_grad", "detached")):
            if getattr(config, name) != needed:
                raise OptionError(name, getattr(config, name), f"{needed} with "
                                  "shard_entities (it needs every entity's row "
                                  "on each rank)")
    if config.scorer in COMPLEX_SCORERS and config.dim % 2:
        raise OptionError("dim", config.dim, f"even for scorer {config.scorer}")


def _check_levels(config: TrainConfig) -> None:
    levels = config.dhns_levels
    if levels is not None and max(levels) > config.dhns_steps:
        raise OptionError("dhns_levels", levels,
                          f"steps from 1 to dhns_steps ({config.dhns_steps})")
    count = len(levels) if levels is not None else 5
    for name in ("dhns_level_weights", "dhns_margin_factors"):
        if len(getattr(config, name)) != count:
            raise OptionError(name, getattr(config, name),
                              f"{count} values, one per level of dhns_levels")
    if not any(w > 0 for w in config.dhns_level_weights):
        raise OptionError("dhns_level_weights", config.dhns_level_weights,
                          "at least one positive weight")


def fusion_of(config: TrainConfig) -> str:
    """The fusion a run uses: ``auto`` is the factored ``gate`` in 1-vs-all
    (attention would fuse all ``N`` entities every step) and ``attention``
    with sampled negatives."""
    if config.fusion != "auto":
        return config.fusion
    return "gate" if config.training == "1vsall" else "attention"


# -- the command line of a config ------------------------------------------------
def flag_name(name: str) -> str:
    """``num_negatives`` -> ``--num-negatives``."""
    return "--" + name.replace("_", "-")


def command_args(config: TrainConfig | Mapping[str, Any],
                 placeholders: Mapping[str, str] | None = None) -> list[str]:
    """The ``dhns train`` arguments that give ``config``: one flag per
    option that differs from its default (switches as ``--x`` /
    ``--no-x``, lists comma-separated).

    Args:
        config: A config, or a mapping of options (unvalidated).
        placeholders: Text to write instead of an option's value, e.g.
            ``{"root": "DATA"}`` so that a command names no one machine's
            folder.
    """
    values = config.to_dict() if isinstance(config, TrainConfig) else dict(config)
    defaults, placeholders = TrainConfig.defaults(), placeholders or {}
    return [arg for name, value in values.items() if value != defaults[name]
            for arg in option_args(name, value, placeholders.get(name))]


def option_args(name: str, value: Any, placeholder: str | None = None) -> list[str]:
    """The ``dhns train`` arguments that set option ``name`` to ``value``:
    ``--flag`` / ``--no-flag`` for a switch, ``--flag 1,2,3`` for a list,
    ``--flag placeholder`` when one is given."""
    flag_ = flag_name(name)
    if isinstance(value, bool):
        return [flag_ if value else f"--no-{flag_[2:]}"]
    shown = ",".join(map(str, value)) if isinstance(value, list) else str(value)
    return [flag_, shown if placeholder is None else placeholder]


def command_line(config: TrainConfig | Mapping[str, Any],
                 placeholders: Mapping[str, str] | None = None,
                 program: str = "dhns train") -> str:
    """:func:`command_args` as one shell line, e.g. ``dhns train --dataset
    MKG-Y --root DATA --scorer complex ...``."""
    return " ".join([program, *(shlex.quote(a) for a in
                                command_args(config, placeholders))])


def read_config_file(path: str | Path) -> dict[str, Any]:
    """Reads a YAML or JSON file of :class:`TrainConfig` values."""
    path = Path(path)
    if not path.is_file():
        raise OptionError("config", str(path), "an existing YAML or JSON file")
    text_ = path.read_text()
    try:
        if path.suffix == ".json":
            values = json.loads(text_)
        else:
            import yaml
            values = yaml.safe_load(text_)
    except Exception as exc:  # noqa: BLE001 - parser errors vary by format
        raise DHNSError(f"{path}: cannot parse config ({exc})") from None
    if not isinstance(values, dict):
        raise DHNSError(f"{path}: expected a mapping of options")
    return {k.replace("-", "_"): v for k, v in values.items()}
