"""Remote catalogs stay remote; malformed catalogs, degenerate hrefs and bad AOI/date options
give one clear error."""

from __future__ import annotations

import functools
import http.server
import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

import stac.readers.crawl as crawl
from core.errors import CatalogError, FetchError, InputError
from flows.cli import build_parser, main
from stac.aoi import parse_bbox
from stac.fetch import fetch
from stac.links import UntrustedLink, trusted_link
from stac.readers import CrawlStats, crawl_static, load_json, scene_from_item, search_api
from stac.scene import Scene
from tests.stac.conftest import RangeHandler

LA = (-118.7, 34.0, -118.5, 34.2)
WINDOW = ["--start", "2023-01-01", "--end", "2023-03-01"]


def _item(item_id: str, asset_href: str) -> dict:
    """A valid optical STAC Item over Los Angeles naming one GeoTIFF."""
    x0, y0, x1, y1 = LA
    return {
        "type": "Feature",
        "stac_version": "1.0.0",
        "id": item_id,
        "geometry": {
            "type": "Polygon",
            "coordinates": [[[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]],
        },
        "bbox": list(LA),
        "properties": {"datetime": "2023-02-01T10:00:00Z", "gsd": 0.5},
        "links": [],
        "assets": {"visual": {"href": asset_href, "type": "image/tiff", "roles": ["data"]}},
    }


def _catalog(*links: str) -> dict:
    return {
        "type": "Catalog",
        "stac_version": "1.0.0",
        "id": "cat",
        "description": "test catalog",
        "links": [{"rel": "item", "href": h, "type": "application/json"} for h in links],
    }


def _write(path: Path, doc: object) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc))
    return path


def _serve(handler) -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def site(tmp_path) -> Iterator[tuple[str, Path]]:
    """A real HTTP server on 127.0.0.1 serving ``tmp_path/site``; (base URL, folder)."""
    root = tmp_path / "site"
    root.mkdir()
    yield from ((url, root) for url in _serve(functools.partial(RangeHandler, directory=root)))


@pytest.fixture
def local_item(tmp_path) -> Path:
    """A valid Item outside the served folder: it would be listed if a remote catalog reached it."""
    tif = tmp_path / "private" / "secret.tif"
    tif.parent.mkdir()
    tif.write_bytes(b"not served")
    return _write(tmp_path / "private" / "item.json", _item("local-secret", str(tif)))


@pytest.fixture
def opened(monkeypatch) -> list[str]:
    """Every document href the crawler reads."""
    seen: list[str] = []
    real = crawl.load_json

    def spy(href: str, *args, **kwargs):
        seen.append(href)
        return real(href, *args, **kwargs)

    monkeypatch.setattr(crawl, "load_json", spy)
    return seen


@pytest.mark.parametrize(
    "link",
    ["{path}", "{uri}", "file:///etc/passwd", "/etc/passwd", "//elsewhere.invalid/item.json"],
    ids=["absolute-path", "file-uri-of-item", "file-passwd", "etc-passwd", "other-host"],
)
def test_remote_catalog_cannot_link_local_files(site, local_item, opened, capsys, link):
    url, root = site
    link = link.format(path=local_item, uri=local_item.as_uri())
    _write(root / "cat" / "catalog.json", _catalog(link))

    with pytest.raises(UntrustedLink, match=r"refused item link .* remote STAC document") as exc:
        list(crawl_static(url + "/cat/catalog.json"))
    assert url + "/cat/catalog.json" in str(exc.value) and link[:40] in str(exc.value)
    assert opened == [url + "/cat/catalog.json"]  # the local target was never read

    assert (
        main(
            ["scenes", "--catalog", url + "/cat/catalog.json", "--bbox", "-119,33,-118,35"] + WINDOW
        )
        == 2
    )
    err = capsys.readouterr().err
    assert err.startswith("coalign scenes: error: refused item link") and "local-secret" not in err


def test_relative_escapes_stay_on_the_server(site, local_item, opened, tmp_path):
    url, root = site
    _write(root / "item.json", _item("served", "img/x.tif"))
    # ../ beyond the server root cannot climb out of the origin into tmp_path/private/
    _write(
        root / "a" / "b" / "catalog.json",
        _catalog("../../../../private/item.json", "../../../item.json"),
    )
    stats = CrawlStats()
    scenes = list(crawl_static(url + "/a/b/catalog.json", stats=stats))
    assert [s.id for s in scenes] == ["served"]
    assert scenes[0].href == url + "/img/x.tif"
    assert all(h.startswith(url + "/") for h in opened)
    assert stats.errors == [
        f"cannot read STAC document {url}/private/item.json: HTTP 404 File not found"
    ]


