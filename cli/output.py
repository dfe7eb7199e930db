"""Plain-text output helpers for the command line."""

from __future__ import annotations

from typing import Any, Sequence


def format_value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4f}" if abs(value) < 1000 else f"{value:.1f}"
    return str(value)


def format_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A left-aligned plain-text table."""
    cells = [[format_value(v) for v in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h)
              for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths)),
             "  ".join("-" * w for w in widths)]
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths)) for row in cells]
    return "\n".join(line.rstrip() for line in lines)


def metrics_table(metrics: dict) -> str:
    """The evaluator's dict as a table with rows both/head/tail."""
    keys = ["mrr", "mr", "hits@1", "hits@3", "hits@10"]
    rows = [[side, *(m[k] for k in keys)] for side, m in
            (("both", metrics), ("head", metrics["head"]),
             ("tail", metrics["tail"]))]
    return format_table(["side", *keys], rows)
