"""Fetch CIC's official CICIDS2017 archive, with a progress bar and a checksum check.

CIC publishes ``MachineLearningCSV.zip`` next to ``MachineLearningCSV.md5``. Its server sometimes answers with
an HTML page (a registration form or an error) instead of the archive; that is recognised and explained rather
than saved as a broken zip.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

import httpx

from iotids.errors import DownloadError

OFFICIAL_URL = "http://205.174.165.80/CICDataset/CIC-IDS-2017/Dataset/CIC-IDS-2017/CSVs/MachineLearningCSV.zip"
DATASET_PAGE = "https://www.unb.ca/cic/datasets/ids-2017.html"
_ZIP_MAGIC = b"PK\x03\x04"


def _web_page_error(url: str) -> DownloadError:
    return DownloadError(
        f"{url} answered with a web page instead of the archive (CIC's server does this at times, e.g. when it "
        f"asks for registration). Download MachineLearningCSV.zip in a browser from {DATASET_PAGE}, then run "
        "`iotids data inspect PATH/MachineLearningCSV.zip` (no need to unpack it), or try again later."
    )


def fetch_checksum(url: str, *, timeout: float = 30.0) -> str:
    """The MD5 that CIC publishes next to an archive (``.zip`` -> ``.md5``)."""
    md5_url = re.sub(r"\.zip$", ".md5", url)
    try:
        response = httpx.get(md5_url, timeout=timeout, follow_redirects=True)
        response.raise_for_status()
    except httpx.HTTPError as exc:
        raise DownloadError(f"cannot fetch the checksum {md5_url}: {exc}; pass --md5 to give it") from None
    match = re.search(r"\b[0-9a-fA-F]{32}\b", response.text)
    if not match or "<html" in response.text[:512].lower():
        raise DownloadError(f"{md5_url} holds no MD5 checksum; pass --md5 to give it")
    return match.group(0).lower()


def download_archive(
    url: str = OFFICIAL_URL,
    dest: str | os.PathLike[str] = ".",
    *,
    md5: str | None = None,
    sha256: str | None = None,
    progress: bool = True,
    timeout: float = 60.0,
) -> Path:
    """Download ``url`` into directory ``dest`` and verify it.

    The checksum is ``md5`` or ``sha256`` when given, else the MD5 published next to the archive. The file
    appears under its final name only when complete and verified (``.part`` first, then renamed).

    Raises
    ------
    DownloadError
        On a network error, an HTML answer, a file that is not a zip archive, or a checksum mismatch.
    """
    if md5 is None and sha256 is None:
        md5 = fetch_checksum(url, timeout=timeout)
    directory = Path(dest)
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / (Path(httpx.URL(url).path).name or "download.zip")
    part = target.with_name(target.name + ".part")
    digest = hashlib.sha256() if sha256 else hashlib.md5()
    try:
        with httpx.stream("GET", url, timeout=timeout, follow_redirects=True) as response:
            response.raise_for_status()
            if "html" in response.headers.get("content-type", "").lower():
                raise _web_page_error(url)
            total = int(response.headers.get("content-length") or 0) or None
            with open(part, "wb") as out, _bar(progress, total, target.name) as advance:
                first = True
                for chunk in response.iter_bytes(1 << 20):
                    if first:
                        if chunk.lstrip()[:15].lower().startswith((b"<!doctype", b"<html")):
                            raise _web_page_error(url)
                        if not chunk.startswith(_ZIP_MAGIC):
                            raise DownloadError(f"{url} did not deliver a zip archive (it starts with {chunk[:8]!r})")
                        first = False
                    out.write(chunk)
                    digest.update(chunk)
                    advance(len(chunk))
    except httpx.HTTPError as exc:
        part.unlink(missing_ok=True)
        raise DownloadError(f"downloading {url} failed: {exc}") from None
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    expected = (sha256 or md5 or "").lower()
    if digest.hexdigest() != expected:
        part.unlink(missing_ok=True)
        raise DownloadError(
            f"checksum mismatch for {target.name}: expected {expected}, got {digest.hexdigest()}; the download is "
            "damaged or the archive changed. Nothing was kept; try again."
        )
    os.replace(part, target)
    return target


class _bar:
    """A rich progress bar on stderr, or nothing; used as ``with _bar(...) as advance: advance(n)``."""

    def __init__(self, enabled: bool, total: int | None, name: str) -> None:
        self.enabled, self.total, self.name = enabled, total, name

    def __enter__(self):  # type: ignore[no-untyped-def]
        if not self.enabled:
            return lambda n: None
        from rich.console import Console
        from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn

        self.progress = Progress("[progress.description]{task.description}", BarColumn(), DownloadColumn(),
                                 TransferSpeedColumn(), console=Console(stderr=True), transient=True)
        self.progress.start()
        task = self.progress.add_task(self.name, total=self.total)
        return lambda n: self.progress.advance(task, n)

    def __exit__(self, *exc: object) -> None:
        if self.enabled:
            self.progress.stop()