def test_remote_item_cannot_name_local_assets(site, local_item, tmp_path):
    url, root = site
    secret = str(local_item.parent / "secret.tif")
    _write(root / "bad.json", _item("bad", secret))
    _write(root / "bad_uri.json", _item("bad_uri", "file://" + secret))
    for name in ("bad.json", "bad_uri.json"):
        with pytest.raises(UntrustedLink, match=r"refused asset 'visual' .* remote STAC document"):
            list(crawl_static(f"{url}/{name}"))
    with pytest.raises(UntrustedLink, match="remote item may only name http"):
        fetch(secret, tmp_path / "cache", source=f"{url}/bad.json")
    record = Scene.from_record(  # a scene record built elsewhere is checked too
        scene_from_item(_item("ok", "https://example.invalid/x.tif"), f"{url}/ok.json").to_record()
    )
    with pytest.raises(UntrustedLink, match="refused"):
        Scene.from_record({**record.to_record(), "href": secret})
    assert fetch(secret, tmp_path / "cache", source=str(local_item)) == Path(secret)


def test_local_catalog_may_link_remote_and_local(site, local_item, tmp_path):
    url, root = site
    _write(root / "items" / "remote.json", _item("remote", "../img/r.tif"))
    cat = _write(tmp_path / "catalog.json", _catalog(url + "/items/remote.json", str(local_item)))
    scenes = {s.id: s for s in crawl_static(str(cat))}
    assert scenes["remote"].href == url + "/img/r.tif"
    assert scenes["local-secret"].href == str(local_item.parent / "secret.tif")
    assert trusted_link("s3://bucket/a/catalog.json", "../../../x.json") == "s3://bucket/x.json"


@pytest.mark.parametrize(
    "href",
    [
        "http://127.0.0.1:9/a/..",
        "http://127.0.0.1:9/a/.",
        "http://127.0.0.1:9/a/",
        "http://127.0.0.1:9",
        "s3://bucket/key/%2e%2e",
        "",
        "  ",
    ],
)
def test_fetch_refuses_hrefs_that_name_no_file(tmp_path, href):
    cache = tmp_path / "cache"
    with pytest.raises(FetchError, match="names no file"):
        fetch(href, cache, retries=1)
    assert not cache.exists() or not any(cache.rglob("*"))


def test_local_href_naming_a_folder_is_refused(tmp_path):
    (tmp_path / "d").mkdir()
    with pytest.raises(FetchError, match="names no file"):
        fetch(str(tmp_path / "d" / ".."), tmp_path / "cache")


@pytest.mark.parametrize(
    "doc, message",
    [
        ([_catalog()], "malformed: a JSON list instead of an object"),
        ({**_catalog(), "links": {"rel": "item"}}, "malformed: links must be an array"),
        ({**_catalog(), "links": ["item.json"]}, "malformed: links must be an array"),
        ({**_item("x", "x.tif"), "properties": []}, "malformed: properties is an array"),
        ({**_item("x", "x.tif"), "assets": ["x.tif"]}, "malformed: assets is an array"),
        ({**_item("x", "x.tif"), "assets": {"visual": "x.tif"}}, "asset 'visual' is a string"),
        ({**_item("x", "x.tif"), "assets": {"visual": {"href": 5}}}, "asset 'visual' href is"),
        (
            {**_item("x", "x.tif"), "properties": {"datetime": 20230201}},
            "datetime '20230201' / start_datetime 'None' is not RFC 3339",
        ),
        (
            {**_item("x", "x.tif"), "properties": {"datetime": "6 Feb 2023"}},
            "is not RFC 3339",
        ),
    ],
    ids=[
        "array",
        "links-object",
        "links-strings",
        "properties",
        "assets",
        "asset",
        "href",
        "datetime-number",
        "datetime-text",
    ],
)
def test_malformed_documents_are_one_line_errors(tmp_path, capsys, doc, message):
    path = _write(tmp_path / "doc.json", doc)
    with pytest.raises(CatalogError, match=message):
        list(crawl_static(str(path)))
    assert main(["scenes", "--catalog", str(path), "--bbox", "-119,33,-118,35", *WINDOW]) == 2
    err = capsys.readouterr().err
    assert err.startswith("coalign scenes: error: ") and err.count("\n") == 1


def test_malformed_child_is_skipped_and_recorded(tmp_path):
    good = _write(tmp_path / "good.json", _item("good", "x.tif"))
    bad = _write(tmp_path / "bad.json", {**_catalog(), "links": "nope"})
    _write(tmp_path / "catalog.json", _catalog(str(bad), str(good)))
    stats = CrawlStats()
    assert [s.id for s in crawl_static(str(tmp_path / "catalog.json"), stats=stats)] == ["good"]
    assert len(stats.errors) == 1 and "links must be an array" in stats.errors[0]
    with pytest.raises(CatalogError, match="links must be an array"):
        list(crawl_static(str(tmp_path / "catalog.json"), strict=True))


