"""A catalog published from local sources names no path of the producer's machine."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from stac.pairing import PairingRules, pair_scenes
from stac.publish import PublishedPair, build_item, publish_static
from stac.readers import discover
from tests.stac.conftest import T0

from .conftest import write_products


def hrefs(doc: Any) -> Iterator[str]:
    """Every ``href`` value anywhere in a JSON document."""
    if isinstance(doc, dict):
        for key, value in doc.items():
            if key == "href" and isinstance(value, str):
                yield value
            else:
                yield from hrefs(value)
    elif isinstance(doc, list):
        for value in doc:
            yield from hrefs(value)


def test_published_documents_name_no_local_path(sample_catalogs, tmp_path: Path) -> None:
    scenes = discover([str(sample_catalogs["maxar"]), str(sample_catalogs["umbra"])])
    pair = pair_scenes(scenes, PairingRules(event_date=T0))[0]
    assert Path(pair.optical.item_href).is_absolute()  # the sources are local files
    root = tmp_path / "catalog"
    published = PublishedPair(
        pair.id,
        pair.optical,
        pair.sar,
        write_products(tmp_path / "products"),
        "local",
        "1.0",
        "sample-quake",
        {"tiepoints": 3, "mean_m": 1.0},
    )
    publish_static(build_item(published), root)

    documents = sorted(root.rglob("*.json"))
    assert len(documents) == 3  # catalog, collection, item
    local = re.compile(r"^(/|file:|[A-Za-z]:\\)")
    for path in documents:
        doc = json.loads(path.read_text())
        found = list(hrefs(doc))
        assert found, path
        for href in found:
            assert not local.match(href), (path, href)
            if "://" not in href:  # inside the catalog: relative and resolving there
                target = (path.parent / href).resolve()
                assert target.is_relative_to(root.resolve()) and target.exists(), (path, href)
        assert not [link for link in doc["links"] if link["rel"] == "derived_from"], path
        text = path.read_text()
        assert str(tmp_path) not in text and str(sample_catalogs["root"]) not in text, path
    item = json.loads(next(root.rglob(f"{published.item_id}.json")).read_text())
    assert item["properties"]["coalign:optical_id"] == pair.optical.id
    assert item["properties"]["coalign:sar_id"] == pair.sar.id
    for page in root.rglob("*.html"):
        text = page.read_text()
        assert str(tmp_path) not in text and "file:" not in text, page
