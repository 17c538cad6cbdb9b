"""The STAC API Transaction sink against a real stac-fastapi-pgstac server on 127.0.0.1; retries on
a loopback stub."""

from __future__ import annotations

import dataclasses
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from core.errors import CatalogError
from stac import schemas
from stac.publish import PublicFolder, api_document, build_item, publish_api
from stac.transaction import RetryPolicy, TransactionClient, merge_extent
from tests.conftest import free_port

from .conftest import SCORE, published_pair, write_products
from .stac_server import StacApiServer

FAST = RetryPolicy(attempts=3, backoff_s=0.05)
DATA_URL = "https://data.example.org/coalign"


def served(tmp_path: Path) -> PublicFolder:
    """``tmp_path`` as if a web server published it under :data:`DATA_URL`."""
    return PublicFolder(tmp_path, DATA_URL)


def _without_nulls(value):
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nulls(v) for v in value]
    return value


def comparable(doc: dict) -> dict:
    """What the server must hand back unchanged: all but the links (it makes its own). pgstac drops
    null-valued fields (here the QA picture's ``proj:code: null``), so nulls are not compared."""
    return _without_nulls(
        {
            k: doc[k]
            for k in (
                "id",
                "collection",
                "geometry",
                "bbox",
                "properties",
                "assets",
                "stac_extensions",
            )
        }
    )


def test_create_republish_and_read_back(stac_api: StacApiServer, tmp_path: Path) -> None:
    client = TransactionClient(stac_api.url)
    first = published_pair(write_products(tmp_path / "run1"), activation="tx-create")
    item = build_item(first)
    assert publish_api(item, stac_api.url, public=served(tmp_path)) == "created"

    stored = client.get_item("tx-create", first.item_id)
    sent = api_document(item, stac_api.url, served(tmp_path))
    assert comparable(stored) == comparable(sent)
    # assets are served addresses, never paths of the publishing machine
    assert stored["assets"]["displacement"]["href"] == f"{DATA_URL}/run1/displacement.tif"
    assert all(a["href"].startswith(DATA_URL + "/") for a in stored["assets"].values())
    assert stored["assets"]["displacement"]["raster:bands"][0]["nodata"] == "nan"
    assert {link["href"] for link in stored["links"] if link["rel"] == "derived_from"} == {
        first.optical.item_href,
        first.sar.item_href,
    }
    schemas.validate(stored, unknown_extensions="skip")  # what the API serves is valid STAC too
    collection = client.get_collection("tx-create")
    assert collection is not None and collection["extent"]["spatial"]["bbox"][0] == pytest.approx(
        item["bbox"]
    )

    # re-publishing the same pair (a rerun with a new score) updates, never duplicates
    rerun = dataclasses.replace(first, score={**SCORE, "mean_px": 1.25})
    assert publish_api(build_item(rerun), stac_api.url, public=served(tmp_path)) == "updated"
    assert publish_api(build_item(rerun), stac_api.url, public=served(tmp_path)) == "updated"
    assert client.item_ids("tx-create") == [first.item_id]
    assert (
        client.get_item("tx-create", first.item_id)["properties"]["coalign:score_mean_px"] == 1.25
    )


def test_collection_extent_grows_with_its_items(stac_api: StacApiServer, tmp_path: Path) -> None:
    client = TransactionClient(stac_api.url)
    a = published_pair(write_products(tmp_path / "a"), activation="tx-extent")
    assert publish_api(build_item(a), stac_api.url, public=served(tmp_path)) == "created"
    extent_a = client.get_collection("tx-extent")["extent"]
    # a second pair acquired a year later elsewhere: the collection's extent widens to cover both
    later = dataclasses.replace(a.sar, datetime=a.sar.datetime.replace(year=2024))
    b = dataclasses.replace(a, pair_id=a.pair_id + "-b", sar=later)
    assert publish_api(build_item(b), stac_api.url, public=served(tmp_path)) == "created"
    extent_b = client.get_collection("tx-extent")["extent"]
    assert extent_b["temporal"]["interval"][0][0] == extent_a["temporal"]["interval"][0][0]
    assert extent_b["temporal"]["interval"][0][1].startswith("2024-02-09")
    assert sorted(client.item_ids("tx-extent")) == sorted([a.item_id, b.item_id])
    # the same items again leave the collection as it is
    col = {
        "type": "Collection",
        "stac_version": "1.1.0",
        "id": "tx-extent",
        "description": "d",
        "license": "other",
        "extent": extent_a,
        "links": [],
    }
    assert client.ensure_collection(col) == "unchanged"


def test_server_rejection_is_a_clear_catalog_error(
    stac_api: StacApiServer, pair, products: dict[str, Path]
) -> None:
    tmp_path = next(iter(products.values())).parent
    client = TransactionClient(stac_api.url, retry=FAST)
    publish_api(build_item(pair), stac_api.url, public=served(tmp_path))
    bad = api_document(build_item(pair), stac_api.url, served(tmp_path))
    del bad["geometry"]
    bad["id"] = "no-geometry"
    with pytest.raises(CatalogError) as err:
        client.upsert_item(bad)
    message = str(err.value)
    assert (
        "HTTP 400" in message
        and "no-geometry" in message
        and "/collections/turkey-2023/items" in message
    )
    assert "geometry" in message.split("HTTP 400", 1)[1]  # an excerpt of the server's explanation
    with pytest.raises(CatalogError, match="HTTP 404"):
        client.get_item("turkey-2023", "never-published")
    assert client.get_collection("no-such-activation") is None