def test_event_date_names_the_accepted_formats(tmp_path, capsys):
    cat = _write(tmp_path / "catalog.json", _catalog())
    args = ["pairs", "--catalog", str(cat), "--bbox", "-119,33,-118,35", *WINDOW]
    assert main([*args, "--event-date", "6 Feb 2023"]) == 2
    err = capsys.readouterr().err
    assert "--event-date '6 Feb 2023'" in err and "YYYY-MM-DD" in err and "T01:17:00Z" in err
    assert main([*args, "--event-date", "2023-02-06"]) == 0
    assert (
        main(
            [
                "scenes",
                "--catalog",
                str(cat),
                "--bbox",
                "-119,33,-118,35",
                "--start",
                "yesterday",
                "--end",
                "2023-03-01",
            ]
        )
        == 2
    )
    assert "--start 'yesterday': not an ISO 8601" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["scenes", "pairs", "activate"])
@pytest.mark.parametrize("form", ["separate", "equals"])
def test_western_hemisphere_bbox_parses(command, form):
    value = ",".join(map(str, LA))
    opt = ["--bbox", value] if form == "separate" else [f"--bbox={value}"]
    args = build_parser().parse_args([command, "--catalog", "c.json", *opt, *WINDOW])
    assert args.bbox == value and parse_bbox(args.bbox) == LA


def test_western_hemisphere_bbox_finds_scenes(tmp_path, capsys):
    cat = _write(
        tmp_path / "catalog.json", _catalog(str(_write(tmp_path / "i.json", _item("la", "la.tif"))))
    )
    argv = ["scenes", "--catalog", str(cat), "--bbox", "-118.65,34.05,-118.6,34.1", *WINDOW]
    assert main([*argv, "--json"]) == 0
    assert [r["id"] for r in json.loads(capsys.readouterr().out)] == ["la"]


@pytest.mark.parametrize(
    "value, message",
    [
        ("36.9,37.0,200,100", "maxx 200 is not a longitude"),
        ("37.0,36.9,38,91", "maxy 91 is not a latitude"),
        ("-181,0,1,1", "minx -181 is not a longitude"),
        ("10,0,5,1", r"expected minx < maxx .*antimeridian"),
        ("0,5,1,5", "expected miny < maxy"),
        ("1,2,3", "3 numbers instead of 4"),
        ("1,2,3,4,5", "5 numbers instead of 4"),
        ("a,b,c,d", "give the AOI as minx,miny,maxx,maxy"),
        ("nan,0,1,1", "finite"),
        ('{"type": "Point", "coordinates": [1, 2]}', "expected minx < maxx"),
    ],
)
def test_bbox_range_checks(value, message):
    with pytest.raises(InputError, match=message):
        parse_bbox(value)


def test_bbox_forms_and_cli_exit(capsys):
    poly = {"type": "Polygon", "coordinates": [[[-1, -2], [3, -2], [3, 4], [-1, -2]]]}
    assert parse_bbox(json.dumps(poly)) == (-1.0, -2.0, 3.0, 4.0)
    assert parse_bbox({"type": "Feature", "geometry": poly, "properties": {}}) == (-1, -2, 3, 4)
    assert parse_bbox([-180, -90, 180, 90]) == (-180.0, -90.0, 180.0, 90.0)
    assert parse_bbox(None) is None and parse_bbox("") is None
    args = ["--catalog", "c.json", "--bbox", "36.9,37.0,200,100", *WINDOW]
    for command in ("scenes", "pairs", "activate"):
        assert main([command, *args]) == 2
        assert "maxx 200 is not a longitude" in capsys.readouterr().err


class _HtmlNotFound(http.server.BaseHTTPRequestHandler):
    """Every path: HTTP 404 with a long HTML page, as a web server's error page."""

    def log_message(self, *args):  # quiet
        pass

    def do_GET(self):
        body = ("<html><body><h1>Not Found</h1>" + "<p>lorem ipsum</p>\n" * 500).encode()
        self.send_response(404)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def html_404() -> Iterator[str]:
    yield from _serve(_HtmlNotFound)


def test_stac_api_404_is_one_line(html_404, capsys):
    with pytest.raises(CatalogError) as exc:
        list(search_api(html_404 + "/api", bbox=LA))
    msg = str(exc.value)
    assert msg == f"STAC API {html_404}/api search failed: HTTP 404 Not Found"
    with pytest.raises(CatalogError, match=r"^cannot read STAC document .*: HTTP 404 Not Found$"):
        load_json(html_404 + "/catalog.json")
    assert (
        main(["scenes", "--stac-api", html_404 + "/api", "--bbox", "-119,33,-118,35", *WINDOW]) == 2
    )
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "HTTP 404 Not Found" in err and "<html" not in err
