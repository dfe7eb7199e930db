import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import place_raw
from conftest import run_cli as run
from dhns_geo import __version__


def test_console_script_version():
    exe = Path(sys.executable).parent / "dhns"
    exe = str(exe) if exe.exists() else shutil.which("dhns")
    out = subprocess.run([exe, "--version"], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == f"dhns-geo {__version__}"


def test_help_lists_commands(capsys):
    code, out, _ = run(["--help"], capsys)
    assert code == 0 and "datasets" in out


def test_datasets_table(tmp_path, capsys):
    code, out, _ = run(["datasets", "--root", str(tmp_path)], capsys)
    assert code == 0
    lines = {line.split()[0]: line.split() for line in out.splitlines() if line}
    assert lines["DB15K"][1:6] == ["12842", "279", "79222", "9904", "9902"]
    assert lines["toy"][1] == "1000"


def test_check_db15k_reports_duplicates_and_leakage(tmp_path, capsys):
    place_raw("DB15K", tmp_path)
    code, out, _ = run(["datasets", "check", "DB15K", "--root", str(tmp_path)],
                       capsys)
    assert code == 0
    valid = next(line for line in out.splitlines() if line.startswith("valid"))
    assert valid.split() == ["valid", "9904", "7481", "2423", "6584", "3"]


def test_check_toy_reports_coverage(capsys):
    from dhns_geo.datasets import ToyMMKG
    have = int(ToyMMKG()[0]["entity"].visual_mask.sum())
    assert 700 < have < 950
    code, out, _ = run(["datasets", "check", "toy"], capsys)
    visual = next(line for line in out.splitlines() if line.startswith("visual"))
    assert code == 0
    assert visual.split()[3:5] == [str(have), f"{100 * have / 1000:.1f}%"]


@pytest.mark.parametrize("argv,message", [
    (["datasets", "check", "/no/such/folder"], "unknown dataset"),
    (["datasets", "check"], "Missing argument"),
    (["no-such-command"], "No such command"),
])
def test_errors_are_one_line(argv, message, capsys):
    code, out, err = run(argv, capsys)
    assert code != 0 and message in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_bad_file_error_names_file_and_line(openke_folder, capsys):
    (openke_folder / "train2id.txt").write_text("1\n0 1 7\n")
    code, _, err = run(["datasets", "check", str(openke_folder)], capsys)
    assert code == 1
    assert "train2id.txt, line 2: relation id 7 out of range [0, 2)" in err
