"""Client of the STAC API Transaction extension (collections and items), idempotent by id.

Implements the create/update operations of the STAC API Transaction extension
(https://api.stacspec.org/v1.0.0/ogcapi-features/extensions/transaction and
.../collections/extensions/transaction): ``POST /collections``, ``PUT /collections/{id}``,
``POST /collections/{id}/items`` and ``PUT /collections/{id}/items/{item_id}``. Creating something
that exists (HTTP 409) becomes an update, so publishing the same item twice leaves one item.
Transient failures (connection errors, timeouts, 429 and 5xx) are retried with exponential
backoff; any other failure raises :class:`~core.errors.CatalogError` with the status and an
excerpt of the server's answer.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import quote

import requests

from core.errors import CatalogError

TRANSIENT = frozenset({429, 500, 502, 503, 504})
Outcome = Literal["created", "updated", "unchanged"]


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently transient failures are retried."""

    attempts: int = 4
    backoff_s: float = 0.5
    max_wait_s: float = 30.0


def _excerpt(r: requests.Response, n: int = 300) -> str:
    text = " ".join((r.text or "").split())
    return text[:n] + ("…" if len(text) > n else "")


class TransactionClient:
    """A STAC API with the Transaction extension at ``url`` (its landing page)."""

    def __init__(
        self,
        url: str,
        *,
        timeout_s: float = 30.0,
        retry: RetryPolicy = RetryPolicy(),
        session: requests.Session | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self.timeout_s = timeout_s
        self.retry = retry
        self.session = session or requests.Session()
        self.headers = {"Accept": "application/json", **(headers or {})}

    # -- HTTP ---------------------------------------------------------------------------

    def _request(
        self, method: str, path: str, body: dict[str, Any] | None = None
    ) -> requests.Response:
        url = self.url + path
        last = ""
        for attempt in range(self.retry.attempts):
            wait = min(self.retry.backoff_s * 2**attempt, self.retry.max_wait_s)
            try:
                r = self.session.request(
                    method, url, json=body, headers=self.headers, timeout=self.timeout_s
                )
            except (requests.ConnectionError, requests.Timeout) as exc:
                last = f"{type(exc).__name__}: {exc}"
            else:
                if r.status_code not in TRANSIENT:
                    return r
                last = f"HTTP {r.status_code}: {_excerpt(r)}"
                retry_after = r.headers.get("Retry-After", "")
                if retry_after.isdigit():
                    wait = min(float(retry_after), self.retry.max_wait_s)
            if attempt < self.retry.attempts - 1:
                time.sleep(wait)
        raise CatalogError(
            f"STAC API {method} {url} failed {self.retry.attempts} times; last: {last}. "
            "Is the server up and reachable?"
        )

    @staticmethod
    def _fail(r: requests.Response, what: str) -> CatalogError:
        hint = ""
        if (
            r.status_code in (404, 405)
            and r.request is not None
            and r.request.method in ("POST", "PUT")
        ):
            hint = " (does the server enable the Transaction extension?)"
        elif r.status_code in (401, 403):
            hint = " (the server wants credentials: pass headers=...)"
        return CatalogError(
            f"STAC API rejected {what}: {r.request.method if r.request else ''} {r.url} "
            f"-> HTTP {r.status_code}{hint}: {_excerpt(r)}"
        )

    # -- collections ----------------------------------------------------------------------

    def get_collection(self, collection_id: str) -> dict[str, Any] | None:
        """The collection, or None when the server has none with that id."""
        r = self._request("GET", f"/collections/{quote(collection_id, safe='')}")
        if r.status_code == 404:
            return None
        if r.status_code != 200:
            raise self._fail(r, f"reading collection {collection_id!r}")
        return r.json()

    def ensure_collection(self, collection: dict[str, Any]) -> Outcome:
        """Create the collection, or widen the existing one's extent to cover ``collection``'s."""
        cid = collection["id"]
        existing = self.get_collection(cid)
        if existing is None:
            r = self._request("POST", "/collections", collection)
            if r.status_code in (200, 201):
                return "created"
            if r.status_code != 409:
                raise self._fail(r, f"collection {cid!r}")
            existing = self.get_collection(cid)  # created meanwhile by a concurrent publisher
            if existing is None:
                raise self._fail(r, f"collection {cid!r} (409 conflict, yet it cannot be read)")
        merged = merge_extent(existing.get("extent"), collection["extent"])
        if merged == existing.get("extent"):
            return "unchanged"
        body = {**collection, "extent": merged}
        r = self._request("PUT", f"/collections/{quote(cid, safe='')}", body)
        if r.status_code not in (200, 201, 204):
            raise self._fail(r, f"updating collection {cid!r}")
        return "updated"

    # -- items ------------------------------------------------------------------------------

    def upsert_item(self, item: dict[str, Any]) -> Outcome:
        """Create the item, or replace it when its id exists (HTTP 409); ``created`` or
        ``updated``."""
        cid, iid = item.get("collection"), item.get("id")
        if not cid or not iid:
            raise CatalogError(
                f"STAC Item needs 'id' and 'collection' to be published to {self.url} (got "
                f"id={iid!r}, collection={cid!r})"
            )
        items = f"/collections/{quote(cid, safe='')}/items"
        r = self._request("POST", items, item)
        if r.status_code in (200, 201):
            return "created"
        if r.status_code != 409:
            raise self._fail(r, f"item {iid!r}")
        r = self._request("PUT", f"{items}/{quote(iid, safe='')}", item)
        if r.status_code not in (200, 201, 204):
            raise self._fail(r, f"updating item {iid!r}")
        return "updated"

    def get_item(self, collection_id: str, item_id: str) -> dict[str, Any]:
        r = self._request(
            "GET", f"/collections/{quote(collection_id, safe='')}/items/{quote(item_id, safe='')}"
        )
        if r.status_code != 200:
            raise self._fail(r, f"reading item {item_id!r}")
        return r.json()

    def item_ids(self, collection_id: str, limit: int = 100) -> list[str]:
        """Ids of every item of a collection (following ``next`` links)."""
        ids: list[str] = []
        r = self._request(
            "GET", f"/collections/{quote(collection_id, safe='')}/items?limit={limit}"
        )
        while True:
            if r.status_code != 200:
                raise self._fail(r, f"listing items of {collection_id!r}")
            page = r.json()
            ids += [f["id"] for f in page.get("features", [])]
            nxt = next((link for link in page.get("links", []) if link.get("rel") == "next"), None)
            if nxt is None or not page.get("features"):
                return ids
            href = nxt["href"]
            if nxt.get("method", "GET").upper() != "GET":
                raise CatalogError(
                    f"{self.url}: paging by {nxt.get('method')} is not supported here"
                )
            r = self.session.get(href, headers=self.headers, timeout=self.timeout_s)


def _parse(t: str | None) -> dt.datetime | None:
    return None if t is None else dt.datetime.fromisoformat(t.replace("Z", "+00:00"))


def merge_extent(old: dict[str, Any] | None, new: dict[str, Any]) -> dict[str, Any]:
    """The smallest collection extent (first bbox and interval) covering both ``old`` and
    ``new``."""
    if not old:
        return new
    ob, nb = old["spatial"]["bbox"][0], new["spatial"]["bbox"][0]
    bbox = [min(ob[0], nb[0]), min(ob[1], nb[1]), max(ob[2], nb[2]), max(ob[3], nb[3])]
    (os_, oe), (ns, ne) = old["temporal"]["interval"][0], new["temporal"]["interval"][0]
    start = os_ if os_ is None or (ns is not None and _parse(os_) <= _parse(ns)) else ns
    end = oe if oe is None or (ne is not None and _parse(oe) >= _parse(ne)) else ne
    if ob == bbox and [os_, oe] == [start, end]:
        return old
    return {"spatial": {"bbox": [bbox]}, "temporal": {"interval": [[start, end]]}}
