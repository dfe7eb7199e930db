"""Gives every row of the results' ``runs.csv`` files its provenance.

New rows carry the provenance their run folder recorded (library version,
git commit, torch, device; :func:`dhns_geo.provenance.run_provenance`).
Rows written before run folders recorded it get, in the ``commit`` column,
the commit that added the row to git (``git blame`` of the file at
``HEAD``): the code that produced the row is that commit's or its parent's.
Every command names its data folder ``--root DATA`` instead of one
machine's path.

    python benchmarks/runs_provenance.py            # all runs.csv files
    python benchmarks/runs_provenance.py --check    # exit 1 if any row lacks it

Rows already filled are left as they are, so the script can be re-run.
"""

from __future__ import annotations

import argparse
import csv
import io
import re
import subprocess
import sys
from pathlib import Path

from dhns_geo.provenance import FIELDS

RESULTS = Path(__file__).resolve().parent / "results"
ROOT_FLAG = re.compile(r"--root (?!DATA\b)\S+")
#: A run folder given as an absolute path names one machine's folder.
ABSOLUTE_OUT = re.compile(r"--out /")


def blamed_commits(path: Path) -> list[str]:
    """The commit that last changed each line of ``path`` at ``HEAD``."""
    out = subprocess.run(["git", "blame", "--line-porcelain", "HEAD", "--",
                          path.name], cwd=path.parent, capture_output=True,
                         text=True, check=True).stdout
    return [line.split()[0] for line in out.splitlines()
            if re.match(r"^[0-9a-f]{40} \d+ \d+", line)]


def filled(path: Path, commits: list[str]) -> tuple[list[str], list[dict]]:
    """The columns and rows of ``path`` with provenance columns before the
    command, a commit on every row and ``--root DATA`` in every command."""
    rows = list(csv.DictReader(path.open()))
    fields = list(csv.DictReader(path.open()).fieldnames or [])
    new = [f for f in FIELDS if f not in fields]
    at = fields.index("command") if "command" in fields else len(fields)
    fields = fields[:at] + new + fields[at:]
    for line, row in enumerate(rows, start=2):       # line 1 is the header
        for name in FIELDS:
            row[name] = row.get(name) or ""
        if not row["commit"] and line - 1 < len(commits):
            row["commit"] = commits[line - 1]
        if row.get("command"):
            row["command"] = ROOT_FLAG.sub("--root DATA", row["command"])
    return fields, rows


def missing(path: Path) -> int:
    """Rows of ``path`` without a commit or with a machine's data path."""
    rows = list(csv.DictReader(path.open()))
    return sum(1 for r in rows if not r.get("commit")
               or ROOT_FLAG.search(r.get("command", ""))
               or ABSOLUTE_OUT.search(r.get("command", "")))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args()
    paths = sorted(RESULTS.rglob("runs.csv"))
    if args.check:
        bad = {p: missing(p) for p in paths if missing(p)}
        for p, n in bad.items():
            print(f"{p.relative_to(RESULTS)}: {n} rows without provenance")
        sys.exit(1 if bad else 0)
    for path in paths:
        fields, rows = filled(path, blamed_commits(path))
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fields, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        path.write_text(buf.getvalue())
        print(f"{path.relative_to(RESULTS)}: {len(rows)} rows")


if __name__ == "__main__":
    main()
