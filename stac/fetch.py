"""Asset fetching into a content-addressed cache: resumable, checksum-verified, retried.

- ``file://`` and plain paths are used where they are (no copy), verified when a checksum is given,
  unless the asset came from an item read over http(s)/s3 (``source``): that is refused.
- An href that names no file (empty, or a path ending in ``/``, ``.`` or ``..``) is refused.
- ``http(s)://`` is downloaded into ``<cache>/<key[:2]>/<key>/<file name>`` with
  ``key = sha256(href | checksum)``. Bytes go to ``<name>.part``; after a dropped connection
  the next attempt resumes it with an HTTP ``Range`` request (RFC 9110 §14, guarded by
  ``If-Range`` so a file changed on the server restarts the download). Only a complete,
  verified file is renamed to its final name (with the mode the umask gives), so the final
  name never holds a partial or corrupt file. Concurrent fetches of the same asset wait on a lock.
- ``s3://bucket/key`` of public buckets is read anonymously over HTTPS
  (``https://bucket.s3.amazonaws.com/key``; ``COALIGN_S3_ENDPOINT`` points it elsewhere, e.g. a
  local server in tests).
- ``file:checksum`` (STAC file extension) is verified (:mod:`stac.checksum`).

For reading only an AOI, :func:`gdal_path` gives a ``/vsicurl/`` path for GDAL/rasterio COG
range reads and :func:`fetch_window` saves just the AOI window of a remote raster.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import time
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import requests

from core.errors import FetchError, InputError
from core.files import atomic_path, locked, rename_into_place
from stac.checksum import parse_multihash, verify
from stac.links import check_asset

log = logging.getLogger(__name__)
TRANSIENT = (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError)
CHUNK = 1 << 16

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


class _Transient(Exception):
    """A retryable server answer (5xx, 429)."""


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

    ``http(s)``/``s3`` become ``/vsicurl/<https url>`` (anonymous; ``COALIGN_S3_ENDPOINT``
    honoured).
    Open it inside ``rasterio.Env(**REMOTE_READ_ENV)``.
    """
    p = urlparse(href)
    if p.scheme in ("http", "https", "s3"):
        return "/vsicurl/" + http_url(href)
    return unquote(p.path) if p.scheme == "file" else href


def asset_name(href: str) -> str:
    """The file name ``href`` ends in (its last path segment, percent-decoded).

    Raises:
        FetchError: ``href`` is empty or names no file: its path ends in ``/``, ``.`` or ``..``.
    """
    if not isinstance(href, str) or not href.strip():
        raise FetchError(
            f"cannot fetch asset href {href!r}: an empty href names no file; give the URL or "
            "path of the asset file"
        )
    name = unquote(urlparse(http_url(href)).path).rsplit("/", 1)[-1]
    if name in ("", ".", ".."):
        raise FetchError(
            f"cannot fetch {href[:200]!r}: it names no file (its path is empty or ends in "
            "'/', '.' or '..'); give the URL or path of the asset file"
        )
    return name


def cache_path(
    href: str, cache: str | os.PathLike[str], checksum: str | None = None, suffix: str = ""
) -> Path:
    """Where :func:`fetch` keeps ``href``: a folder named by sha256 of the href and checksum.

    Raises:
        FetchError: ``href`` names no file (:func:`asset_name`).
    """
    key = hashlib.sha256(f"{href}|{checksum or ''}{suffix}".encode()).hexdigest()
    # not core.ids.slug: every other character becomes one "_" and nothing is stripped, so the
    # cached file keeps the asset's name length and extension, and no name is refused
    name = re.sub(r"[^A-Za-z0-9._-]", "_", asset_name(href))
    return Path(cache) / key[:2] / key / name


def _total_size(r: requests.Response) -> int | None:
    cr = r.headers.get("Content-Range", "")
    m = re.match(r"bytes (\d+)-(\d+)/(\d+|\*)", cr)
    if m and m.group(3) != "*":
        return int(m.group(3))
    if (
        r.status_code == 200
        and r.headers.get("Content-Length", "").isdigit()
        and "gzip" not in r.headers.get("Content-Encoding", "")
    ):
        return int(r.headers["Content-Length"])
    return None


