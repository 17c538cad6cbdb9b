"""The coalign command line: register, score, warp, methods, and bad input (exit 2, no output)."""

from __future__ import annotations

import importlib.metadata
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine

from core.errors import InputError
from flows import commands
from flows.cli import Terminated, build_parser, main, signals_unwind
from tests.conftest import write_geotiff


def run(capsys, *argv):
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_register_score_warp(radar_pair, tmp_path, capsys):
    out = tmp_path / "d.tif"
    code, stdout, _ = run(
        capsys,
        "register",
        str(radar_pair.optical),
        str(radar_pair.sar),
        "-o",
        str(out),
        "--tiepoints",
        str(radar_pair.tiepoints),
        "--confidence",
        str(tmp_path / "c.tif"),
        "--residuals",
        str(tmp_path / "r.csv"),
        "--no-progress",
        "--json",
    )
    assert code == 0
    (line,) = stdout.strip().splitlines()
    summary = json.loads(line)
    assert summary["method"] == "local" and summary["version"]
    assert summary["matches"] >= summary["inliers"] > 0
    assert summary["score"]["mean_px"] < 10
    assert (tmp_path / "c.tif").exists() and len((tmp_path / "r.csv").read_text().splitlines()) > 10

    code, stdout, _ = run(
        capsys,
        "score",
        str(out),
        str(radar_pair.optical),
        str(radar_pair.sar),
        str(radar_pair.tiepoints),
        "--json",
    )
    assert code == 0 and json.loads(stdout)["mean_px"] == pytest.approx(
        summary["score"]["mean_px"], abs=1e-3
    )

    aligned = tmp_path / "aligned.tif"
    code, stdout, _ = run(capsys, "warp", str(radar_pair.optical), str(out), "-o", str(aligned))
    assert code == 0 and stdout == f"aligned optical  {aligned}\n"
    with rasterio.open(aligned) as a, rasterio.open(radar_pair.optical) as o:
        assert (a.count, a.width, a.height, a.transform) == (
            o.count,
            o.width,
            o.height,
            o.transform,
        )
        assert a.read(1).std() > 5


def test_warp_moves_content_by_the_map(tmp_path):
    from models.warp import warp_optical

    rng = np.random.default_rng(0)
    img = (rng.random((1, 120, 120)) * 255).astype(np.uint8)
    t = Affine(1, 0, 0, 0, -1, 120)
    kw = dict(driver="GTiff", width=120, height=120, crs="EPSG:32637", transform=t)
    with rasterio.open(tmp_path / "o.tif", "w", count=1, dtype="uint8", **kw) as ds:
        ds.write(img)
    with rasterio.open(tmp_path / "d.tif", "w", count=2, dtype="float32", **kw) as ds:
        ds.write(np.stack([np.full((120, 120), 5.0), np.full((120, 120), -3.0)]).astype(np.float32))
    warp_optical(tmp_path / "o.tif", tmp_path / "d.tif", tmp_path / "a.tif")
    with rasterio.open(tmp_path / "a.tif") as ds:
        a = ds.read(1)
    # content of optical pixel (r, c) appears at (r - 3, c + 5)
    np.testing.assert_array_equal(a[10:100, 10:100], img[0, 13:103, 5:95])


def test_methods_lists_versions(capsys):
    code, stdout, _ = run(capsys, "methods", "--json")
    names = {m["name"]: m for m in json.loads(stdout)}
    assert {"zero", "global-affine"} <= set(names) and names["global-affine"]["defaults"][
        "max_side"
    ] > 0


def _write(p, count=3, crs="EPSG:32637", x0=377000.0, nodata=None, value=100):
    data = np.full((count, 64, 64), value, np.uint8)
    write_geotiff(p, data, Affine(0.5, 0, x0, 0, -0.5, 4106000), crs, nodata)
    return str(p)


