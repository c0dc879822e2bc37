"""Every exception and warning that iotids raises on purpose.

Each error subclasses :class:`IotidsError` and the matching builtin, so callers can catch either. Messages name
the object, the file, line and column where there is one, what was expected, what was found and the fix.
"""

from __future__ import annotations

from pathlib import Path


class IotidsError(Exception):
    """Base class of every iotids error; the CLI prints its message without a traceback."""


class DataFormatError(IotidsError, ValueError):
    """A data file cannot be read as flow records.

    Parameters
    ----------
    message : what is wrong and how to fix it.
    path, line, column : where; ``line`` is 1-based and counts the header as line 1.
    """

    def __init__(
        self, message: str, *, path: str | Path | None = None, line: int | None = None, column: str | None = None
    ) -> None:
        self.path = None if path is None else str(path)
        self.line = line
        self.column = column
        where = ", ".join(
            part
            for part in (
                self.path,
                None if line is None else f"line {line}",
                None if column is None else f"column {column!r}",
            )
            if part
        )
        super().__init__(f"{where}: {message}" if where else message)


class SchemaMismatchError(IotidsError, ValueError):
    """Columns differ from what a model or layout expects."""

    def __init__(self, what: str, missing: list[str], unexpected: list[str] | None = None) -> None:
        self.missing = list(missing)
        self.unexpected = list(unexpected or [])
        parts = [what]
        if self.missing:
            more = f" (and {len(self.missing) - 5} more)" if len(self.missing) > 5 else ""
            parts.append(f"missing columns: {', '.join(self.missing[:5])}{more}")
        if self.unexpected:
            more = f" (and {len(self.unexpected) - 5} more)" if len(self.unexpected) > 5 else ""
            parts.append(f"unexpected columns: {', '.join(self.unexpected[:5])}{more}")
        super().__init__("; ".join(parts))


class InvalidParameterError(IotidsError, ValueError, TypeError):
    """A parameter is out of its allowed range ("The 'x' parameter of Y must be ... Got ... instead.")."""


class NotFittedError(IotidsError, ValueError, AttributeError):
    """An estimator or preprocessor was used before ``fit`` (the bases of scikit-learn's own NotFittedError;
    scikit-learn is not imported here so that ``import iotids`` stays fast)."""


class ModelFileError(IotidsError, ValueError):
    """A model directory is incomplete, altered or of another version."""


class DownloadError(IotidsError, RuntimeError):
    """A download failed or did not deliver the expected archive."""


class DataQualityWarning(UserWarning):
    """Something in the data is suspicious but the data can still be used."""
