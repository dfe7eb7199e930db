import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow      # trains models

ROOT = Path(__file__).resolve().parents[1]


def first_python_block(path: Path) -> str:
    return re.findall(r"```python\n(.*?)```", path.read_text(), re.S)[0]


def test_readme_python_quick_start_runs(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)                 # it writes runs/toy-dhns
    code = first_python_block(ROOT / "README.md")
    exec(compile(code, "README.md", "exec"), {})
    mrr = float(capsys.readouterr().out.split()[-1])
    assert 0.3 < mrr <= 1.0                     # DHNS on the toy graph learns
    assert (tmp_path / "runs" / "toy-dhns" / "model.pt").is_file()


def test_python_page_loop_runs(capsys):
    code = first_python_block(ROOT / "docs" / "python.md")
    exec(compile(code, "docs/python.md", "exec"), {})
    out = capsys.readouterr().out
    assert "'mrr'" in out and "'tail'" in out
