"""Reading one STAC document (path, ``file://``, ``http(s)://``, public ``s3://``) and its times."""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import requests

from core.errors import CatalogError
from stac.fetch import http_url

_local = threading.local()


def _session() -> requests.Session:
    # one keep-alive session per worker thread (requests sessions are not thread-safe)
    s = getattr(_local, "session", None)
    if s is None:
        s = _local.session = requests.Session()
    return s


def http_status(r: requests.Response) -> str:
    """``HTTP <code> <reason>`` of a response, one line (the body is left out)."""
    return f"HTTP {r.status_code} {r.reason or ''}".strip()


def load_json(href: str, retries: int = 3, backoff: float = 0.5) -> dict[str, Any]:
    """A JSON object from a path, ``file://``, ``http(s)://`` or public ``s3://`` URL.

    Connection errors and HTTP 5xx/429 are retried with exponential backoff;
    other HTTP errors fail at once. A document that is not a JSON object (an array,
    a number) is a :class:`CatalogError`.

    Args:
        href: Where the document is.
        retries: Attempts in all for a remote document.
        backoff: First retry delay in seconds (doubled each time).
    """
    parsed = urlparse(href)
    if parsed.scheme in ("http", "https", "s3"):
        doc = _load_remote(href, retries, backoff)
    else:
        doc = _load_local(href, unquote(parsed.path) if parsed.scheme == "file" else href)
    if not isinstance(doc, dict):
        raise CatalogError(
            f"STAC document {href} is malformed: a JSON {type(doc).__name__} instead of an "
            "object (a Catalog, Collection or Item)"
        )
    return doc


def _load_remote(href: str, retries: int, backoff: float) -> Any:
    url = http_url(href)
    for attempt in range(retries):
        try:
            r = _session().get(url, timeout=30)
            if r.status_code >= 500 or r.status_code == 429:
                raise requests.ConnectionError(http_status(r))
            if r.status_code != 200:
                raise CatalogError(f"cannot read STAC document {href}: {http_status(r)}")
            try:
                return r.json()
            except ValueError as exc:
                raise CatalogError(f"STAC document {href} is not valid JSON ({exc})") from None
        except (requests.ConnectionError, requests.Timeout) as exc:
            if attempt == retries - 1:
                raise CatalogError(
                    f"cannot reach STAC document {href} after {retries} attempts: {exc}"
                ) from exc
            time.sleep(backoff * 2**attempt)
    raise CatalogError(f"cannot reach STAC document {href}: no attempts allowed ({retries=})")


def _load_local(href: str, path: str) -> Any:
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise CatalogError(f"STAC document not found: {href}") from None
    except IsADirectoryError:
        raise CatalogError(
            f"{href} is a folder: give the catalog.json/collection.json/item JSON inside it"
        ) from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CatalogError(f"STAC document {href} is not valid JSON ({exc})") from exc


def parse_datetime(value: str | None) -> dt.datetime | None:
    """An aware datetime from an RFC 3339 string (``Z`` allowed); ``None`` for empty/open values."""
    if not value or value == "..":
        return None
    d = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    return d if d.tzinfo else d.replace(tzinfo=dt.UTC)
