"""Asset fetching into a content-addressed cache: resumable, checksum-verified, retried.

``file://`` and plain paths are used where they are (no copy); ``http(s)://``
is downloaded into ``<cache>/<sha256(href)[:2]>/<sha256(href)>/<name>`` through a
``.part`` file, resumed with HTTP Range requests after a dropped connection,
verified against the item's ``file:checksum`` (multihash, sha2-256) and only
then renamed; ``s3://bucket/key`` of public buckets is read anonymously over
HTTPS (``https://bucket.s3.amazonaws.com/key``, or ``COALIGN_S3_ENDPOINT``).
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from pathlib import Path
from urllib.parse import urlparse

import requests

from models.errors import FetchError

log = logging.getLogger(__name__)
TRANSIENT = (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError)


def http_url(href: str) -> str:
    """The HTTPS URL of an ``s3://`` href (anonymous public read); other hrefs unchanged."""
    p = urlparse(href)
    if p.scheme != "s3":
        return href
    endpoint = os.environ.get("COALIGN_S3_ENDPOINT")
    if endpoint:
        return f"{endpoint.rstrip('/')}/{p.netloc}/{p.path.lstrip('/')}"
    return f"https://{p.netloc}.s3.amazonaws.com/{p.path.lstrip('/')}"


def gdal_path(href: str) -> str:
    """A path GDAL/rasterio can read by windows without downloading the file (COG range reads).

    Open it inside ``rasterio.Env(**REMOTE_READ_ENV)``.
    """
    p = urlparse(href)
    if p.scheme in ("http", "https", "s3"):
        return "/vsicurl/" + http_url(href)
    return p.path if p.scheme == "file" else href


# GDAL options for windowed remote reads: no directory listing on open (one request instead of
# many), bounded waits, retries on transient errors
REMOTE_READ_ENV = {
    "GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR",
    "GDAL_HTTP_TIMEOUT": "60",
    "GDAL_HTTP_CONNECTTIMEOUT": "10",
    "GDAL_HTTP_MAX_RETRY": "3",
    "GDAL_HTTP_RETRY_DELAY": "1",
    "CPL_VSIL_CURL_ALLOWED_EXTENSIONS": ".tif,.tiff",
}


def _verify(path: Path, checksum: str | None) -> None:
    if not checksum:
        return
    if not checksum.startswith("1220"):
        log.warning("unsupported multihash %s for %s: not verified", checksum[:4], path)
        return
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    if h.hexdigest() != checksum[4:]:
        raise FetchError(f"checksum mismatch for {path.name}: expected sha256 {checksum[4:16]}…, got {h.hexdigest()[:12]}…")


def fetch(href: str, cache: str | os.PathLike[str], checksum: str | None = None, retries: int = 4, backoff: float = 0.5) -> Path:
    """A local path holding the asset at ``href`` (downloaded once, verified, cached)."""
    p = urlparse(href)
    if p.scheme in ("", "file"):
        path = Path(p.path if p.scheme == "file" else href)
        if not path.exists():
            raise FetchError(f"asset not found: {href}")
        _verify(path, checksum)
        return path
    url = http_url(href)
    key = hashlib.sha256(f"{href}|{checksum or ''}".encode()).hexdigest()
    name = Path(urlparse(url).path).name or "asset"
    final = Path(cache) / key[:2] / key / name
    if final.exists():
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    part = final.with_name(final.name + ".part")
    for attempt in range(retries):
        try:
            have = part.stat().st_size if part.exists() else 0
            headers = {"Range": f"bytes={have}-"} if have else {}
            with requests.get(url, headers=headers, stream=True, timeout=60) as r:
                if r.status_code == 416:  # already complete
                    pass
                elif r.status_code >= 500:
                    raise requests.ConnectionError(f"HTTP {r.status_code}")
                elif r.status_code not in (200, 206):
                    raise FetchError(f"cannot fetch {href}: HTTP {r.status_code}")
                else:
                    mode = "ab" if r.status_code == 206 else "wb"
                    with open(part, mode) as fh:
                        for chunk in r.iter_content(1 << 16):
                            fh.write(chunk)
            try:
                _verify(part, checksum)
            except FetchError:
                part.unlink(missing_ok=True)
                raise
            os.replace(part, final)
            return final
        except TRANSIENT as exc:
            if attempt == retries - 1:
                raise FetchError(f"cannot fetch {href} after {retries} attempts: {exc}") from exc
            log.warning("fetch %s: %s; retrying (attempt %d)", href, exc, attempt + 2)
            time.sleep(backoff * 2**attempt)
    raise FetchError(f"cannot fetch {href}")
