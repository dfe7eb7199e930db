"""Every command shown in the README and the how-to pages parses."""

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import run_cli

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", ROOT / "docs" / "getting-started.md",
         *sorted((ROOT / "docs" / "how-to").glob("*.md"))]


def shown_commands(path: Path) -> list[list[str]]:
    """The command lines of the ``bash`` blocks of ``path``, continuation
    lines joined and comments dropped."""
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", path.read_text(), flags=re.S):
        if block.startswith("git worktree add "):  # scripts of an older commit
            continue
        for line in block.replace("\\\n", " ").splitlines():
            argv = shlex.split(line, comments=True)
            if argv:
                commands.append(argv)
    return commands


def dhns_argv(argv: list[str]) -> list[str] | None:
    """The ``dhns`` arguments of a shown command (also under ``torchrun -m
    dhns_geo.cli``), or None for other commands."""
    if argv[0] == "dhns":
        return argv[1:]
    if argv[0] == "torchrun" and "dhns_geo.cli" in argv:
        return argv[argv.index("dhns_geo.cli") + 1:]
    return None


CASES = [(path.relative_to(ROOT).as_posix(), argv)
         for path in PAGES for argv in shown_commands(path)]


def test_pages_show_commands():
    assert sum(dhns_argv(argv) is not None for _, argv in CASES) >= 30


@pytest.mark.parametrize("page,argv", [c for c in CASES if dhns_argv(c[1])],
                         ids=lambda x: x if isinstance(x, str) else " ".join(x)[:60])
def test_dhns_command_parses(page, argv, capsys):
    code, out, err = run_cli(dhns_argv(argv) + ["--help"], capsys)
    assert code == 0, f"{page}: {shlex.join(argv)}\n{err}"


@pytest.mark.parametrize("page,argv", [c for c in CASES if c[1][0] == "python"
                                       and c[1][1].startswith("benchmarks/")],
                         ids=lambda x: x if isinstance(x, str) else " ".join(x)[:60])
def test_benchmark_command_parses(page, argv):
    done = subprocess.run([sys.executable, argv[1], "--help"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"{page}: {shlex.join(argv)}\n{done.stderr}"
