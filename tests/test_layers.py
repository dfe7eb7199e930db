"""The layers of docs/architecture.md, checked from the imports: no module of
dhns_geo/, cli/ or datasets/ imports a module on a higher layer (imports
under TYPE_CHECKING and inside functions included), and no import circle."""

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ALIAS = {"cli": "dhns_geo.cli", "datasets": "dhns_geo.datasets"}


def modules() -> dict[str, Path]:
    found = {}
    for base in ("dhns_geo", "cli", "datasets"):
        for path in (ROOT / base).rglob("*.py"):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            parts[0] = ALIAS.get(parts[0], parts[0])
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join(parts)] = path
    return found


def imports(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """The project modules ``name`` imports, anywhere in its file."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    targets = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                pkg = package
                for _ in range(node.level - 1):
                    pkg = pkg.rpartition(".")[0]
                base = f"{pkg}.{node.module}" if node.module else pkg
            targets |= {base} | {f"{base}.{a.name}" for a in node.names}
    out = set()
    for target in targets:
        while target and target not in known:
            target = target.rpartition(".")[0]
        if target and target != name and not name.startswith(target + "."):
            out.add(target)
    return out


def layers() -> list[list[str]]:
    """The layer table of docs/architecture.md, bottom first: each row's
    module names (``dhns_geo.`` omitted; ``x.*`` a package and its modules)."""
    text = (ROOT / "docs" / "architecture.md").read_text()
    rows = re.findall(r"^\| (\d+) \| [^|]+ \| ([^|]+) \|$", text, re.M)
    assert rows, "docs/architecture.md has no layer table"
    assert [int(n) for n, _ in rows] == list(range(len(rows)))
    return [re.findall(r"`([^`]+)`", cell) for _, cell in rows]


def layer_of(name: str, table: list[list[str]]) -> int:
    short = name.removeprefix("dhns_geo.") if name != "dhns_geo" else "dhns_geo"
    for level, names in enumerate(table):
        for pattern in names:
            if short == pattern or (pattern.endswith(".*") and
                                    (short == pattern[:-2] or short.startswith(pattern[:-1]))):
                return level
    raise AssertionError(f"{name} is on no layer of docs/architecture.md")


def test_every_module_is_on_a_layer_and_imports_none_above_it():
    known, table = modules(), layers()
    upward = []
    for name, path in known.items():
        mine = layer_of(name, table)
        for target in imports(name, path, known):
            if layer_of(target, table) > mine:
                upward.append(f"{name} (layer {mine}) imports {target} "
                              f"(layer {layer_of(target, table)})")
    assert not upward, "\n".join(upward)


def test_no_import_circle():
    known = modules()
    graph = {name: imports(name, path, known) for name, path in known.items()}
    state: dict[str, int] = {}

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for nxt in graph[node]:
            if state.get(nxt) == 1:
                raise AssertionError(" -> ".join(trail + [node, nxt]))
            if nxt not in state:
                visit(nxt, trail + [node])
        state[node] = 2

    for name in graph:
        if name not in state:
            visit(name, [])


def test_the_checks_see_an_upward_import(tmp_path):
    # A lower module importing a higher one is reported (the test can fail).
    table = layers()
    fake = tmp_path / "errors.py"
    fake.write_text("from typing import TYPE_CHECKING\n"
                    "if TYPE_CHECKING:\n    from dhns_geo.training import Trainer\n")
    known = {**modules(), "dhns_geo.errors": fake}
    found = imports("dhns_geo.errors", fake, known)
    assert found == {"dhns_geo.training"}
    assert layer_of("dhns_geo.training", table) > layer_of("dhns_geo.errors", table)


def test_benchmarks_stay_a_small_part_of_the_code():
    """benchmarks/ holds the harnesses that back a page: at most 15 % of the
    lines of dhns_geo/, cli/, datasets/ and benchmarks/ together."""
    def lines(folder, *patterns):
        return sum(len(p.read_text().splitlines()) for pattern in patterns
                   for p in (ROOT / folder).rglob(pattern))
    bench = lines("benchmarks", "*.py", "*.sh")
    total = bench + sum(lines(f, "*.py") for f in ("dhns_geo", "cli", "datasets"))
    assert bench <= 0.15 * total, f"benchmarks/ is {bench / total:.1%} of the code"
