"""The catalog view in a real headless Chromium, served by the server ``coalign open`` runs."""

from __future__ import annotations

import json
import os
import shutil
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from stac.publish.serve import catalog_server, served_url

from .view_catalog import ITEMS, publish_view_catalog

LICENSE_HOST = "https://creativecommons.org/"


def _missing() -> str | None:
    """What headless Chromium testing lacks here; None when nothing."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "the selenium package (pip install -e '.[dev]')"
    if not (shutil.which("chromium") or shutil.which("chromium-browser")):
        return "Chromium (Debian package chromium)"
    if not shutil.which("chromedriver"):
        return "chromedriver (Debian package chromium-driver)"
    return None


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    missing = _missing()
    if missing:
        reason = f"headless browser unavailable: no {missing}; run .ci/install-browser.sh"
        if os.environ.get("COALIGN_REQUIRE_BROWSER"):
            pytest.fail(reason + " (COALIGN_REQUIRE_BROWSER is set)")
        pytest.skip(reason)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or shutil.which("chromium-browser") or ""
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"):
        options.add_argument(arg)
    # both binaries given: Selenium Manager has nothing to look up or download
    driver = webdriver.Chrome(options=options, service=Service(shutil.which("chromedriver")))
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = publish_view_catalog(tmp_path_factory.mktemp("view"))
    server = catalog_server(root, 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield served_url(server)
    server.shutdown()
    server.server_close()


def fetch(url: str) -> tuple[int, bytes]:
    with urllib.request.urlopen(url, timeout=30) as response:  # noqa: S310 (our own server)
        return response.status, response.read()


def check_page(driver: Any, url: str, base: str) -> dict[str, Any]:
    """Load ``url``; every picture loaded, every link answered (JSON parsed); what it shows."""
    driver.get(url)
    seen = driver.execute_script(
        "return {title: document.title,"
        " items: document.querySelectorAll('tr.item').length,"
        " collections: document.querySelectorAll('tr.collection').length,"
        " text: document.body.innerText,"
        " images: Array.from(document.images).map(i => ["
        "   i.src, i.complete && i.naturalWidth > 0]),"
        " links: Array.from(document.querySelectorAll('a[href]')).map(a => a.href)}"
    )
    for src, loaded in seen["images"]:
        assert src.startswith(base + "/") and loaded, (url, src)
    for href in seen["links"]:
        if href.startswith(LICENSE_HOST):
            continue  # license texts: no network here
        assert href.startswith(base + "/"), (url, href)
        status, body = fetch(href)
        assert status == 200, (url, href, status)
        if href.endswith(".json"):
            assert isinstance(json.loads(body), dict), href
    return seen


def test_index_and_activation_pages_render_and_resolve(browser: Any, served: str) -> None:
    index = check_page(browser, served + "/", served)
    assert "catalog" in index["title"] and index["collections"] == 2
    pages = [
        href
        for href in browser.execute_script(
            "return Array.from(document.querySelectorAll('tr.collection a'))"
            ".map(a => a.href).filter(h => h.endsWith('/index.html'))"
        )
    ]
    assert len(pages) == 2
    shown = {}
    for page in pages:
        seen = check_page(browser, page, served)
        shown[seen["title"]] = seen
    turkey = shown["turkey-2023 — coalign"]
    assert turkey["items"] == sum(a == "turkey-2023" for a, _, _ in ITEMS) == 2
    assert len(turkey["images"]) == 2  # a QA thumbnail per item
    for value in ("1.25", "0.75", "6.50", "151", "local 1.0", "CC-BY-NC-4.0 AND CC-BY-4.0"):
        assert value in turkey["text"], value
    vanuatu = shown["Vanuatu <2023> & co — coalign"]  # escaped in the page, shown as text
    assert vanuatu["items"] == 1 and "Vanuatu <2023> & co" in vanuatu["text"]


def test_catalog_folder_is_served_as_the_catalog_url_expects(served: str) -> None:
    status, body = fetch(served + "/catalog.json")
    assert status == 200 and json.loads(body)["type"] == "Catalog"
    status, body = fetch(served + "/")
    assert status == 200 and b"<table>" in body


def test_served_root_is_the_catalog_folder(tmp_path: Path) -> None:
    (tmp_path / "index.html").write_text("<p>here</p>")
    server = catalog_server(tmp_path, 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        with pytest.raises(urllib.error.HTTPError, match="404"):
            fetch(served_url(server) + "/../etc/passwd")
        assert fetch(served_url(server) + "/")[1] == b"<p>here</p>"
    finally:
        server.shutdown()
        server.server_close()
