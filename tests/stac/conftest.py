"""STAC fixtures: a sample Maxar/Umbra catalog on disk, and real HTTP servers on 127.0.0.1."""

from __future__ import annotations

import datetime as dt
import functools
import http.server
import threading
from pathlib import Path

import pytest

from samples.catalog import SampleScene, write_maxar_catalog, write_umbra_catalog
from samples.synth import SceneSpec, ShiftModel, synthesize_pair

T0 = dt.datetime(2023, 2, 1, 8, tzinfo=dt.UTC)
BBOX = (37.0, 36.5, 38.5, 38.0)


@pytest.fixture(scope="session")
def sample_catalogs(tmp_path_factory):
    root = tmp_path_factory.mktemp("catalogs")
    a = synthesize_pair(
        root / "src",
        SceneSpec(size_m=120.0, shift=ShiftModel(offset=(6.0, 4.0), centre=(377060.0, 4105940.0))),
        "a",
    )
    b = synthesize_pair(
        root / "src",
        SceneSpec(
            size_m=120.0,
            origin=(377500.0, 4106000.0),
            seed=4,
            shift=ShiftModel(offset=(6.0, 4.0), centre=(377560.0, 4105940.0)),
        ),
        "b",
    )
    maxar = write_maxar_catalog(
        root / "maxar",
        "Sample-Quake",
        [
            SampleScene(
                a.optical,
                "10400100A",
                T0 - dt.timedelta(days=5),
                "WV03",
                0.5,
                {"view:off_nadir": 10.0},
            ),
            SampleScene(b.optical, "10400100B", T0 - dt.timedelta(days=40), "WV02", 0.5),
        ],
    )
    umbra = write_umbra_catalog(
        root / "umbra",
        [
            SampleScene(
                a.sar,
                "00000000-0000-4000-8000-00000000000a",
                T0 + dt.timedelta(days=3),
                "Umbra-05",
                0.65,
            ),
            SampleScene(
                b.sar,
                "00000000-0000-4000-8000-00000000000b",
                T0 + dt.timedelta(days=1),
                "Umbra-06",
                0.65,
            ),
        ],
    )
    return {"root": root, "maxar": maxar, "umbra": umbra, "a": a, "b": b}


class RangeHandler(http.server.SimpleHTTPRequestHandler):
    """Static files with HTTP Range support, and scripted failures for fetch tests."""

    drop_after: dict[str, int] = {}

    def log_message(self, *args):  # quiet
        pass

    def do_GET(self):
        path = Path(self.translate_path(self.path))
        if not path.is_file():
            return super().do_GET()
        data = path.read_bytes()
        start, end = 0, len(data) - 1
        rng = self.headers.get("Range")
        if rng and rng.startswith("bytes="):
            lo, _, hi = rng[6:].partition("-")
            start = int(lo)
            end = min(int(hi), end) if hi else end
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{end}/{len(data)}")
        else:
            self.send_response(200)
        self.send_header("Accept-Ranges", "bytes")
        body = data[start : end + 1]
        self.send_header("Content-Length", str(len(body)))
        self.send_header(
            "Content-Type",
            "application/json" if path.suffix == ".json" else "application/octet-stream",
        )
        self.end_headers()
        cut = self.drop_after.pop(self.path, None)
        if cut is not None and start == 0:
            self.wfile.write(body[:cut])
            self.wfile.flush()
            self.connection.shutdown(2)  # the connection drops mid-download
            return
        self.wfile.write(body)


@pytest.fixture(scope="session")
def http_root(sample_catalogs):
    handler = functools.partial(RangeHandler, directory=str(sample_catalogs["root"]))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.fixture(scope="session")
def http_root_process(sample_catalogs):
    """The same server in its own process: GDAL holds the GIL while it reads /vsicurl/, so an
    in-process server thread could never answer it."""
    import subprocess
    import sys
    import time

    from tests.conftest import free_port, stop_process

    port = free_port()
    root = str(Path(__file__).resolve().parents[2])
    directory = str(sample_catalogs["root"])
    code = (
        f"import functools, http.server, sys; sys.path.insert(0, {root!r});"
        "from tests.stac.conftest import RangeHandler;"
        f"http.server.ThreadingHTTPServer(('127.0.0.1', {port}), "
        f"functools.partial(RangeHandler, directory={directory!r})).serve_forever()"
    )
    proc = subprocess.Popen([sys.executable, "-c", code])
    url = f"http://127.0.0.1:{port}"
    import requests

    for _ in range(100):
        try:
            requests.get(url + "/maxar/events/catalog.json", timeout=1)
            break
        except requests.ConnectionError:
            time.sleep(0.1)
    yield url
    stop_process(proc, timeout=10)
