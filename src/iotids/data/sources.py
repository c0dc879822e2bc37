"""Where flow CSVs come from: plain ``.csv``, ``.csv.gz``, directories of them and CIC's official ``.zip``.

A :class:`Source` is one CSV, possibly a member of a zip archive; :func:`open_source` gives its bytes as a stream
without unpacking anything to disk.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from iotids.errors import DataFormatError

CSV_SUFFIXES = (".csv", ".csv.gz")
_GZIP_MAGIC = b"\x1f\x8b"


@dataclass(frozen=True, slots=True)
class Source:
    """One CSV file: ``path`` on disk and, for a zip archive, the ``member`` inside it."""

    path: Path
    member: str | None = None

    @property
    def name(self) -> str:
        """How reports and errors name it: ``dir/file.csv`` or ``archive.zip:member.csv``."""
        return f"{self.path}:{self.member}" if self.member else str(self.path)

    @property
    def stem(self) -> str:
        return Path(self.member).name if self.member else self.path.name

    def fingerprint(self) -> str:
        """Changes when the file changes (absolute path, size, modification time, member)."""
        stat = self.path.stat()
        key = f"{self.path.resolve()}|{self.member}|{stat.st_size}|{stat.st_mtime_ns}"
        return hashlib.sha256(key.encode()).hexdigest()[:32]


def _is_csv(name: str) -> bool:
    lower = name.lower()
    return lower.endswith(CSV_SUFFIXES)


def _zip_members(path: Path) -> list[Source]:
    try:
        with zipfile.ZipFile(path) as archive:
            names = sorted(n for n in archive.namelist() if _is_csv(n) and not n.startswith("__MACOSX/"))
    except zipfile.BadZipFile as exc:
        raise DataFormatError(f"not a readable zip archive ({exc})", path=path) from None
    if not names:
        raise DataFormatError("the zip archive holds no .csv file", path=path)
    return [Source(path, n) for n in names]


def find_sources(paths: Iterable[str | os.PathLike[str]]) -> list[Source]:
    """Expand files, directories (recursively, sorted) and zip archives into the CSVs to read.

    Raises
    ------
    DataFormatError
        For a path that does not exist, or a directory without any flow CSV.
    """
    sources: list[Source] = []
    for raw in paths:
        path = Path(raw)
        if not path.exists():
            raise DataFormatError("no such file or directory", path=path)
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.is_file() and (_is_csv(p.name) or p.suffix == ".zip"))
            if not found:
                raise DataFormatError("the directory holds no .csv, .csv.gz or .zip file", path=path)
            for p in found:
                sources.extend(_zip_members(p) if p.suffix == ".zip" else [Source(p)])
        elif path.suffix.lower() == ".zip":
            sources.extend(_zip_members(path))
        else:
            sources.append(Source(path))
    return sources


def open_source(source: Source) -> BinaryIO:
    """Open a source for binary reading, decompressing ``.gz`` members and files on the fly."""
    try:
        if source.member is not None:
            archive = zipfile.ZipFile(source.path)
            stream: BinaryIO = archive.open(source.member)  # type: ignore[assignment]
            if source.member.lower().endswith(".gz"):
                stream = gzip.GzipFile(fileobj=stream)  # type: ignore[assignment]
            return stream
        if source.path.name.lower().endswith(".gz"):
            return gzip.open(source.path, "rb")  # type: ignore[return-value]
        return open(source.path, "rb")
    except OSError as exc:
        raise DataFormatError(f"cannot open ({exc.strerror or exc})", path=source.name) from None
