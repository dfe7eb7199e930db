"""Exceptions with messages meant for users, not stack traces."""

from __future__ import annotations

from os import PathLike


class DHNSError(Exception):
    """Base class of every error that dhns-geo reports to a user.

    The command line prints the message of a :class:`DHNSError` on one line
    and exits non-zero, without a traceback.
    """


class OptionError(DHNSError, ValueError):
    """An option has a value it does not allow.

    Args:
        name: The option (a :class:`~dhns_geo.config.TrainConfig` field or a
            command-line flag).
        value: The value given.
        allowed: The allowed values, in words.
        source: Where the value came from (a config file), if not given
            directly.
    """

    def __init__(self, name: str, value: object, allowed: str,
                 source: str | None = None) -> None:
        self.name, self.value, self.allowed, self.source = name, value, allowed, source
        where = f"{source}: " if source else ""
        super().__init__(f"{where}{name} must be {allowed}; got {value!r}")

    def within(self, source: str) -> "OptionError":
        """The same error, said of a value read from ``source``."""
        return OptionError(self.name, self.value, self.allowed, source)

    def as_flag(self) -> "OptionError":
        """The same error, naming the command-line flag of the option."""
        flag = self.name if self.name.startswith("-") else (
            "--" + self.name.replace("_", "-"))
        return OptionError(flag, self.value, self.allowed)


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
