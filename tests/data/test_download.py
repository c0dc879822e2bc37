"""``iotids data download`` against a local HTTP server (never the internet)."""

from __future__ import annotations

import hashlib
import http.server
import io
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from iotids.data.download import download_archive
from iotids.errors import DownloadError


def _zip_bytes() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        z.writestr("MachineLearningCVE/x.csv", "a,b\n1,2\n")
    return buffer.getvalue()


ARCHIVE = _zip_bytes()
PAGES = {
    "/good/MachineLearningCSV.zip": ("application/zip", ARCHIVE),
    "/good/MachineLearningCSV.md5": ("text/plain", f"{hashlib.md5(ARCHIVE).hexdigest()}  x.zip\n".encode()),
    "/html/MachineLearningCSV.zip": ("text/html", b"<!DOCTYPE html><html><body>Please register</body></html>"),
    "/sneaky/MachineLearningCSV.zip": ("application/octet-stream", b"<html><body>Please register</body></html>"),
    "/bad/MachineLearningCSV.zip": ("application/zip", ARCHIVE),
    "/bad/MachineLearningCSV.md5": ("text/plain", b"0123456789abcdef0123456789abcdef\n"),
}


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path not in PAGES:
            self.send_error(404)
            return
        kind, body = PAGES[self.path]
        self.send_response(200)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def test_download_verifies_published_md5(server: str, tmp_path: Path) -> None:
    path = download_archive(f"{server}/good/MachineLearningCSV.zip", tmp_path, progress=False)
    assert path.read_bytes() == ARCHIVE
    assert sorted(p.name for p in tmp_path.iterdir()) == ["MachineLearningCSV.zip"]


def test_download_with_given_sha256(server: str, tmp_path: Path) -> None:
    digest = hashlib.sha256(ARCHIVE).hexdigest()
    path = download_archive(f"{server}/good/MachineLearningCSV.zip", tmp_path, sha256=digest, progress=False)
    assert path.exists()


@pytest.mark.parametrize("where", ["html", "sneaky"])
def test_web_page_instead_of_archive(server: str, tmp_path: Path, where: str) -> None:
    with pytest.raises(DownloadError, match="web page instead of the archive") as info:
        download_archive(f"{server}/{where}/MachineLearningCSV.zip", tmp_path, md5="0" * 32, progress=False)
    assert "browser" in str(info.value)
    assert list(tmp_path.iterdir()) == []


def test_checksum_mismatch_keeps_nothing(server: str, tmp_path: Path) -> None:
    with pytest.raises(DownloadError, match="checksum mismatch"):
        download_archive(f"{server}/bad/MachineLearningCSV.zip", tmp_path, progress=False)
    assert list(tmp_path.iterdir()) == []


def test_missing_checksum_file(server: str, tmp_path: Path) -> None:
    with pytest.raises(DownloadError, match="--md5"):
        download_archive(f"{server}/html/MachineLearningCSV.zip", tmp_path, progress=False)
