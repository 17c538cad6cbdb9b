"""A static HTML view of a published catalog: an index of activations and one page per activation.

The pages use relative links only, inline CSS and no scripts, so the catalog folder can be opened
from any static web server (``coalign open``) or copied elsewhere.
"""

from __future__ import annotations

import html
import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from core.files import write_atomic

PAGE = "index.html"
GEOTIFF = "image/tiff"
SCORES = (
    ("mean_m", "mean (m)"),
    ("median_m", "median (m)"),
    ("p90_m", "p90 (m)"),
    ("zero_mean_m", "zero shift (m)"),
    ("tiepoints", "tiepoints"),
)
STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5rem; color: #222; }
table { border-collapse: collapse; margin-top: 1rem; }
th, td { border: 1px solid #ccc; padding: 0.3rem 0.5rem; vertical-align: top; text-align: left; }
th { background: #f0f0f0; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
img.qa { max-width: 220px; max-height: 160px; display: block; margin-bottom: 0.2rem; }
.muted { color: #777; }
"""


@dataclass(frozen=True)
class Doc:
    """A STAC document read from the catalog and where it lies."""

    path: Path
    data: dict[str, Any]

    def targets(self, rel: str) -> list[Path]:
        """The files its links of relation ``rel`` point at (relative hrefs only)."""
        return [
            (self.path.parent / link["href"]).resolve()
            for link in self.data.get("links", [])
            if link.get("rel") == rel and "://" not in link.get("href", "")
        ]


def _read(path: Path) -> Doc | None:
    try:
        return Doc(path.resolve(), json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError):
        return None


def _href(target: Path, page_dir: Path) -> str:
    """A relative, URL-quoted href from a page in ``page_dir`` to ``target``."""
    return quote(os.path.relpath(target, page_dir).replace(os.sep, "/"))


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _page(title: str, body: str) -> bytes:
    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        f"<title>{_e(title)}</title><style>{STYLE}</style></head>"
        f"<body>{body}</body></html>\n"
    ).encode()


def _number(value: Any, key: str) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return "<span class='muted'>–</span>"
    return _e(int(value)) if key == "tiepoints" else f"{value:.2f}"


def _asset_path(item: Doc, asset: Mapping[str, Any], root: Path) -> Path | None:
    """The asset file when it lies inside the catalog folder (what the server can serve)."""
    href = asset.get("href", "")
    if "://" in href or href.startswith("/"):
        return None
    path = (item.path.parent / href).resolve()
    return path if path.is_relative_to(root) and path.is_file() else None


def _assets_cells(item: Doc, root: Path, page_dir: Path) -> tuple[str, str]:
    """The QA thumbnails cell and the product files cell of one item's row."""
    thumbs, files = [], []
    for key, asset in sorted(item.data.get("assets", {}).items()):
        path = _asset_path(item, asset, root)
        label = _e(asset.get("title") or key)
        if path is None:
            files.append(f"<span class='muted'>{label} (not in the catalog)</span>")
            continue
        href = _href(path, page_dir)
        if "overview" in asset.get("roles", []) and asset.get("type") == "image/png":
            thumbs.append(
                f"<a href='{href}'><img class='qa' src='{href}' alt='{label}' title='{label}'></a>"
            )
        else:
            kind = "COG" if GEOTIFF in asset.get("type", "") else key.replace("_", " ")
            files.append(f"<a href='{href}'>{_e(kind)}: {label}</a>")
    return "".join(thumbs) or "<span class='muted'>none</span>", "<br>".join(files)


def _item_row(item: Doc, root: Path, page_dir: Path) -> str:
    props = item.data.get("properties", {})
    scores = "".join(
        f"<td class='num'>{_number(props.get(f'coalign:score_{k}'), k)}</td>" for k, _ in SCORES
    )
    thumbs, files = _assets_cells(item, root, page_dir)
    stac = _href(item.path, page_dir)
    return (
        f"<tr class='item' id='{_e(item.data.get('id'))}'>"
        f"<td>{_e(props.get('coalign:pair_id', item.data.get('id')))}<br>"
        f"<span class='muted'>{_e(props.get('datetime', ''))}</span></td>"
        f"<td>{_e(props.get('coalign:method', '?'))} "
        f"{_e(props.get('coalign:method_version', ''))}</td>{scores}"
        f"<td>{thumbs}</td><td>{files}<br><a href='{stac}'>STAC Item (JSON)</a></td></tr>"
    )


def _license(doc: Mapping[str, Any]) -> str:
    expression = doc.get("coalign:license_expression") or doc.get("license", "other")
    links = [
        f"<a href='{_e(link['href'])}'>{_e(link.get('title') or link['href'])}</a>"
        for link in doc.get("links", [])
        if link.get("rel") == "license" and link.get("href", "").startswith("https://")
    ]
    return _e(expression) + (f" ({', '.join(links)})" if links else "")


def _name(collection: Doc, items: list[Doc]) -> str:
    """The activation as it was given (the collection id is its slug)."""
    for item in items:
        name = item.data.get("properties", {}).get("coalign:activation")
        if isinstance(name, str) and name.strip():
            return name
    return str(collection.data.get("title") or collection.data.get("id"))


def _items(collection: Doc) -> list[Doc]:
    docs = [d for d in (_read(p) for p in collection.targets("item")) if d is not None]
    return sorted(
        docs,
        key=lambda d: (
            str(d.data.get("properties", {}).get("coalign:pair_id", "")),
            str(d.data.get("id")),
        ),
    )


def collection_page(collection: Doc, items: list[Doc], root: Path) -> bytes:
    """The page of one activation: a row per pair × method with its scores, QA and files."""
    page_dir = collection.path.parent
    title = _name(collection, items)
    head = "".join(f"<th>{_e(label)}</th>" for _, label in SCORES)
    rows = "".join(_item_row(item, root, page_dir) for item in items)
    body = (
        f"<p><a href='{_href(root / PAGE, page_dir)}'>All activations</a></p>"
        f"<h1>{_e(title)}</h1><p>{_e(collection.data.get('description', ''))}</p>"
        f"<p>{len(items)} published item(s). License: {_license(collection.data)}. "
        f"<a href='{_href(collection.path, page_dir)}'>STAC Collection (JSON)</a></p>"
        f"<table><thead><tr><th>pair</th><th>method</th>{head}<th>QA</th><th>files</th>"
        f"</tr></thead><tbody>{rows}</tbody></table>"
    )
    return _page(f"{title} — coalign", body)


def index_page(catalog: Doc, collections: Iterable[tuple[Doc, list[Doc]]], root: Path) -> bytes:
    """The catalog page: every activation (collection) with its counts of items, pairs, methods."""
    rows = []
    for collection, items in collections:
        props = [i.data.get("properties", {}) for i in items]
        pairs = {p.get("coalign:pair_id") for p in props}
        methods = sorted(
            {f"{p.get('coalign:method')} {p.get('coalign:method_version')}" for p in props}
        )
        page = _href(collection.path.parent / PAGE, root)
        rows.append(
            f"<tr class='collection'><td><a href='{page}'>"
            f"{_e(_name(collection, items))}</a><br><span class='muted'>"
            f"{_e(collection.data.get('id'))}</span></td>"
            f"<td class='num'>{len(items)}</td><td class='num'>{len(pairs)}</td>"
            f"<td>{_e(', '.join(methods))}</td><td>{_license(collection.data)}</td>"
            f"<td><a href='{_href(collection.path, root)}'>JSON</a></td></tr>"
        )
    body = (
        f"<h1>{_e(catalog.data.get('title') or 'coalign')}</h1>"
        f"<p>{_e(catalog.data.get('description', ''))}</p>"
        f"<p><a href='{_href(catalog.path, root)}'>STAC Catalog (JSON)</a></p>"
        "<table><thead><tr><th>activation</th><th>items</th><th>pairs</th><th>methods</th>"
        f"<th>license</th><th>STAC</th></tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )
    return _page(f"{catalog.data.get('title') or 'coalign'} — catalog", body)


def write_view(root: str | os.PathLike[str]) -> list[Path]:
    """Write ``index.html`` of the catalog at ``root`` and of each of its collections (each
    atomically); the pages written.

    Args:
        root: The catalog folder (with ``catalog.json``).
    """
    root = Path(root).resolve()
    catalog = _read(root / "catalog.json")
    if catalog is None:
        return []
    collections = []
    for path in catalog.targets("child"):
        collection = _read(path)
        if collection is not None and collection.data.get("type") == "Collection":
            collections.append((collection, _items(collection)))
    written = []
    for collection, items in collections:
        page = collection.path.parent / PAGE
        write_atomic(page, collection_page(collection, items, root))
        written.append(page)
    write_atomic(root / PAGE, index_page(catalog, collections, root))
    return [root / PAGE, *written]
