"""Shared fixtures: the real data folder (optional) and small synthetic pairs made by code."""

from __future__ import annotations

import os
import socket
import subprocess
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine
from prefect.logging.configuration import setup_logging

from samples.synth import SceneSpec, ShiftModel, synthesize_pair

# Prefect's console log handler writes to the sys.stderr of the moment logging is set up: set it
# up at collection, on the session's stream, never on a test's capsys stream that closes after it.
setup_logging()

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("COALIGN_SHARED_DATA", REPO.parent / "shared" / "data"))


def shared_path(*parts: str) -> Path:
    """A path under ../shared/data, or skip the test with the reason."""
    p = SHARED_DATA.joinpath(*parts)
    if not p.exists():
        pytest.skip(
            f"needs real data at {p} (../shared/data, not part of the repo); it is absent here"
        )
    return p


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop_process(proc: subprocess.Popen, timeout: float = 15.0) -> None:
    """Terminate ``proc`` and wait for it; kill it when it has not exited after ``timeout`` s."""
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=timeout)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    return shared_path()


@pytest.fixture(autouse=True)
def _torch_threads():
    # two cores: keep BLAS/torch from oversubscribing when tests run beside each other
    os.environ.setdefault("OMP_NUM_THREADS", "2")
    yield


@pytest.fixture
def umask():
    """``umask(mask)`` sets the process umask for the test; the old one comes back afterwards."""
    old = os.umask(0o022)
    os.umask(old)
    yield os.umask
    os.umask(old)


def write_geotiff(
    path: Path,
    data: np.ndarray,
    transform: Affine,
    crs: str = "EPSG:32637",
    nodata: float | None = None,
    descriptions: tuple[str, ...] = (),
) -> Path:
    """Write ``data`` (bands, rows, cols) as a GeoTIFF on ``transform``; returns ``path``.

    Args:
        path: File to write.
        data: Pixel values; the file takes their dtype.
        transform: Pixel-to-map affine transform.
        crs: Coordinate reference system.
        nodata: No-data value tag (none when ``None``).
        descriptions: Band descriptions, first band first.
    """
    count, height, width = data.shape
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=width,
        height=height,
        count=count,
        dtype=data.dtype.name,
        crs=crs,
        transform=transform,
        nodata=nodata,
    ) as ds:
        ds.write(data)
        for i, d in enumerate(descriptions, start=1):
            ds.set_band_description(i, d)
    return path


CENTRE = (377100.0, 4105900.0)


@pytest.fixture(scope="session")
def luminance_pair(tmp_path_factory):
    """Same-modality control pair: rotated SAR grid, coarser pixels, affine shift."""
    spec = SceneSpec(
        size_m=200.0,
        sar_appearance="luminance",
        speckle_looks=200.0,
        shift=ShiftModel(offset=(14.0, -9.0), linear=(0.004, -0.003, 0.002, 0.005), centre=CENTRE),
        origin=(377000.0, 4106000.0),
    )
    return synthesize_pair(tmp_path_factory.mktemp("lum"), spec, "lum")


@pytest.fixture(scope="session")
def radar_pair(tmp_path_factory):
    """Radar-like pair (speckle, layover, rotated grid, nodata corners), translation only."""
    spec = SceneSpec(
        size_m=200.0,
        shift=ShiftModel(offset=(12.0, 8.0), centre=CENTRE),
        origin=(377000.0, 4106000.0),
    )
    return synthesize_pair(tmp_path_factory.mktemp("radar"), spec, "radar")