@pytest.mark.parametrize(
    "case, message",
    [
        ("missing", "not found"),
        ("not_raster", "not a readable raster"),
        ("no_crs", "has no CRS"),
        ("no_overlap", "do not overlap"),
        ("sar_bands", "expected 1 amplitude band"),
        ("all_nodata", "no valid pixels"),
        ("bad_csv", "expected exactly sar_row"),
        ("missing_folder", "does not exist"),
        ("bad_setting", "unknown setting"),
        ("bad_method", "unknown method"),
    ],
)
def test_register_bad_input(tmp_path, capsys, case, message):
    optical = _write(tmp_path / "o.tif")
    sar = _write(tmp_path / "s.tif", count=1, x0=377005.0)
    out = tmp_path / "d.tif"
    extra: list[str] = []
    if case == "missing":
        optical = str(tmp_path / "nope.tif")
    elif case == "not_raster":
        (tmp_path / "x.tif").write_text("not a tiff")
        optical = str(tmp_path / "x.tif")
    elif case == "no_crs":
        with rasterio.open(
            tmp_path / "n.tif", "w", driver="GTiff", width=8, height=8, count=1, dtype="uint8"
        ) as ds:
            ds.write(np.ones((1, 8, 8), np.uint8))
        sar = str(tmp_path / "n.tif")
    elif case == "no_overlap":
        sar = _write(tmp_path / "far.tif", count=1, x0=390000.0)
    elif case == "sar_bands":
        sar = _write(tmp_path / "s3.tif", count=3)
    elif case == "all_nodata":
        sar = _write(tmp_path / "z.tif", count=1, nodata=0, value=0)
    elif case == "bad_csv":
        (tmp_path / "t.csv").write_text("a,b\n1,2\n")
        extra = ["--tiepoints", str(tmp_path / "t.csv")]
    elif case == "missing_folder":
        out = tmp_path / "nofolder" / "d.tif"
    elif case == "bad_setting":
        extra = ["--set", "nope=1"]
    elif case == "bad_method":
        extra = ["--method", "magic"]
    code, _, err = run(capsys, "register", optical, sar, "-o", str(out), "--no-progress", *extra)
    assert code == 2
    assert message in err
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_an_option_of_several_commands_has_one_default_and_one_help():
    import inspect

    from flows.activation import activation
    from flows.cli import build_parser

    window = [
        "--catalog",
        "c.json",
        "--bbox",
        "1,2,3,4",
        "--start",
        "2023-01-01",
        "--end",
        "2023-02-01",
    ]
    parser = build_parser()
    pairs = parser.parse_args(["pairs", *window])
    flow = inspect.signature(activation.fn).parameters
    assert pairs.max_gap_days == flow["max_gap_days"].default
    assert pairs.min_overlap == flow["min_overlap"].default
    # activate leaves them out, so the flow's (or a deployment's) defaults apply
    activate = parser.parse_args(["activate", *window])
    assert activate.max_gap_days is None and activate.min_overlap is None
    sub = next(a for a in parser._actions if a.dest == "command").choices
    for option in (
        "--catalog",
        "--stac-api",
        "--collection",
        "--bbox",
        "--start",
        "--end",
        "--event-date",
        "--max-gap-days",
        "--min-overlap",
        "--workdir",
    ):
        helps = {
            a.help.replace("; with --emit, the deployment's", "")
            for p in sub.values()
            for a in p._actions
            if option in a.option_strings and not p.prog.endswith("bench")
        }
        assert len(helps) == 1, (option, helps)


HEAVY = (
    "prefect",
    "mlflow",
    "torch",
    "torchvision",
    "rasterio",
    "great_expectations",
    "pystac",
    "matplotlib",
    "dask",
    "pandas",
    "scipy",
)


def _coalign(*argv: str) -> subprocess.CompletedProcess[str]:
    """``coalign ARGV`` as a fresh process (the installed console script)."""
    script = Path(sys.executable).with_name("coalign")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "flows.cli"]
    return subprocess.run([*command, *argv], capture_output=True, text=True, timeout=120)


def test_version_prints_the_package_version():
    done = _coalign("--version")
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"coalign {importlib.metadata.version('coalign')}\n"


def test_help_lists_every_command():
    done = _coalign("--help")
    assert done.returncode == 0, done.stderr
    modules = Path(commands.__file__).parent.glob("*.py")
    names = {p.stem for p in modules if p.stem != "__init__"}
    listed = {line.split()[0] for line in done.stdout.splitlines() if line.startswith("    ")}
    assert names and names <= listed, done.stdout


def test_building_the_parser_and_each_help_imports_nothing_heavy():
    script = f"""
import contextlib, io, sys
import flows.cli as c
parser = c.build_parser()
sub = next(a for a in parser._actions if a.dest == "command").choices
for name in sub:
    with contextlib.suppress(SystemExit), contextlib.redirect_stdout(io.StringIO()):
        c.build_parser().parse_args([name, "--help"])
print(sorted(sub))
print([m for m in {HEAVY!r} if m in sys.modules])
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    listed, heavy = done.stdout.splitlines()
    assert "register" in listed and heavy == "[]", done.stdout


def test_a_raster_error_is_described_and_other_errors_are_bugs():
    from rasterio.errors import RasterioIOError

    from flows.cli import describe_failure

    message = describe_failure(RasterioIOError("x.tif: No such file or directory"))
    assert message is not None and "raster not found" in message
    assert describe_failure(ValueError("a bug")) is None


def test_activate_takes_a_dem_or_a_dem_collection(tmp_path, capsys):
    from flows.commands.activate import activation_parameters

    dem = tmp_path / "dem.tif"
    dem.write_bytes(b"")
    base = ["activate", "--catalog", str(tmp_path), "--method", "zero"]
    args = build_parser().parse_args([*base, "--dem", str(dem)])
    assert activation_parameters(args)["dem"] == str(dem.resolve())
    args = build_parser().parse_args([*base, "--dem", "https://example.org/dem.tif"])
    assert activation_parameters(args)["dem"] == "https://example.org/dem.tif"
    args = build_parser().parse_args([*base, "--dem-collection", "cop-dem-glo-30"])
    assert activation_parameters(args)["dem_collection"] == "cop-dem-glo-30"
    with pytest.raises(InputError, match="--dem .*missing.tif: file not found"):
        activation_parameters(build_parser().parse_args([*base, "--dem", "missing.tif"]))
    with pytest.raises(SystemExit):
        build_parser().parse_args([*base, "--dem", str(dem), "--dem-collection", "x"])
    assert "not allowed with argument" in capsys.readouterr().err


class _RaisesWhenCollected:
    """Raises ``exc`` from ``__del__``, where Python can only report an exception."""

    def __init__(self, exc: BaseException) -> None:
        self.exc = exc

    def __del__(self) -> None:
        raise self.exc


@pytest.mark.parametrize("exc", [KeyboardInterrupt(), Terminated(15)])
def test_a_signal_python_could_only_report_still_ends_the_run(exc):
    with pytest.raises(type(exc)), signals_unwind():
        _RaisesWhenCollected(exc)  # collected at once: its exception is "ignored"
        for _ in range(200):  # the run goes on; the signal is delivered again meanwhile
            time.sleep(0.005)
