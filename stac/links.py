"""Links between STAC documents and assets: resolving hrefs and the remote-catalog trust boundary.

A document read over ``http(s)://`` or ``s3://`` may only link to ``http(s)``/``s3`` resources:
its relative links resolve under its own origin (scheme, host and port; the bucket for
``s3://``), and a local path or ``file://`` link in it is refused. A document read from a local
path may link to local files and to remote resources (a static catalog on disk).
"""

from __future__ import annotations

import os
import posixpath
from urllib.parse import urljoin, urlparse

from core.errors import CatalogError

REMOTE_SCHEMES = ("http", "https", "s3")


class UntrustedLink(CatalogError):
    """A remote STAC document links to a local file (refused: it is never retried or skipped)."""


def is_remote(href: str) -> bool:
    """Whether ``href`` is an ``http(s)://`` or ``s3://`` URL."""
    return urlparse(href).scheme.lower() in REMOTE_SCHEMES


def resolve(base: str, href: str) -> str:
    """An href made absolute against the document it appears in (STAC best practice: relative
    links).

    Args:
        base: The href of the document the link appears in (path or URL).
        href: The link as written in the document.
    """
    if urlparse(href).scheme or href.startswith("/"):
        return href
    b = urlparse(base)
    if b.scheme in ("http", "https", "file"):
        return urljoin(base, href)
    if b.scheme == "s3":  # urljoin does not join unknown schemes
        return (
            f"s3://{b.netloc}{posixpath.normpath(posixpath.join(posixpath.dirname(b.path), href))}"
        )
    return os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(base)), href))


def _origin(href: str) -> tuple[str, str]:
    p = urlparse(href)
    return p.scheme.lower(), p.netloc.lower()


def trusted_link(document: str, href: str, what: str = "link") -> str:
    """The target of a link in ``document``, resolved, after the remote-catalog trust check.

    Args:
        document: The href of the document the link appears in (path or URL).
        href: The link as written in the document.
        what: What the link is, for the error message (``child link``, ``asset 'visual'``, …).

    Raises:
        UntrustedLink: ``document`` was read over http(s)/s3 and the link names a local path,
            a ``file://`` URL or another scheme, or it is relative and leaves the document's
            origin.
    """
    if not isinstance(href, str) or not href.strip():
        raise CatalogError(
            f"STAC document {document} is malformed: {what} href {str(href)[:100]!r} is not a "
            "URL or path"
        )
    if not is_remote(document):
        return resolve(document, href)
    scheme = urlparse(href).scheme.lower()
    if href.startswith("/") and not href.startswith("//"):
        why = "it is an absolute local path"
    elif scheme and scheme not in REMOTE_SCHEMES:
        why = f"its scheme {scheme!r} is not http, https or s3"
    elif not scheme and _origin(resolve(document, href)) != _origin(document):
        why = "it is relative but leaves the document's host (write the full URL)"
    else:
        return resolve(document, href)
    raise UntrustedLink(
        f"refused {what} {href[:200]!r} in remote STAC document {document}: {why}; a document "
        "read over http(s)/s3 may only link to http(s)/s3 resources"
    )


def check_asset(item: str | None, href: str, what: str = "asset") -> None:
    """Refuse a local asset named by a remote item (for hrefs already resolved elsewhere).

    Args:
        item: Where the item was read (path or URL); ``None`` when unknown.
        href: The asset href.
        what: What names the asset, for the error message.

    Raises:
        UntrustedLink: ``item`` is an http(s)/s3 URL and ``href`` is not.
    """
    if item and is_remote(item) and not is_remote(href):
        raise UntrustedLink(
            f"refused {what} {href[:200]!r} of remote STAC item {item}: a remote item may only "
            "name http(s)/s3 assets"
        )
