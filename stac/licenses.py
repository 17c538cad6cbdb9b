"""Data licenses of STAC documents: SPDX ids, their license links, and a product's combination."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

# the STAC 1.1.0 schema (licensing.json) admits one token: an SPDX id, ``other`` (or the
# deprecated ``proprietary``/``various``); an SPDX expression with spaces does not validate
STAC_LICENSE = re.compile(r"^[\w\-.+]+$")
NOT_SPDX = frozenset(("other", "proprietary", "various"))
_CC = re.compile(r"^CC-(BY(?:-NC)?(?:-SA|-ND)?)-(\d\.\d)$", re.IGNORECASE)
# hosts of open-data programmes whose items do not carry their license (it is on their website)
PROGRAMME_LICENSES = (
    ("maxar-opendata", "CC-BY-NC-4.0"),  # Maxar Open Data
    ("umbra-open-data-catalog", "CC-BY-4.0"),  # Umbra Open Data
)


@dataclass(frozen=True)
class SourceLicense:
    """The license of a source: an SPDX id (None when unknown or not SPDX) and its text's URL."""

    spdx: str | None = None
    href: str | None = None


def license_url(spdx: str) -> str:
    """The URL of the text of the SPDX license ``spdx`` (creativecommons.org for CC licenses)."""
    if spdx.upper() == "CC0-1.0":
        return "https://creativecommons.org/publicdomain/zero/1.0/"
    m = _CC.match(spdx)
    if m:
        return f"https://creativecommons.org/licenses/{m.group(1).lower()}/{m.group(2)}/"
    return f"https://spdx.org/licenses/{spdx}.html"


def _license_link(doc: Mapping[str, Any]) -> str | None:
    links = doc.get("links")
    for link in links if isinstance(links, list) else []:
        href = link.get("href") if isinstance(link, dict) else None
        if link.get("rel") == "license" and isinstance(href, str) and href.startswith("http"):
            return href
    return None


def _programme(href: str) -> str | None:
    p = urlparse(href)
    where = f"{p.netloc}/{p.path}" if p.scheme in ("http", "https", "s3") else ""
    return next((spdx for host, spdx in PROGRAMME_LICENSES if host in where), None)


def document_license(
    doc: Mapping[str, Any], href: str = "", inherited: SourceLicense | None = None
) -> SourceLicense | None:
    """The license a STAC Item or Collection states (``license`` field, ``license`` link),
    else the one it inherits from its Collection, else that of the open-data programme it is
    published by (by its host); None when none is known.

    Args:
        doc: The Item or Collection.
        href: Where it was read.
        inherited: The license of the Collection it was reached through.
    """
    props = doc.get("properties") if doc.get("type") == "Feature" else doc
    value = props.get("license") if isinstance(props, dict) else None
    link = _license_link(doc)
    if isinstance(value, str) and value.strip():
        spdx = None if value.lower() in NOT_SPDX else value.strip()
        return SourceLicense(spdx, link or (license_url(spdx) if spdx else None))
    if link:
        return SourceLicense(None, link)
    if inherited is not None:
        return inherited
    spdx = _programme(href)
    return SourceLicense(spdx, license_url(spdx)) if spdx else None


@dataclass(frozen=True)
class ProductLicense:
    """The license of a product made from several sources.

    ``value`` is the STAC ``license`` field (a single SPDX id, else ``other``), ``expression``
    the SPDX expression of all sources (``A AND B``; None when a source's license is unknown),
    ``links`` the URLs of the source licenses' texts with a title each (the SPDX id).
    """

    value: str
    expression: str | None
    links: tuple[tuple[str, str], ...]


def combine(licenses: Iterable[SourceLicense | None]) -> ProductLicense:
    """The license of a product derived from sources under ``licenses`` (all of them apply)."""
    ids: list[str] = []
    links: dict[str, str] = {}
    unknown = False
    for lic in licenses:
        if lic is None or lic.spdx is None:
            unknown = True
        elif lic.spdx not in ids:
            ids.append(lic.spdx)
        if lic is not None and lic.href and lic.href not in links:
            links[lic.href] = lic.spdx or "license of a source"
    expression = None if unknown or not ids else " AND ".join(ids)
    value = expression if expression and STAC_LICENSE.match(expression) else "other"
    return ProductLicense(value, expression, tuple(links.items()))


def split_expression(expression: str) -> list[str]:
    """The SPDX ids of an ``A AND B`` expression."""
    return [part.strip() for part in expression.split(" AND ") if part.strip()]
