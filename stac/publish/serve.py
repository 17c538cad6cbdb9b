"""Serving a static catalog folder over http on this machine (``coalign open``)."""

from __future__ import annotations

import errno
import functools
import http.server
import os
from pathlib import Path
from typing import Any

from core.errors import InputError

HOST = "127.0.0.1"


class CatalogHandler(http.server.SimpleHTTPRequestHandler):
    """Static files of one folder (``index.html`` for a folder), JSON as ``application/json``,
    no request log on the terminal."""

    extensions_map = {
        **http.server.SimpleHTTPRequestHandler.extensions_map,
        ".json": "application/json",
        ".tif": "image/tiff",
        ".tiff": "image/tiff",
        ".gpkg": "application/geopackage+sqlite3",
    }

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (the base's name)
        pass


def catalog_server(
    root: str | os.PathLike[str], port: int, host: str = HOST
) -> http.server.ThreadingHTTPServer:
    """An http server of the folder ``root`` on ``host:port`` (port 0: a free one); the caller
    runs ``serve_forever()`` and closes it.

    Args:
        root: The catalog folder.
        port: The TCP port.
        host: The address to listen on (this machine only by default).

    Raises:
        InputError: The port is taken or not allowed.
    """
    handler = functools.partial(CatalogHandler, directory=str(Path(root).resolve()))
    try:
        return http.server.ThreadingHTTPServer((host, port), handler)
    except OSError as exc:
        if exc.errno in (errno.EADDRINUSE, errno.EACCES):
            raise InputError(
                f"cannot serve the catalog on {host}:{port} ({exc.strerror}); "
                "choose another port with --port"
            ) from None
        raise


def served_url(server: http.server.ThreadingHTTPServer) -> str:
    """The http address a :func:`catalog_server` listens on."""
    host, port = server.server_address[:2]
    return f"http://{host}:{port}"
