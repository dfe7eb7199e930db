"""Every option of every command refuses bad values up front: one line
naming the flag, exit code 2, before any data is loaded."""

import click
import pytest
import typer

from conftest import run_cli
from dhns_geo.cli.main import app
from dhns_geo.config import TrainConfig
from dhns_geo.errors import OptionError

#: A bad value of each option, per command path. Flags that take no value
#: (on/off switches) cannot be bad and are listed in NO_VALUE.
BAD = {
    "train": {
        "--dataset": " ", "--root": "", "--features": "some", "--visual": "/no/file.npy",
        "--textual": "/no/file.npy", "--scorer": "foo", "--p-norm": "0",
        "--dim": "0", "--encoder": "gat", "--sampler": "random",
        "--num-negatives": "0", "--loss": "hinge",
        "--adversarial-temperature": "0", "--margin": "nan",
        "--positive-weight": "-1", "--regularizer": "l1", "--reg-weight": "-1",
        "--epochs": "0", "--batch-size": "-5", "--lr": "inf", "--lr-half-life": "-1", "--lr-plateau-factor": "1.5", "--lr-plateau-patience": "0", "--device": "gpu",
        "--seed": "-1", "--eval-every": "0", "--select-on": "test", "--patience": "0", "--time-limit": "-1",
        "--eval-batch-size": "0", "--dhns-mu": "0", "--dhns-steps": "0",
        "--dhns-sampling": "fast", "--dhns-generator-steps": "0",
        "--dhns-lr": "nan", "--dhns-levels": "1,x",
        "--dhns-level-weights": "0,0,0,0,0", "--dhns-margin-factors": "1,inf,1,1,1",
        "--dhns-generator-grad": "both", "--dhns-share": "1.5", "--dhns-width": "0", "--config": "/no/such.yaml",
        "--out": None, "--resume": None, "--preset": "paper", "--rgcn-layers": "0", "--rgcn-bases": "0",
        "--rotate-p": "0", "--fusion": "concat", "--training": "kvsall",
        "--label-smoothing": "1", "--relation-prediction": "-1", "--optimizer": "sgd",
        "--lr-drop-at": "-1", "--dhns-margin": "-1",
        "--nscaching-cache-size": "0", "--nscaching-candidates": "-1",
        "--nscaching-update": "random", "--nscaching-temperature": "0",
        "--sans-hops": "0", "--sans-walks": "0", "--kbgan-candidates": "0",
        "--kbgan-temperature": "-1", "--kbgan-generator": "transe",
        "--kbgan-dim": "1", "--kbgan-lr": "0", "--kbgan-pretrain": "-1",
        "--mans-variant": "x", "--mans-beta": "1.5", "--mmrns-pool": "0",
        "--mmrns-temperature": "0", "--mmrns-lr": "nan", "--mmrns-loss-rate": "0",
    },
    "eval": {"--split": "train", "--batch-size": "0", "--device": "tpu"},
    "sample-negatives": {"--split": "all", "--negatives": "some", "--limit": "-1", "--levels": "a",
                         "--k": "0", "--out": None, "--generator-epochs": "0",
                         "--device": "tpu", "--seed": "-3"},
    "features text": {"--model": None, "--names": "/no/names.tsv", "--out": None,
                      "--root": None, "--batch-size": "0", "--device": "tpu"},
    "predict": {"--head": None, "--relation": None, "--tail": None,
                "--queries": "/no/queries.tsv", "--top": "0", "--out": None,
                "--batch-size": "0", "--device": "tpu"},
    "tune": {"--config": "/no/such.yaml", "--dataset": " ", "--scorer": "foo",
             "--sampler": "random", "--epochs": "0", "--space": "/no/space.yaml",
             "--trials": "0", "--timeout": "-1", "--out": None},
    "datasets": {"--root": None},
    "presets": {}, "samplers": {},
    "datasets check": {"--root": None},
}
#: Options whose every value is acceptable (a path to write, a model name).
NO_BAD_VALUE = {("train", "--out"), ("sample-negatives", "--out"),
                ("predict", "--head"), ("predict", "--tail"), ("predict", "--out"),
                ("predict", "--relation"), ("tune", "--out"),
                ("features text", "--model"), ("features text", "--out"),
                ("features text", "--root"), ("datasets", "--root"),
                ("datasets check", "--root")}
#: Options that are tested in combination instead (see below).
COMBINED = {("train", "--resume")}
NO_VALUE = {"--progress", "--json", "--trust-features", "--filter-negatives",
            "--shared-negatives", "--reciprocal", "--shard-entities", "--sparse-entities",
            "--deterministic",
            "--dhns-normalize", "--dhns-authors-sampling", "--dhns-guard", "--version", "--help", "--tensorboard"}
POSITIONAL = {"train": [], "eval": ["RUN"], "sample-negatives": ["RUN"],
              "predict": ["RUN"], "tune": [],
              "features text": ["toy"], "datasets": [], "datasets check": ["toy"],
              "presets": [], "samplers": []}


