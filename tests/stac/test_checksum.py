"""Multihash ``file:checksum`` values: each supported algorithm, malformed and unknown ones."""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import pytest

from core.errors import FetchError
from stac.checksum import MULTIHASH, file_checksum, parse_multihash, verify


@pytest.fixture
def data_file(tmp_path: Path) -> Path:
    path = tmp_path / "asset.bin"
    path.write_bytes(b"coalign " * 1000)
    return path


@pytest.mark.parametrize("code", sorted(MULTIHASH))
def test_every_supported_multihash_verifies(data_file: Path, code: str) -> None:
    algorithm, size = MULTIHASH[code]
    digest = hashlib.new(algorithm, data_file.read_bytes()).hexdigest()
    checksum = f"{code}{size:02x}{digest}"
    parsed = parse_multihash(checksum.upper())
    assert parsed is not None and parsed.algorithm == algorithm and parsed.digest == digest
    verify(data_file, checksum)
    data_file.write_bytes(b"changed")
    with pytest.raises(FetchError, match=f"checksum mismatch for .*{algorithm}"):
        verify(data_file, checksum, "https://example.org/asset.bin")


def test_file_checksum_is_sha2_256_multihash(data_file: Path) -> None:
    expected = hashlib.sha256(data_file.read_bytes()).hexdigest()
    assert file_checksum(data_file) == "1220" + expected


@pytest.mark.parametrize(
    ("checksum", "message"),
    [
        ("not-hex", "not a multihash in hex"),
        ("12", "not a multihash in hex"),
        ("1220abcd", "sha256 digest has 2 bytes, expected 32"),
    ],
)
def test_malformed_checksum_is_refused(checksum: str, message: str) -> None:
    with pytest.raises(FetchError, match=message):
        parse_multihash(checksum)


def test_unknown_multihash_is_skipped_with_a_warning(
    data_file: Path, caplog: pytest.LogCaptureFixture
) -> None:
    checksum = "b220" + "00" * 32  # a code this module does not compute
    with caplog.at_level(logging.WARNING, logger="stac.checksum"):
        assert parse_multihash(checksum) is None
        verify(data_file, checksum)  # nothing to verify against: no error
    assert "cannot verify" in caplog.text
