"""Rules for option values, shared by the config and every command.

A rule is ``rule(value) -> None`` when the value is allowed, else the
allowed values in words (for :class:`~dhns_geo.errors.OptionError`).
"""

from __future__ import annotations

import math
import re
from typing import Any, Callable

from dhns_geo.errors import OptionError

Rule = Callable[[Any], "str | None"]


def integer(low: int, high: int | None = None) -> Rule:
    allowed = (f"an integer from {low} to {high}" if high is not None
               else f"an integer of at least {low}")

    def rule(value: Any) -> str | None:
        ok = (isinstance(value, int) and not isinstance(value, bool)
              and value >= low and (high is None or value <= high))
        return None if ok else allowed
    return rule


def number(low: float | None = None, above: bool = False) -> Rule:
    allowed = ("a finite number" if low is None else
               f"a finite number {'above' if above else 'of at least'} {low:g}")

    def rule(value: Any) -> str | None:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return allowed
        ok = math.isfinite(value) and (
            low is None or (value > low if above else value >= low))
        return None if ok else allowed
    return rule


def choice(*choices: str) -> Rule:
    allowed = f"one of {', '.join(choices)}"
    return lambda value: None if value in choices else allowed


def flag(value: Any) -> str | None:
    return None if isinstance(value, bool) else "true or false"


def text(value: Any) -> str | None:
    return None if isinstance(value, str) and value.strip() else "a non-empty text"


def device_rule(value: Any) -> str | None:
    allowed = "auto, cpu, cuda or cuda:N"
    if value == "auto":
        return None
    ok = isinstance(value, str) and re.fullmatch(r"(cpu|cuda)(:\d+)?", value)
    return None if ok else allowed


def number_list(item: Rule, what: str) -> Rule:
    allowed = f"a non-empty list of {what}"

    def rule(value: Any) -> str | None:
        ok = (isinstance(value, (list, tuple)) and len(value) > 0
              and all(item(v) is None for v in value))
        return None if ok else allowed
    return rule


def optional(rule: Rule) -> Rule:
    """``rule``, or unset (``None``)."""
    def either(value: Any) -> str | None:
        allowed = None if value is None else rule(value)
        return None if allowed is None else f"{allowed} (or unset)"
    return either


def check(name: str, value: Any, rule: Rule) -> Any:
    """Returns ``value`` if ``rule`` allows it, else raises
    :class:`OptionError` naming ``name``."""
    allowed = rule(value)
    if allowed is not None:
        raise OptionError(name, value, allowed)
    return value
