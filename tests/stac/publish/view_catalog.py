"""A small published catalog for the HTML view tests: two activations, three items, licenses."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from stac.licenses import license_url
from stac.publish import build_item, publish_static

from .conftest import SCORE, published_pair, write_products

ITEMS = (
    ("turkey-2023", "-a", {**SCORE, "mean_m": 1.25, "zero_mean_m": 6.5}),
    ("turkey-2023", "-b", {**SCORE, "mean_m": 0.75, "zero_mean_m": 6.5}),
    ("Vanuatu <2023> & co", "-c", None),
)


def publish_view_catalog(folder: Path) -> Path:
    """Publish :data:`ITEMS` into ``folder/catalog``; the catalog folder."""
    root = folder / "catalog"
    for i, (activation, suffix, score) in enumerate(ITEMS):
        pair = published_pair(
            write_products(folder / f"products{i}", dx=2.0 + i, with_residuals=score is not None),
            activation=activation,
            score=score,
            pair_suffix=suffix,
        )
        licensed = {
            "optical": dataclasses.replace(
                pair.optical, license="CC-BY-NC-4.0", license_href=license_url("CC-BY-NC-4.0")
            ),
            "sar": dataclasses.replace(
                pair.sar, license="CC-BY-4.0", license_href=license_url("CC-BY-4.0")
            ),
        }
        publish_static(build_item(dataclasses.replace(pair, **licensed)), root)
    return root
