"""Pair ids and STAC slugs: one formula each, the same strings for existing inputs."""

from __future__ import annotations

import datetime as dt

import pytest
from shapely.geometry import box

from core.errors import InputError
from core.ids import key_slug, pair_id, slug
from stac.pairing import Pair
from stac.scene import Scene


def _scene(scene_id: str, sensor: str) -> Scene:
    return Scene(
        id=scene_id,
        sensor=sensor,
        platform=None,
        datetime=dt.datetime(2023, 2, 7, tzinfo=dt.UTC),
        footprint=box(0, 0, 1, 1),
        href="x.tif",
    )


def test_pair_id_turns_the_slashes_of_maxar_ids_into_dashes() -> None:
    optical, sar = "37/031133103323/10300100E0E8B300", "a1b2-c3"
    assert pair_id(optical, sar) == "37-031133103323-10300100E0E8B300__a1b2-c3"
    pair = Pair(_scene(optical, "optical"), _scene(sar, "sar"), 1.0, 1e6, 1.0, box(0, 0, 1, 1))
    assert pair.id == pair_id(optical, sar)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("turkey-2023", "turkey-2023"),
        ("Türkiye earthquake / 2023", "T-rkiye-earthquake-2023"),
        ("..a__b--c..", "a__b--c"),
        ("-x y.z-", "x-y.z"),
    ],
)
def test_slug_keeps_ascii_letters_digits_dot_underscore_dash(text: str, expected: str) -> None:
    assert slug(text) == expected


@pytest.mark.parametrize("text", ["", "///", "äöü", "-.-"])
def test_slug_refuses_text_with_nothing_left(text: str) -> None:
    with pytest.raises(InputError, match="cannot make a STAC id"):
        slug(text)


@pytest.mark.parametrize(
    "text, limit, key",
    [
        ("Kahramanmaraş  Quake 2023", 100, "kahramanmara-quake-2023"),
        ("compare-" + "x" * 120, 100, "compare-" + "x" * 92),
        ("a" * 79 + " b", 80, "a" * 79),
        ("ş!", 100, "event"),
        ("Long " * 50, None, "-".join(["long"] * 50)),
    ],
)
def test_key_slug_is_lowercase_ascii_dashes_within_the_limit(text, limit, key):
    assert key_slug(text, "event", limit=limit) == key
