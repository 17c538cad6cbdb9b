"""``file:checksum`` (STAC file extension v2.1): multihashes in hex, computed and verified."""

from __future__ import annotations

import hashlib
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path

from core.errors import FetchError

log = logging.getLogger(__name__)

# multihash code (varint hex) -> (hashlib name, digest length in bytes);
# https://github.com/multiformats/multicodec
MULTIHASH = {
    "11": ("sha1", 20),
    "12": ("sha256", 32),
    "13": ("sha512", 64),
    "14": ("sha3_512", 64),
    "16": ("sha3_256", 32),
    "d501": ("md5", 16),
}


@dataclass(frozen=True)
class Multihash:
    """A parsed ``file:checksum``."""

    algorithm: str
    digest: str

    def matches(self, path: Path) -> tuple[bool, str]:
        got = _digest(path, self.algorithm)
        return got == self.digest, got


def _digest(path: str | os.PathLike[str], algorithm: str) -> str:
    h = hashlib.new(algorithm)
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def file_checksum(path: str | os.PathLike[str]) -> str:
    """``file:checksum`` (file extension v2.1): multihash of sha2-256 (0x12, length 0x20), lowercase
    hex."""
    return "1220" + _digest(path, "sha256")


def parse_multihash(checksum: str) -> Multihash | None:
    """The algorithm and digest of a multihash hex string; ``None`` (with a warning) for an
    algorithm this module cannot compute; :class:`FetchError` when it is malformed."""
    value = checksum.strip().lower()
    if not re.fullmatch(r"[0-9a-f]+", value) or len(value) < 6:
        raise FetchError(
            f"file:checksum {checksum!r} is not a multihash in hex (e.g. 1220<sha256 hex>)"
        )
    for code, (algorithm, size) in MULTIHASH.items():
        if value.startswith(code) and int(value[len(code) : len(code) + 2], 16) == size:
            digest = value[len(code) + 2 :]
            if len(digest) != 2 * size:
                raise FetchError(
                    f"file:checksum {checksum!r}: {algorithm} digest has {len(digest) // 2} "
                    f"bytes, expected {size}"
                )
            return Multihash(algorithm, digest)
    log.warning(
        "file:checksum %s… uses a multihash this version cannot verify; the file is not verified",
        checksum[:8],
    )
    return None


def verify(path: Path, checksum: str | None, href: str = "") -> None:
    """Raise :class:`FetchError` unless ``path`` matches the multihash ``checksum`` (when given)."""
    mh = parse_multihash(checksum) if checksum else None
    if mh is None:
        return
    ok, got = mh.matches(path)
    if not ok:
        raise FetchError(
            f"checksum mismatch for {href or path}: the item's file:checksum says {mh.algorithm} "
            f"{mh.digest[:12]}…, the file has {got[:12]}… (corrupt or changed upstream)"
        )