def _download(url: str, part: Path, meta: Path, timeout: float) -> None:
    """One attempt: continue ``part`` (Range + If-Range) or start it over; raise on a short body."""
    have = part.stat().st_size if part.exists() else 0
    validator = json.loads(meta.read_text()).get("validator") if have and meta.exists() else None
    headers = {"Range": f"bytes={have}-"} if have else {}
    if have and validator:
        headers["If-Range"] = validator
    with requests.get(url, headers=headers, stream=True, timeout=timeout) as r:
        if r.status_code == 416 and have:
            # the part already holds the whole file, or more than the file now has
            m = re.match(r"bytes \*/(\d+)", r.headers.get("Content-Range", ""))
            if m and int(m.group(1)) == have:
                return
            part.unlink()
            raise _Transient(
                "the partial download is larger than the file on the server; restarting"
            )
        if r.status_code >= 500 or r.status_code == 429:
            raise _Transient(f"HTTP {r.status_code}")
        if r.status_code not in (200, 206):
            raise FetchError(f"cannot fetch {url}: HTTP {r.status_code}")
        if r.status_code == 206:
            m = re.match(r"bytes (\d+)-", r.headers.get("Content-Range", ""))
            if not m or int(m.group(1)) != have:
                part.unlink(missing_ok=True)
                raise _Transient(
                    f"server answered range {r.headers.get('Content-Range')!r} to "
                    f"bytes={have}-; restarting"
                )
            mode = "ab"
        else:  # 200: no range support, or the file changed (If-Range): start over
            mode = "wb"
        total = _total_size(r)
        validator = r.headers.get("ETag") or r.headers.get("Last-Modified")
        meta.write_text(json.dumps({"validator": validator, "total": total}))
        with open(part, mode) as fh:
            for chunk in r.iter_content(CHUNK):
                fh.write(chunk)
    size = part.stat().st_size
    if total is not None and size != total:
        raise _Transient(f"connection closed at {size} of {total} bytes")


def fetch(
    href: str,
    cache: str | os.PathLike[str],
    checksum: str | None = None,
    retries: int = 4,
    backoff: float = 0.5,
    timeout: float = 60.0,
    source: str | None = None,
) -> Path:
    """A local path holding the asset at ``href`` (downloaded once, verified, cached).

    Transient failures (connection errors, timeouts, HTTP 5xx/429, a short body) are retried
    ``retries`` times in all with exponential backoff, resuming the partial file. A checksum
    mismatch discards the bytes and downloads once more from scratch before failing.

    Args:
        href: The asset: a local path, ``file://``, ``http(s)://`` or ``s3://`` URL.
        cache: The download cache folder.
        checksum: The item's ``file:checksum`` (multihash hex), verified when given.
        retries: Attempts in all for transient failures.
        backoff: First retry delay in seconds (doubled each time).
        timeout: Seconds to wait for the server.
        source: The STAC item ``href`` came from: an item read over http(s)/s3 may only name
            http(s)/s3 assets, so a local path or ``file://`` href from it is refused.

    Raises:
        FetchError: The asset is missing, names no file, cannot be downloaded, or fails its
            checksum.
        UntrustedLink: ``source`` is remote and ``href`` is local.
    """
    asset_name(href)
    check_asset(source, href)
    p = urlparse(href)
    if p.scheme in ("", "file"):
        return _local_asset(href, checksum)
    if p.scheme not in ("http", "https", "s3"):
        raise InputError(
            f"cannot fetch {href}: unsupported scheme {p.scheme!r} (file, http, https, s3)"
        )
    if checksum:
        parse_multihash(checksum)  # malformed checksums fail before any download
    final = cache_path(href, cache, checksum)
    if final.exists():
        return final
    # another process fetching the same asset finishes first
    with locked(final.parent / ".lock"):
        if final.exists():  # fetched by whoever held the lock
            return final
        _download_with_retries(href, final, checksum, retries, backoff, timeout)
        return final


def _local_asset(href: str, checksum: str | None) -> Path:
    """The file a plain path or ``file://`` href names, verified when ``checksum`` is given."""
    p = urlparse(href)
    path = Path(unquote(p.path) if p.scheme == "file" else href)
    if not path.is_file():
        raise FetchError(f"asset not found: {href}")
    verify(path, checksum, href)
    return path


def _download_with_retries(
    href: str, final: Path, checksum: str | None, retries: int, backoff: float, timeout: float
) -> None:
    """Download ``href`` to ``final`` (lock held): retry transient failures, verify, rename."""
    url = http_url(href)
    # not core.files.atomic_path: the partial download keeps a fixed name so that a later run
    # (after a crash or a dropped connection) resumes it; only a verified file is renamed
    part, meta = final.with_name(final.name + ".part"), final.with_name(final.name + ".part.json")
    clean_restarts, attempt = 1, 0
    while True:
        try:
            _download(url, part, meta, timeout)
            if not _verified_part(href, part, meta, checksum, retry=clean_restarts > 0):
                clean_restarts -= 1
                continue
            rename_into_place(part, final)
            meta.unlink(missing_ok=True)
            return
        except (*TRANSIENT, _Transient) as exc:
            attempt += 1
            _wait_to_retry(href, exc, attempt, retries, backoff)


