"""Where a result comes from: the library's version and git commit, the
torch version and the device, written into every run folder."""

from __future__ import annotations

import functools
import subprocess
from pathlib import Path
from typing import Any

import torch

#: The project's checkout, when the library runs from one.
CHECKOUT = Path(__file__).resolve().parent.parent


def library_version() -> str:
    from importlib.metadata import PackageNotFoundError, version
    try:
        return version("dhns-geo")
    except PackageNotFoundError:                # pragma: no cover - not installed
        return "unknown"


@functools.lru_cache(maxsize=1)
def git_commit() -> str | None:
    """The checkout's commit (with ``+dirty`` when files differ from it),
    or ``None`` outside a git checkout."""
    if not (CHECKOUT / ".git").exists():
        return None
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=CHECKOUT,
                                capture_output=True, text=True, timeout=10,
                                check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain",
                                "--untracked-files=no"], cwd=CHECKOUT,
                               capture_output=True, text=True, timeout=10,
                               check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return commit + ("+dirty" if dirty else "")


def provenance(device: torch.device | str | None = None) -> dict[str, Any]:
    """``{"dhns_geo", "git_commit", "torch", "device"}`` of this process."""
    return {"dhns_geo": library_version(), "git_commit": git_commit(),
            "torch": torch.__version__,
            "device": str(device) if device is not None else None}


#: The columns of a results row that say what produced it.
FIELDS = ("dhns_geo", "commit", "torch", "device")


def run_provenance(run_dir: Path) -> dict[str, Any]:
    """The :data:`FIELDS` of a run folder (from ``metrics.json``, else
    ``config.json``; empty for run folders written before they were
    recorded)."""
    import json
    for name in ("metrics.json", "config.json"):
        path = Path(run_dir) / name
        if path.is_file():
            found = json.loads(path.read_text()).get("provenance")
            if found:
                return {"dhns_geo": found.get("dhns_geo", ""),
                        "commit": found.get("git_commit") or "",
                        "torch": found.get("torch", ""),
                        "device": found.get("device") or ""}
    return {name: "" for name in FIELDS}
