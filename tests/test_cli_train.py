import json

import pytest

from conftest import run_cli as run
from dhns_geo.config import TrainConfig


def test_train_then_eval(tmp_path, capsys):
    (tmp_path / "c.yaml").write_text("dim: 16\nepochs: 3\nnum-negatives: 4\n")
    code, out, _ = run(["train", "--config", str(tmp_path / "c.yaml"),
                        "--epochs", "2", "--out", str(tmp_path / "run"),
                        "--no-progress"], capsys)
    assert code == 0 and "run folder:" in out
    for name in ("config.json", "model.pt", "last.pt", "metrics.json", "history.csv"):
        assert (tmp_path / "run" / name).is_file()
    config = json.loads((tmp_path / "run" / "config.json").read_text())["config"]
    assert (config["dim"], config["epochs"], config["num_negatives"]) == (16, 2, 4)
    saved = json.loads((tmp_path / "run" / "metrics.json").read_text())

    code, out, _ = run(["eval", str(tmp_path / "run"), "--json"], capsys)
    assert code == 0
    assert json.loads(out)["mrr"] == pytest.approx(saved["test"]["mrr"])
    code, out, _ = run(["eval", str(tmp_path / "run"), "--split", "valid"], capsys)
    assert code == 0 and "valid (" in out and "features: visual" in out


@pytest.mark.parametrize("argv,message", [
    (["train", "--scorer", "foo", "--epochs", "1"],
     "--scorer must be one of transe, distmult, complex, rotate; got 'foo'"),
    (["train", "--config", "/no/such.yaml"], "--config must be an existing YAML or JSON file"),
    (["eval", "/no/such/run"], "not a run folder"),
    (["train", "--epochs", "many"], "Invalid value for '--epochs'"),
    (["train", "--sampler", "dhns", "--dhns-level-weights", "0,x,1,1,0"],
     "--dhns-level-weights must be comma-separated float values"),
    (["train", "--sampler", "dhns", "--dhns-margin-factors", "0.5,0.5"],
     "--dhns-margin-factors must be 5 values, one per level"),
])
def test_bad_arguments_are_one_line(argv, message, capsys, tmp_path):
    code, _, err = run(argv + ["--out", str(tmp_path / "r")] if argv[0] == "train"
                       else argv, capsys)
    assert code != 0 and message in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("preset,shared,k", [("fast", True, 1024), ("classic", False, 32)])
def test_presets_set_their_values_and_flags_override(preset, shared, k, tmp_path, capsys):
    from dhns_geo.presets import PRESETS
    run_dir = tmp_path / "run"
    code, _, err = run(["train", "--preset", preset, "--dim", "16", "--epochs", "1",
                        "--out", str(run_dir), "--no-progress"], capsys)
    assert code == 0, err
    saved = json.loads((run_dir / "config.json").read_text())["config"]
    assert saved["dim"] == 16                                   # the flag wins
    for name in ("num_negatives", "batch_size", "lr", "shared_negatives", "lr_plateau_factor"):
        assert saved[name] == PRESETS[preset].values[name]
    assert saved["shared_negatives"] is shared and saved["num_negatives"] == k
    # Both keep the constant rate of their version; the default halves it.
    assert saved["lr_plateau_factor"] == 1.0 != TrainConfig().lr_plateau_factor
