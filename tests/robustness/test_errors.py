"""Failures a user meets (damaged rasters, binary CSVs, missing files, full or read-only disks)
end in one ``coalign <command>: error:`` line and exit status 2; bugs keep their traceback."""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path

import pytest
import rasterio

import models.cog
from core.errors import InputError
from flows.cli import describe_failure, main
from models.raster import open_raster, read_on_grid
from models.sampling import sample_points
from models.scoring import read_tiepoints
from samples.synth import SyntheticPair, synthesize_pair
from tests.robustness.conftest import CliRun, error_line, files_under, small_spec


def _truncated(src: Path, dst: Path) -> Path:
    """A copy of ``src`` cut to half its size (a download or copy that stopped half-way)."""
    data = src.read_bytes()
    dst.write_bytes(data[: len(data) // 2])
    return dst


def _rot_full_resolution(path: Path) -> None:
    """Overwrite every full-resolution block of band 1 with garbage; overviews stay intact."""
    with rasterio.open(path) as ds:
        rows, cols = ds.block_shapes[0]
        spans = []
        for r in range(-(-ds.height // rows)):
            for c in range(-(-ds.width // cols)):
                offset = int(ds.get_tag_item(f"BLOCK_OFFSET_{c}_{r}", "TIFF", bidx=1))
                size = int(ds.get_tag_item(f"BLOCK_SIZE_{c}_{r}", "TIFF", bidx=1))
                spans.append((offset, size))
    with open(path, "r+b") as fh:
        for offset, size in spans:
            fh.seek(offset)
            fh.write(bytes(range(256)) * (size // 256) + b"\xff" * (size % 256))


@pytest.fixture(scope="module")
def fine_sar_pair(tmp_path_factory: pytest.TempPathFactory) -> SyntheticPair:
    """The small scene with a 600-pixel SAR: opening it reads only its overviews."""
    return synthesize_pair(tmp_path_factory.mktemp("fine-sar"), small_spec(sar_res=0.3), "fine")


def test_truncated_geotiff_is_an_input_error_naming_it(
    small_pair: SyntheticPair, tmp_path: Path, cli: CliRun
) -> None:
    optical = _truncated(small_pair.optical, tmp_path / "half_optical.tif")
    (tmp_path / "out").mkdir()
    out = tmp_path / "out" / "d.tif"
    code, err = cli("register", optical, small_pair.sar, "-o", out, "--no-progress")
    assert code == 2
    message = error_line(err, "register")
    assert str(optical) in message and "truncated or corrupt" in message, message
    assert files_under(tmp_path / "out") == []


def test_damaged_blocks_read_later_name_the_file(
    fine_sar_pair: SyntheticPair, tmp_path: Path
) -> None:
    sar_path = tmp_path / "sar.tif"
    shutil.copy(fine_sar_pair.sar, sar_path)
    _rot_full_resolution(sar_path)
    sar = open_raster(sar_path, "sar")  # the decimated check reads the intact overviews
    with pytest.raises(InputError, match=f"sar file {sar_path} could not be read"):
        read_on_grid(sar, sar.grid)
    x, y = sar.grid.pixel_centres()
    with pytest.raises(InputError, match=f"sar file {sar_path} could not be read"):
        sample_points(sar, x[::4, ::4], y[::4, ::4], sar.grid.crs)


def test_damaged_blocks_found_during_registration_exit_2(
    fine_sar_pair: SyntheticPair, tmp_path: Path, cli: CliRun
) -> None:
    sar = tmp_path / "sar.tif"
    shutil.copy(fine_sar_pair.sar, sar)
    _rot_full_resolution(sar)
    (tmp_path / "out").mkdir()
    out = tmp_path / "out" / "d.tif"
    code, err = cli(
        "register", fine_sar_pair.optical, sar, "-o", out, "--no-progress",
        "--set", "global_prior=false", "--set", "workers=1",
    )  # fmt: skip
    assert code == 2
    message = error_line(err, "register")
    assert f"sar file {sar} could not be read" in message, message
    assert files_under(tmp_path / "out") == []


def test_binary_tiepoint_file_exits_2(
    small_pair: SyntheticPair, tmp_path: Path, cli: CliRun
) -> None:
    csv = tmp_path / "tiepoints.csv"
    csv.write_bytes(small_pair.optical.read_bytes()[:4096])  # a GeoTIFF given as the CSV
    with pytest.raises(InputError, match="is not text"):
        read_tiepoints(csv)
    code, err = cli("score", small_pair.optical, small_pair.optical, small_pair.sar, csv)
    assert code == 2
    message = error_line(err, "score")
    assert str(csv) in message and "not UTF-8" in message, message


def test_score_of_a_missing_displacement_map_exits_2(
    small_pair: SyntheticPair, tmp_path: Path, cli: CliRun
) -> None:
    missing = tmp_path / "nothing_here.tif"
    code, err = cli("score", missing, small_pair.optical, small_pair.sar, small_pair.tiepoints)
    assert code == 2
    assert str(missing) in error_line(err, "score")


@pytest.mark.parametrize(
    "code, words",
    [
        (errno.ENOSPC, "No space left on device"),
        (errno.EACCES, "Permission denied"),
        (errno.EROFS, "Read-only file system"),
    ],
    ids=["ENOSPC", "EACCES", "EROFS"],
)
def test_os_errors_while_writing_exit_2(
    code: int,
    words: str,
    small_pair: SyntheticPair,
    tmp_path: Path,
    cli: CliRun,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def failing_copy(src: str, dst: str, **options: object) -> None:
        Path(dst).write_bytes(b"\0" * 100)  # the device fills up part-way
        raise OSError(code, os.strerror(code), dst)

    monkeypatch.setattr(models.cog, "rio_copy", failing_copy)
    (tmp_path / "out").mkdir()
    out = tmp_path / "out" / "d.tif"
    rc, err = cli(
        "register", small_pair.optical, small_pair.sar, "-o", out, "--method", "zero",
        "--no-progress",
    )  # fmt: skip
    assert rc == 2
    message = error_line(err, "register")
    assert words in message and str(tmp_path / "out") in message, message
    assert files_under(tmp_path / "out") == []  # neither the scratch nor the temporary COG


def test_a_bug_keeps_its_traceback(
    small_pair: SyntheticPair, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(models.cog, "rio_copy", broken)
    out = tmp_path / "d.tif"
    argv = ["register", str(small_pair.optical), str(small_pair.sar), "-o", str(out)]
    with pytest.raises(ZeroDivisionError, match="a bug"):
        main(argv + ["--method", "zero", "--no-progress"])
    assert files_under(tmp_path) == []


@pytest.mark.parametrize(
    "exc, expected",
    [
        (OSError(errno.ENOSPC, "No space left on device", "/out/d.tif"), "/out/d.tif; free"),
        (PermissionError(errno.EACCES, "Permission denied", "/o"), "Permission denied: /o"),
        (UnicodeDecodeError("utf-8", b"\xff", 0, 1, "invalid start byte"), "not UTF-8 text"),
        (MemoryError(), "out of memory"),
        (RuntimeError("a bug"), None),
        (KeyError("x"), None),
    ],
)
def test_describe_failure(exc: BaseException, expected: str | None) -> None:
    message = describe_failure(exc)
    if expected is None:
        assert message is None
    else:
        assert message is not None and expected in message, message


def test_learned_weights_are_loaded_as_tensors_only(monkeypatch: pytest.MonkeyPatch) -> None:
    torch = pytest.importorskip("torch")
    from models import matchers

    calls: list[tuple[str, dict]] = []
    real_load = torch.load

    def spy(f, *args, **kwargs):
        calls.append((str(f), dict(kwargs)))
        return real_load(f, *args, **kwargs)

    monkeypatch.setattr(torch, "load", spy)
    matchers._load_models.__wrapped__("aliked", 64, 0.1, 0.1, "cpu")
    ours = [kwargs for f, kwargs in calls if Path(f).name.startswith("aliked_lightglue")]
    assert ours, calls
    assert all(kwargs.get("weights_only") is True for kwargs in ours), ours