# --- retries and failures, on a scripted loopback server ---------------------------------------


class _Scripted(BaseHTTPRequestHandler):
    script: list[tuple[int, dict]] = []
    seen: list[tuple[str, str]] = []

    def log_message(self, *args) -> None:
        pass

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        self.seen.append((self.command, self.path))
        code, body = self.script.pop(0) if self.script else (500, {"detail": "script exhausted"})
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        if code == 503:
            self.send_header("Retry-After", "0")
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PUT = _answer


@pytest.fixture
def scripted() -> Iterator[tuple[str, type[_Scripted]]]:
    handler = type("Handler", (_Scripted,), {"script": [], "seen": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", handler
    finally:
        server.shutdown()
        server.server_close()


ITEM = {"type": "Feature", "id": "i1", "collection": "c1"}


def test_transient_errors_are_retried(scripted) -> None:
    url, handler = scripted
    handler.script += [(503, {"detail": "starting"}), (502, {}), (201, ITEM)]
    assert TransactionClient(url, retry=FAST).upsert_item(ITEM) == "created"
    assert handler.seen == [("POST", "/collections/c1/items")] * 3


def test_conflict_becomes_an_update(scripted) -> None:
    url, handler = scripted
    handler.script += [(409, {"code": "ConflictError"}), (200, ITEM)]
    assert TransactionClient(url, retry=FAST).upsert_item(ITEM) == "updated"
    assert handler.seen == [("POST", "/collections/c1/items"), ("PUT", "/collections/c1/items/i1")]


def test_persistent_server_errors_give_up_with_the_last_answer(scripted) -> None:
    url, handler = scripted
    handler.script += [(503, {"detail": "database is down"})] * 3
    with pytest.raises(CatalogError, match=r"failed 3 times; last: HTTP 503: .*database is down"):
        TransactionClient(url, retry=FAST).upsert_item(ITEM)


def test_server_without_transactions_is_named(scripted) -> None:
    url, handler = scripted
    handler.script += [(405, {"detail": "Method Not Allowed"})]
    with pytest.raises(CatalogError, match="Transaction extension"):
        TransactionClient(url, retry=FAST).upsert_item(ITEM)


def test_unreachable_server() -> None:
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    with pytest.raises(CatalogError, match="Is the server up"):
        TransactionClient(url, retry=FAST, timeout_s=2).upsert_item(ITEM)


def test_collection_created_when_missing_then_merged(scripted) -> None:
    url, handler = scripted
    col = {
        "type": "Collection",
        "id": "c1",
        "extent": {
            "spatial": {"bbox": [[1, 1, 2, 2]]},
            "temporal": {"interval": [["2023-02-01T00:00:00Z", "2023-02-02T00:00:00Z"]]},
        },
    }
    handler.script += [(404, {}), (201, col)]
    assert TransactionClient(url, retry=FAST).ensure_collection(col) == "created"
    wider = {
        **col,
        "extent": {
            "spatial": {"bbox": [[0, 1, 2, 3]]},
            "temporal": {"interval": [["2023-02-01T00:00:00Z", "2023-03-01T00:00:00Z"]]},
        },
    }
    handler.script += [(200, col), (200, wider)]
    assert TransactionClient(url, retry=FAST).ensure_collection(wider) == "updated"
    assert handler.seen[-2:] == [("GET", "/collections/c1"), ("PUT", "/collections/c1")]


def test_merge_extent() -> None:
    old = {
        "spatial": {"bbox": [[1, 1, 2, 2]]},
        "temporal": {"interval": [["2023-02-01T00:00:00Z", "2023-02-02T00:00:00Z"]]},
    }
    inside = {
        "spatial": {"bbox": [[1.5, 1.5, 2, 2]]},
        "temporal": {"interval": [["2023-02-01T12:00:00+00:00", "2023-02-01T13:00:00Z"]]},
    }
    assert merge_extent(old, inside) is old
    new = {
        "spatial": {"bbox": [[0, 1.5, 3, 2]]},
        "temporal": {"interval": [["2023-01-01T00:00:00Z", None]]},
    }
    assert merge_extent(old, new) == {
        "spatial": {"bbox": [[0, 1, 3, 2]]},
        "temporal": {"interval": [["2023-01-01T00:00:00Z", None]]},
    }
    assert merge_extent(None, new) is new


def test_publish_task_sends_the_catalog_addresses_of_its_assets(
    stac_api: StacApiServer, tmp_path: Path
) -> None:
    from tasks.catalog import publish

    pair = published_pair(write_products(tmp_path / "products"), activation="tx-public")
    catalog = tmp_path / "catalog"
    out = publish.fn(pair, str(catalog), stac_api.url, "https://data.example.org/catalog/")
    stored = TransactionClient(stac_api.url).get_item("tx-public", pair.item_id)
    assert out["stac_api"] == "created"
    for key, asset in stored["assets"].items():
        assert asset["href"].startswith("https://data.example.org/catalog/tx-public/"), key
        local = catalog / asset["href"].removeprefix("https://data.example.org/catalog/")
        assert local.is_file(), key  # the address names the published copy
