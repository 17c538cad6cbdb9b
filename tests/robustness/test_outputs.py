"""Output safety: outputs never overwrite inputs or each other, products are kept per run, warp
checks its displacement map, and written files get the mode the umask asks for."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import stat
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio
from affine import Affine
from pyproj import CRS

from core.errors import InputError
from core.files import atomic_path, copy_atomic, is_atomic_temporary, write_atomic
from core.grid import Grid
from flows.cli import main
from models.cog import (
    UNKNOWN_WRITER_AGE_S,
    CogSpec,
    check_outputs,
    sweep_stale_temporaries,
    write_cog,
)
from tests.conftest import write_geotiff

SIZE = 64
TRANSFORM = Affine(0.5, 0, 377000.0, 0, -0.5, 4106000.0)
TIEPOINTS = "sar_row,sar_col,optical_row,optical_col\n10,10,10,10\n20,30,20,30\n40,20,40,20\n"


def _tif(
    path: Path,
    count: int = 3,
    dtype: str = "uint8",
    transform: Affine = TRANSFORM,
    crs: str = "EPSG:32637",
    size: int = SIZE,
    descriptions: tuple[str, ...] = (),
) -> Path:
    rng = np.random.default_rng(len(str(path)))
    data = (rng.random((count, size, size)) * 200 + 20).astype(dtype)
    return write_geotiff(path, data, transform, crs, descriptions=descriptions)


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    """An optical image, a SAR image, a tiepoint CSV and an SN9-shaped displacement map."""
    disp = _tif(tmp_path / "d.tif", 2, "float32", descriptions=("dx", "dy"))
    tp = tmp_path / "tp.csv"
    tp.write_text(TIEPOINTS)
    return {
        "optical": _tif(tmp_path / "a.tif"),
        "sar": _tif(tmp_path / "sar.tif", count=1, transform=TRANSFORM @ Affine.translation(2, 2)),
        "tiepoints": tp,
        "displacement": disp,
    }


def _cli(capsys, *argv: str | Path) -> tuple[int, str]:
    code = main([str(a) for a in argv])
    return code, capsys.readouterr().err


def _snapshot(files: dict[str, Path]) -> dict[str, bytes]:
    return {k: p.read_bytes() for k, p in files.items()}


@pytest.mark.parametrize(
    "case",
    ["o_is_optical", "o_is_sar", "o_spelled_other", "confidence_is_optical", "residuals_is_tp"],
)
def test_register_refuses_an_output_that_is_an_input(files, tmp_path, monkeypatch, capsys, case):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "sub").mkdir()
    out, extra = "out.tif", []
    if case == "o_is_optical":
        out, clash = "a.tif", "a.tif"
    elif case == "o_is_sar":
        out, clash = str(files["sar"]), str(files["sar"])
    elif case == "o_spelled_other":
        out, clash = "./sub/../a.tif", "a.tif"
    elif case == "confidence_is_optical":
        extra, clash = ["--confidence", str(files["optical"])], str(files["optical"])
    else:
        extra, clash = ["--tiepoints", "tp.csv", "--residuals", "./tp.csv"], "tp.csv"
    before = _snapshot(files)
    code, err = _cli(
        capsys, "register", "a.tif", files["sar"], "-o", out, "--method", "zero", *extra
    )
    assert code == 2
    assert "same file as input" in err and clash in err
    assert _snapshot(files) == before
    assert not (tmp_path / "out.tif").exists()


def test_register_refuses_two_outputs_on_one_file(files, tmp_path, capsys):
    out = tmp_path / "x.tif"
    code, err = _cli(
        capsys,
        "register",
        files["optical"],
        files["sar"],
        "-o",
        out,
        "--confidence",
        tmp_path / "." / "x.tif",
        "--method",
        "zero",
    )
    assert code == 2 and "are the same file" in err and "--confidence" in err
    assert not out.exists()


def test_warp_refuses_to_overwrite_its_inputs(files, capsys):
    before = _snapshot(files)
    for target in (files["optical"], files["displacement"]):
        code, err = _cli(capsys, "warp", files["optical"], files["displacement"], "-o", target)
        assert code == 2 and "same file as input" in err and str(target) in err
    assert _snapshot(files) == before


def test_score_refuses_residuals_on_an_input(files, capsys):
    before = _snapshot(files)
    for name in ("tiepoints", "displacement"):
        code, err = _cli(
            capsys,
            "score",
            files["displacement"],
            files["optical"],
            files["sar"],
            files["tiepoints"],
            "--residuals",
            files[name],
        )
        assert code == 2 and "same file as input" in err and str(files[name]) in err
    assert _snapshot(files) == before


def test_a_hard_link_to_an_input_is_the_same_file(files, tmp_path):
    link = tmp_path / "link.tif"
    os.link(files["optical"], link)
    with pytest.raises(InputError, match="same file as input optical"):
        check_outputs({"-o": link}, {"optical": files["optical"]})
    copy = tmp_path / "copy.tif"
    shutil.copyfile(files["optical"], copy)
    assert check_outputs({"-o": copy, "--x": None}, {"optical": files["optical"]}) == {"-o": copy}


@pytest.mark.parametrize(
    "case, message",
    [
        ("optical_image", "2 float bands"),
        ("one_band", "2 float bands"),
        ("other_names", "bands dx, dy"),
        ("shifted", "geotransform"),
        ("other_crs", "CRS"),
        ("other_size", "size"),
    ],
)
def test_warp_checks_its_displacement_map(files, tmp_path, capsys, case, message):
    d = tmp_path / "bad.tif"
    if case == "optical_image":
        shutil.copyfile(files["optical"], d)
    elif case == "one_band":
        _tif(d, 1, "float32")
    elif case == "other_names":
        _tif(d, 2, "float32", descriptions=("red", "green"))
    elif case == "shifted":
        _tif(d, 2, "float32", transform=TRANSFORM @ Affine.translation(3, 0))
    elif case == "other_crs":
        _tif(d, 2, "float32", crs="EPSG:32636")
    else:
        _tif(d, 2, "float32", size=SIZE + 8)
    code, err = _cli(capsys, "warp", files["optical"], d, "-o", tmp_path / "aligned.tif")
    assert code == 2 and message in err and str(d) in err
    assert not (tmp_path / "aligned.tif").exists()


def test_warp_accepts_an_sn9_map(files, tmp_path, capsys):
    code, _ = _cli(
        capsys, "warp", files["optical"], files["displacement"], "-o", tmp_path / "aligned.tif"
    )
    assert code == 0
    with rasterio.open(tmp_path / "aligned.tif") as ds:
        assert (ds.count, ds.width, ds.transform) == (3, SIZE, TRANSFORM)


@pytest.mark.parametrize("mask, mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_written_files_follow_the_umask(tmp_path, umask, mask, mode):
    umask(mask)
    with atomic_path(tmp_path / "r.csv") as tmp:
        tmp.write_text("a,b\n")
    grid = Grid(CRS.from_epsg(32637), TRANSFORM, 32, 32)
    write_cog(
        tmp_path / "c.tif",
        grid,
        CogSpec(count=1, block=16),
        lambda w: np.zeros((1, int(w.height), int(w.width))),
    )
    for name in ("r.csv", "c.tif"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == mode, name
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.tif", "r.csv"]


@pytest.mark.parametrize("mask, mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_atomic_writers_follow_the_umask(tmp_path, umask, mask, mode):
    src = tmp_path / "src.bin"
    src.write_bytes(b"payload")
    umask(mask)
    write_atomic(tmp_path / "new" / "doc.json", b"{}")
    copy_atomic(src, tmp_path / "new" / "copy.bin")
    for path in (tmp_path / "new" / "doc.json", tmp_path / "new" / "copy.bin"):
        assert stat.S_IMODE(path.stat().st_mode) == mode, path.name
    assert sorted(p.name for p in (tmp_path / "new").iterdir()) == ["copy.bin", "doc.json"]


def test_threads_writing_one_file_never_collide(tmp_path):
    dst = tmp_path / "catalog.json"
    payloads = [f"writer {i}".encode() * 1000 for i in range(6)]

    def write(data: bytes) -> None:
        for _ in range(40):
            write_atomic(dst, data)

    with ThreadPoolExecutor(len(payloads)) as pool:
        list(pool.map(write, payloads))  # re-raises a writer's error
    assert dst.read_bytes() in payloads
    assert [p.name for p in tmp_path.iterdir()] == ["catalog.json"]


def test_copy_atomic_keeps_a_file_with_the_same_bytes(tmp_path):
    src, dst = tmp_path / "a.tif", tmp_path / "b.tif"
    src.write_bytes(b"same bytes")
    dst.write_bytes(b"same bytes")
    inode = dst.stat().st_ino
    copy_atomic(src, dst)
    assert dst.stat().st_ino == inode  # not rewritten
    src.write_bytes(b"other byte")  # same size, other content
    copy_atomic(src, dst)
    assert dst.read_bytes() == b"other byte" and dst.stat().st_ino != inode


def test_the_sweep_knows_the_temporaries_atomic_path_makes(tmp_path):
    dst = tmp_path / "d.tif"
    with pytest.raises(RuntimeError), atomic_path(dst) as tmp:
        name = tmp.name
        raise RuntimeError("killed")
    assert not (tmp_path / name).exists()  # a failed write leaves nothing
    (tmp_path / name).write_bytes(b"left by a killed run")
    assert is_atomic_temporary(name, dst)
    assert sweep_stale_temporaries(dst, now=time.time() + 2 * UNKNOWN_WRITER_AGE_S) == [
        tmp_path / name
    ]


class _StubTasks:
    """The pipeline tasks of register-pair as plain functions writing small files (no Prefect)."""

    def fetch_asset(self, href: str, cache: str, checksum: str | None) -> str:
        return href

    def validate_pair(self, *args: Any) -> str:
        return "passed"

    def register(
        self, optical, sar, method, settings, out_dir, device, dsm=None, sar_geometry=None
    ) -> dict[str, Any]:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        for name in ("displacement.tif", "confidence.tif"):
            (out / name).write_text(f"{method} {sorted(settings.items())}")
        return {
            "method": method,
            "version": "1",
            "config": dict(settings),
            "device": "cpu",
            "matches": 1,
            "inliers": 1,
            "runtime_s": {},
            "warnings": [],
            "displacement": str(out / "displacement.tif"),
            "confidence": str(out / "confidence.tif"),
        }

    def warp(self, optical: str, displacement: str, out: str) -> str:
        Path(out).write_text("aligned")
        return out

    def qa(self, *args: Any) -> dict[str, str]:
        return {}

    def publish(
        self, pair: Any, catalog: str, api: str | None, catalog_url: str | None
    ) -> dict[str, str]:
        item = Path(catalog) / pair.activation / "item.json"
        item.parent.mkdir(parents=True, exist_ok=True)
        item.write_text('{"assets": {}}')
        return {"item": str(item)}


def _scene(sid: str, sensor: str, href: Path) -> dict[str, Any]:
    return {
        "id": sid,
        "sensor": sensor,
        "platform": None,
        "datetime": dt.datetime(2024, 1, 1, tzinfo=dt.UTC).isoformat(),
        "footprint": {"type": "Point", "coordinates": [0.0, 0.0]},
        "href": str(href),
    }


def test_products_and_records_are_kept_per_run(files, tmp_path, monkeypatch):
    import flows.register_pair as rp
    from flows.workdir import product_key

    monkeypatch.setattr(rp, "for_workdir", lambda root: _StubTasks())
    monkeypatch.setattr(rp, "_track", lambda *a, **k: ("run-" + a[-2], "http://mlflow.test/r"))
    for name in ("create_markdown_artifact", "create_table_artifact", "get_run_logger"):
        monkeypatch.setattr(rp, name, lambda *a, **k: __import__("logging").getLogger("t"))
    optical = _scene("opt1", "optical", files["optical"])
    sar = _scene("sar1", "sar", files["sar"])
    work = tmp_path / "work"
    runs = [("quake", {}), ("flood", {}), ("quake", {"levels": "4,2"})]
    records = [
        rp.register_pair.fn(
            optical, sar, method="zero", settings=s, workdir=str(work), activation=a
        )
        for a, s in runs
    ]
    folders = {Path(r["outputs"]["displacement"]).parent for r in records}
    assert len(folders) == 3 and all(
        f.parent == work / "pairs" / "opt1__sar1" / "zero" for f in folders
    )
    for (a, s), record in zip(runs, records, strict=True):
        key = product_key(a, "zero", s)
        got = rp.read_record(str(work), "opt1__sar1", "zero", key)
        assert got["mlflow_run_id"] == f"run-{a}" and got["key"] == key
        assert got["outputs"]["displacement"] == record["outputs"]["displacement"]
        assert Path(got["outputs"]["displacement"]).read_text() == f"zero {sorted(s.items())}"
    # a rerun of one activation with the same settings (in another order or spelling) reuses its
    # folder
    again = rp.register_pair.fn(
        optical,
        sar,
        method="zero",
        settings={"levels": " 4,2"},
        workdir=str(work),
        activation="quake",
    )
    assert again["outputs"]["displacement"] == records[2]["outputs"]["displacement"]
