"""Parsing of option values the command line takes as text."""

from __future__ import annotations

from typing import Any, Callable, TypeVar

import typer

from dhns_geo.config import TrainConfig
from dhns_geo.errors import OptionError

T = TypeVar("T")

#: ``--root`` of the commands that read a dataset.
ROOT_OPTION = typer.Option(None, "--root", help="Dataset root (default: "
                           "$DHNS_DATA or ~/.cache/dhns-geo).")
#: ``--out`` of the commands that write a table (or print it).
TSV_OUT_OPTION = typer.Option(None, "--out", help="Write a TSV file here "
                              "(default: stdout).")


def comma_list(text: str, kind: Callable[[str], T], flag: str) -> list[T]:
    """``"1,5,25"`` -> ``[1, 5, 25]``; a clear error naming ``flag`` for an
    empty list or a value ``kind`` does not accept."""
    try:
        values = [kind(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise OptionError(flag, text, f"comma-separated {kind.__name__} "
                          "values") from None
    if not values:
        raise OptionError(flag, text, "a list of at least one value")
    return values


def config_from(values: dict[str, Any], flags: dict[str, Any],
                source: str) -> TrainConfig:
    """The config of ``values`` (from ``source``, e.g. a file) overridden by
    ``flags``; a bad value is said of its flag, or of ``source``'s key."""
    try:
        return TrainConfig.from_dict({**values, **flags})
    except OptionError as exc:
        raise (exc if exc.name in flags else exc.within(source)) from None