def _verified_part(href: str, part: Path, meta: Path, checksum: str | None, retry: bool) -> bool:
    """Whether ``part`` matches ``checksum``; a mismatch discards it and raises unless ``retry``."""
    try:
        verify(part, checksum, href)
        return True
    except FetchError:
        part.unlink(missing_ok=True)
        meta.unlink(missing_ok=True)
        if not retry:
            raise
    log.warning("fetch %s: checksum mismatch; downloading once more from scratch", href)
    return False


def _wait_to_retry(href: str, exc: Exception, attempt: int, retries: int, backoff: float) -> None:
    """Sleep before attempt ``attempt + 1``; :class:`FetchError` once ``retries`` attempts ran."""
    if attempt >= retries:
        raise FetchError(
            f"cannot fetch {href} after {retries} attempts: {exc} "
            f"(the partial download is kept and resumed next time)"
        ) from exc
    delay = backoff * 2 ** (attempt - 1)
    log.warning(
        "fetch %s: %s; retrying in %.1f s (attempt %d of %d)",
        href,
        exc,
        delay,
        attempt + 1,
        retries,
    )
    time.sleep(delay)


def _aoi_window(ds: Any, bbox: tuple[float, float, float, float]) -> Any:
    """The pixel window of ``ds`` covering a WGS84 bbox (also for rotated geotransforms)."""
    import numpy as np
    from rasterio.warp import transform_geom
    from rasterio.windows import Window
    from shapely.geometry import box, mapping, shape

    if ds.crs is None:
        raise InputError(f"{ds.name} has no CRS: cannot find the AOI window")
    geom = shape(
        transform_geom(
            "EPSG:4326", ds.crs, mapping(box(*bbox).segmentize(abs(bbox[2] - bbox[0]) / 16 or 1e-6))
        )
    )
    xs, ys = np.asarray(geom.exterior.coords).T
    cols, rows = ~ds.transform * (xs, ys)
    c0, c1 = max(0, int(np.floor(np.min(cols)))), min(ds.width, int(np.ceil(np.max(cols))))
    r0, r1 = max(0, int(np.floor(np.min(rows)))), min(ds.height, int(np.ceil(np.max(rows))))
    if c0 >= c1 or r0 >= r1:
        raise InputError(f"the AOI {bbox} does not overlap {ds.name}")
    return Window(c0, r0, c1 - c0, r1 - r0)


def fetch_window(
    href: str, bbox: tuple[float, float, float, float], cache: str | os.PathLike[str]
) -> Path:
    """A local GeoTIFF holding only the AOI window (WGS84 ``bbox``) of a remote or local raster.

    Reads through GDAL range requests (COG overviews and tiles), so only the bytes of the
    window travel; cached like :func:`fetch` (the key includes the bbox).
    """
    final = cache_path(href, cache, None, suffix="|window=" + ",".join(f"{v:.7f}" for v in bbox))
    final = final.with_name(final.stem + "_aoi.tif")
    if final.exists():
        return final
    with locked(final.parent / ".lock"):
        if final.exists():
            return final
        with atomic_path(final) as tmp:
            _write_window(href, bbox, tmp)
    return final


def _write_window(href: str, bbox: tuple[float, float, float, float], out_path: Path) -> None:
    """Write the AOI window of ``href`` to the GeoTIFF ``out_path``; FetchError when unreadable."""
    import rasterio

    try:
        with rasterio.Env(**REMOTE_READ_ENV), rasterio.open(gdal_path(href)) as ds:
            window = _aoi_window(ds, bbox)
            data = ds.read(window=window)
            profile = {
                **ds.profile,
                "driver": "GTiff",
                "width": int(window.width),
                "height": int(window.height),
                "transform": ds.window_transform(window),
                "tiled": True,
                "blockxsize": 256,
                "blockysize": 256,
                "compress": "deflate",
            }
            if window.width < 256 or window.height < 256:
                profile.pop("blockxsize"), profile.pop("blockysize")
                profile["tiled"] = False
            with rasterio.open(out_path, "w", **profile) as out:
                out.write(data)
                for i in range(ds.count):
                    if ds.descriptions[i]:
                        out.set_band_description(i + 1, ds.descriptions[i])
    except rasterio.errors.RasterioIOError as exc:
        raise FetchError(f"cannot read the AOI window of {href}: {exc}") from exc
