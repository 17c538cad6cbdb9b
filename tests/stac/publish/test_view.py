"""The HTML view of a published catalog: pages, rows, scores, escaping, relative links only."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote

from stac.publish import build_item, publish_static
from stac.publish.view import write_view

from .conftest import published_pair, write_products
from .view_catalog import publish_view_catalog


class Refs(HTMLParser):
    """The ``href``/``src`` attributes, the tags and the rows' classes of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.refs: list[str] = []
        self.tags: list[str] = []
        self.rows: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        values = dict(attrs)
        self.refs += [v for k, v in attrs if k in ("href", "src") and v]
        if tag == "tr" and values.get("class"):
            self.rows.append(values["class"] or "")


def parse(page: Path) -> Refs:
    refs = Refs()
    refs.feed(page.read_text(encoding="utf-8"))
    return refs


def test_pages_list_activations_and_items_with_relative_links(tmp_path: Path) -> None:
    root = publish_view_catalog(tmp_path)
    index = root / "index.html"
    turkey = root / "turkey-2023" / "index.html"
    vanuatu = next(p for p in root.glob("*/index.html") if p != turkey)
    for page in (index, turkey, vanuatu):
        refs = parse(page)
        assert "script" not in refs.tags and "link" not in refs.tags  # inline CSS, no scripts
        for ref in refs.refs:
            if ref.startswith("https://creativecommons.org/"):
                continue  # the license texts
            assert not re.match(r"^([a-z]+:|/)", ref), (page, ref)
            assert (page.parent / unquote(ref)).resolve().is_file(), (page, ref)
    assert parse(index).rows.count("collection") == 2
    assert parse(turkey).rows.count("item") == 2 and parse(vanuatu).rows.count("item") == 1
    text = turkey.read_text()
    assert "1.25" in text and "0.75" in text and "6.50" in text and ">151<" in text
    assert "CC-BY-NC-4.0 AND CC-BY-4.0" in text
    assert text.count("<img ") == 2  # one QA picture per item
    # the activation name is escaped, never markup
    assert "Vanuatu &lt;2023&gt; &amp; co" in vanuatu.read_text()
    assert "<2023>" not in index.read_text()


def test_view_follows_each_publication(tmp_path: Path) -> None:
    root = tmp_path / "catalog"
    publish_static(build_item(published_pair(write_products(tmp_path / "a"))), root)
    page = root / "turkey-2023" / "index.html"
    assert parse(page).rows.count("item") == 1
    second = published_pair(write_products(tmp_path / "b"), pair_suffix="-b")
    publish_static(build_item(second), root)
    assert parse(page).rows.count("item") == 2
    assert second.item_id in page.read_text()
    assert write_view(tmp_path / "nothing-here") == []


def test_assets_outside_the_catalog_are_not_linked(tmp_path: Path) -> None:
    root = tmp_path / "catalog"
    pair = published_pair(write_products(tmp_path / "products"))
    publish_static(build_item(pair), root, copy_assets=False)
    page = root / "turkey-2023" / "index.html"
    refs = parse(page).refs
    assert not [r for r in refs if "products" in r]  # the server could not serve them
    assert "not in the catalog" in page.read_text()
