import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow      # builds and installs a wheel

ROOT = Path(__file__).resolve().parents[1]


def test_wheel_installs_cli_and_datasets_under_dhns_geo(tmp_path):
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q",
                    "-w", str(tmp_path / "dist"), str(ROOT)], check=True)
    wheel, = (tmp_path / "dist").glob("dhns_geo-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names}
    assert tops == {"dhns_geo", wheel.name.split("-py")[0] + ".dist-info"}
    assert "dhns_geo/cli/main.py" in names
    assert "dhns_geo/datasets/benchmarks.py" in names
    top_level = [n for n in names if n.endswith("top_level.txt")]
    if top_level:
        text = zipfile.ZipFile(wheel).read(top_level[0]).decode().split()
        assert text == ["dhns_geo"]
    entry = zipfile.ZipFile(wheel).read(
        next(n for n in names if n.endswith("entry_points.txt"))).decode()
    assert "dhns = dhns_geo.cli.main:main" in entry

    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps",
                    "--target", str(target), str(wheel)], check=True)
    assert not (target / "cli").exists() and not (target / "datasets").exists()
    env = {**os.environ, "PYTHONPATH": str(target)}
    code = ("import dhns_geo, dhns_geo.cli.main, dhns_geo.datasets;"
            "print(dhns_geo.__file__)")
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=tmp_path,
                         capture_output=True, text=True, check=True).stdout
    assert out.strip().startswith(str(target))
    out = subprocess.run([sys.executable, "-m", "dhns_geo.cli", "--version"],
                         env=env, cwd=tmp_path, capture_output=True, text=True,
                         check=True).stdout
    assert out.startswith("dhns-geo ")
