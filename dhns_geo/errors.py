"""Exceptions with messages meant for users, not stack traces."""

from __future__ import annotations

from os import PathLike


class DHNSError(Exception):
    """Base class of every error that dhns-geo reports to a user.

    The command line prints the message of a :class:`DHNSError` on one line
    and exits non-zero, without a traceback.
    """


class DataFormatError(DHNSError, ValueError):
    """A data file is malformed.

    Args:
        path: The offending file.
        problem: What is wrong, in plain words.
        line: The 1-based line number, when the problem is on one line.
    """

    def __init__(self, path: str | PathLike, problem: str,
                 line: int | None = None) -> None:
        self.path = str(path)
        self.line = line
        self.problem = problem
        where = self.path if line is None else f"{self.path}, line {line}"
        super().__init__(f"{where}: {problem}")


class DataQualityWarning(UserWarning):
    """Duplicate triples or triples shared between splits."""