def commands():
    """(path, click command) of every leaf command of the app."""
    root = typer.main.get_command(app)

    def walk(group, prefix):
        for name, cmd in group.commands.items():
            path = f"{prefix} {name}".strip()
            if isinstance(cmd, click.Group):
                yield path, cmd
                yield from walk(cmd, path)
            else:
                yield path, cmd
    return list(walk(root, ""))


def option_flags(cmd):
    for param in cmd.params:
        if param.param_type_name == "option":       # typer's options are not click.Option
            flag = max(param.opts, key=len)
            if flag not in NO_VALUE and not param.is_flag:
                yield flag


def test_every_option_has_a_bad_value_case():
    missing = [(path, flag) for path, cmd in commands()
               for flag in option_flags(cmd)
               if flag not in BAD.get(path, {})]
    assert not missing, f"add bad values for {missing}"


CASES = [(path, flag, value) for path, flags in BAD.items()
         for flag, value in flags.items()
         if (path, flag) not in NO_BAD_VALUE | COMBINED]


@pytest.mark.parametrize("path,flag,value", CASES)
def test_bad_value_is_refused_before_any_work(path, flag, value, capsys,
                                              monkeypatch, tmp_path):
    def no_data(*args, **kwargs):
        raise AssertionError("data was loaded before the options were checked")
    for where in ("dhns_geo.runs.load_dataset_for",
                  "dhns_geo.cli.feature_commands.load_dataset",
                  "dhns_geo.cli.train_commands.load_run",
                  "dhns_geo.cli.dhns_commands.load_run",
                  "dhns_geo.predict.Predictor.from_run"):
        monkeypatch.setattr(where, no_data)
    args = [a if a != "RUN" else str(tmp_path) for a in POSITIONAL[path]]
    extra = ["--sampler", "dhns"] if flag.startswith("--dhns") else []
    argv = [*path.split(), *args, *extra, flag, value]
    if path == "train":
        argv += ["--out", str(tmp_path / "run")]
    code, out, err = run_cli(argv, capsys)
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and flag in lines[0] and "Traceback" not in err, err
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("argv,flag", [
    (["--dhns-mu", "0.5"], "--dhns-mu"),              # DHNS option, uniform sampler
    (["--reg-weight", "0.1"], "--reg-weight"),        # no regulariser
    (["--p-norm", "2", "--scorer", "rotate"], "--p-norm"),
    (["--rgcn-layers", "2"], "--rgcn-layers"),        # no encoder
    (["--dim", "33"], "--dim"),                       # RotatE needs an even dim
    (["--sampler", "dhns", "--dhns-levels", "1,99"], "--dhns-levels"),
    (["--loss", "margin", "--positive-weight", "2"], "--positive-weight"),
    (["--resume", "RUN", "--lr", "0.1"], "--lr"),     # resume keeps its options
    (["--resume", "RUN", "--out", "x"], "--out"),
])
def test_combinations_are_refused(argv, flag, capsys, tmp_path):
    argv = [str(tmp_path) if a == "RUN" else a for a in argv]
    code, _, err = run_cli(["train", *argv], capsys)
    assert code == 2 and err.count("\n") == 1 and flag in err, err


def test_config_file_values_are_checked_and_named(tmp_path, capsys):
    (tmp_path / "c.yaml").write_text("lr: .nan\ndim: 16\n")
    code, _, err = run_cli(["train", "--config", str(tmp_path / "c.yaml")], capsys)
    assert code == 2 and f"{tmp_path / 'c.yaml'}: lr must be a finite number" in err
    (tmp_path / "c.yaml").write_text("epochs: many\n")
    code, _, err = run_cli(["train", "--config", str(tmp_path / "c.yaml")], capsys)
    assert code == 2 and "epochs must be an integer of at least 1; got 'many'" in err


@pytest.mark.parametrize("values,name", [
    ({"lr": -1.0}, "lr"), ({"margin": float("nan")}, "margin"),
    ({"adversarial_temperature": 0.0}, "adversarial_temperature"),
    ({"epochs": 2.5}, "epochs"), ({"filter_negatives": "yes"}, "filter_negatives"),
    ({"sampler": "dhns", "dhns_level_weights": [0, 0, 0, 0, 0]}, "dhns_level_weights"),
])
def test_python_config_checks_the_same(values, name):
    with pytest.raises(OptionError) as info:
        TrainConfig(**values)
    assert info.value.name == name
    assert TrainConfig(dim=8).dim == 8


def test_train_help_lists_the_options_in_named_panels(capsys):
    from conftest import run_cli
    from dhns_geo.config import PANELS, options

    code, out, _ = run_cli(["train", "--help"], capsys)
    assert code == 0
    starts = [out.index(f"\n{panel}:\n") for panel in PANELS]
    assert starts == sorted(starts)                  # in the declared order
    bounds = dict(zip(PANELS, zip(starts, starts[1:] + [out.index("\nOptions:\n")])))
    for name, opt in options().items():
        first, last = bounds[opt.panel]
        assert first < out.index("--" + name.replace("_", "-") + " ") < last, name
    first, last = bounds["Run"]
    assert first < out.index("--preset") < last       # the command's own: Run
