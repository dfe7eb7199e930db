"""The configuration (dhns_geo/config.py): one declaration per option, its
rules, and the command line of a config."""

import shlex
from pathlib import Path
import subprocess
import sys

import pytest

from conftest import run_cli
from dhns_geo.config import (COMPLEX_SCORERS, LOSSES, REGULARIZERS, SCORERS,
                             TrainConfig, command_line, options)
from dhns_geo.errors import OptionError
from dhns_geo.presets import PRESETS


@pytest.mark.parametrize("values,name", [
    ({"training": "1vsall", "sampler": "bernoulli"}, "sampler"),
    ({"training": "1vsall", "sampler": "dhns", "dhns_mu": 0.1}, "dhns_mu"),
    ({"training": "negatives", "dhns_margin": 2.0, "sampler": "dhns"}, "dhns_margin"),
    ({"regularizer": "dura", "scorer": "transe"}, "regularizer"),
    ({"fusion": "gate", "relation_prediction": 0.5}, "relation_prediction"),
    ({"training": "1vsall", "num_negatives": 64}, "num_negatives"),
    ({"reciprocal": True, "sampler": "bernoulli"}, "sampler"),
    ({"regularizer": "n3", "scorer": "rotate"}, "regularizer"),
    ({"label_smoothing": 0.1}, "label_smoothing"),
    ({"rotate_p": 1.0, "scorer": "complex"}, "rotate_p"),
    ({"training": "kvsall"}, "training"),
    ({"optimizer": "sgd"}, "optimizer"),
])
def test_regime_options_are_checked(values, name):
    with pytest.raises(OptionError) as info:
        TrainConfig(**values)
    assert info.value.name == name


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_command_line_of_a_config_parses_back_to_it(name, tmp_path, capsys,
                                                    monkeypatch):
    seen = []
    monkeypatch.setattr("dhns_geo.cli.train_commands.run_training",
                        lambda cfg, run_dir, **kw: seen.append(cfg) or
                        {"best_epoch": 0, "test": {}})
    monkeypatch.setattr("dhns_geo.cli.train_commands.metrics_table", lambda m: "")
    config = TrainConfig(**{**PRESETS[name].values, "root": "/data/kg", "seed": 3})
    argv = shlex.split(command_line(config))
    assert argv[:2] == ["dhns", "train"]
    code, _, err = run_cli(argv[1:] + ["--out", str(tmp_path / "r")], capsys)
    assert code == 0, err
    assert seen == [config]


def test_command_line_names_placeholders_and_only_changed_options():
    config = TrainConfig(dataset="MKG-Y", root="/home/me/data", dim=64,
                         shared_negatives=False, dhns_mu=0.1, sampler="dhns",
                         dhns_levels=[1, 5], dhns_level_weights=[1.0, 0.5],
                         dhns_margin_factors=[0.2, 0.4])
    assert command_line(config, {"root": "DATA"}) == (
        "dhns train --dataset MKG-Y --root DATA --dim 64 --sampler dhns "
        "--no-shared-negatives --dhns-mu 0.1 --dhns-levels 1,5 "
        "--dhns-level-weights 1.0,0.5 --dhns-margin-factors 0.2,0.4")


def test_reading_a_config_imports_no_model():
    code = ("import sys, dhns_geo.config as c; c.TrainConfig(scorer='complex'); "
            "heavy = [m for m in sys.modules if m.split('.')[0] in "
            "('torch', 'torch_geometric') or m.startswith(('dhns_geo.nn', "
            "'dhns_geo.sampling', 'dhns_geo.data'))]; print(heavy)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_declared_names_are_the_librarys():
    from dhns_geo import losses
    from dhns_geo.nn.scorers import SCORERS as BUILT, make_scorer
    assert set(SCORERS) == set(BUILT)
    assert {s for s in SCORERS if make_scorer(s).complex} == set(COMPLEX_SCORERS)
    assert (losses.LOSSES, losses.REGULARIZERS) == (LOSSES, REGULARIZERS)


def test_every_option_is_declared_with_help_and_a_rule_its_default_obeys():
    defaults = TrainConfig.defaults()
    for name, opt in options().items():
        assert opt.help.strip(), name
        assert opt.rule(defaults[name]) is None, name
        for other in opt.only_with:
            assert other in defaults, (name, other)


def test_help_of_dhns_train_shows_each_default_from_its_value(capsys):
    code, out, _ = run_cli(["train", "--help"], capsys)
    assert code == 0
    text = " ".join(out.split())
    assert "Entity embedding size in real numbers (default 256)." in text
    assert "(default 0.1,0.3,0.5,0.7,0.9)" in text     # a list, as typed
    assert "--num-negatives" in text and "(default 1024)" in text


def test_presets_are_data_with_their_source_and_command(capsys):
    from conftest import run_cli
    from dhns_geo.presets import presets_markdown

    code, out, _ = run_cli(["presets"], capsys)
    assert code == 0
    table = presets_markdown()
    for name, preset in PRESETS.items():
        assert preset.summary and preset.source
        assert f"command: {preset.command(name)}" in out
        assert f"| `{name}` |" in table
        TrainConfig(**preset.values)                   # its values validate
    docs = Path(__file__).resolve().parents[1] / "docs" / "presets.md"
    assert "<!-- presets -->" in docs.read_text()


def test_a_run_folder_written_under_an_earlier_default_still_reads(tmp_path):
    """A run stores every option; one it could not use holds the default of
    the version that wrote it (mans_variant was ``v``). A later default must
    not make the folder unreadable, and an option the run used keeps its
    value. A user's own config is still checked strictly."""
    import json

    from dhns_geo.config import TrainConfig
    from dhns_geo.run_folder import read_run_config

    stored = TrainConfig(dim=16).to_dict() | {"mans_variant": "v", "mans_beta": 0.5}
    with pytest.raises(OptionError, match="used only with sampler mans"):
        TrainConfig.from_dict(stored)
    (tmp_path / "config.json").write_text(json.dumps({"config": stored, "data": {}}))
    config, _ = read_run_config(tmp_path)
    assert config == TrainConfig(dim=16)
    live = TrainConfig(sampler="mans", mans_variant="v", mans_beta=0.5).to_dict()
    (tmp_path / "config.json").write_text(json.dumps({"config": live, "data": {}}))
    config, _ = read_run_config(tmp_path)
    assert (config.mans_variant, config.mans_beta) == ("v", 0.5)
