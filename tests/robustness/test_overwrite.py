"""Outputs a user names: an existing one is refused unless --overwrite, the extension must fit
the format, and register/warp/score print text by default and one JSON line with --json."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import rasterio

from flows.cli import main
from samples.synth import SyntheticPair
from tests.robustness.conftest import CliRun, error_line, files_under

OLD = b"an older output that must survive a refusal"


@pytest.fixture(scope="module")
def zero_map(small_pair: SyntheticPair, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The displacement map `coalign register --method zero` writes for the small pair."""
    out = tmp_path_factory.mktemp("zero-map") / "d.tif"
    argv = ["register", small_pair.optical, small_pair.sar, "-o", out, "--method", "zero"]
    assert main([str(a) for a in [*argv, "--no-progress"]]) == 0
    return out


def _argv(
    command: str, flag: str, pair: SyntheticPair, zero_map: Path, folder: Path
) -> list[str | Path]:
    """The command line of ``command`` writing its ``flag`` output (and only that) in ``folder``."""
    target = folder / ("out.csv" if flag == "--residuals" else "out.tif")
    if command == "register":
        argv = ["register", pair.optical, pair.sar, "--method", "zero", "--no-progress"]
        argv += ["--tiepoints", pair.tiepoints]
        argv += [flag, target] if flag == "-o" else ["-o", folder / "d.tif", flag, target]
        return argv
    if command == "warp":
        return ["warp", pair.optical, zero_map, "-o", target]
    return ["score", zero_map, pair.optical, pair.sar, pair.tiepoints, "--residuals", target]


CASES = [
    ("register", "-o"),
    ("register", "--confidence"),
    ("register", "--residuals"),
    ("warp", "-o"),
    ("score", "--residuals"),
]


@pytest.mark.parametrize("command, flag", CASES)
def test_an_existing_output_is_refused_before_any_work(
    command: str,
    flag: str,
    small_pair: SyntheticPair,
    zero_map: Path,
    tmp_path: Path,
    cli: CliRun,
) -> None:
    argv = _argv(command, flag, small_pair, zero_map, tmp_path)
    target = Path(argv[argv.index(flag) + 1])
    target.write_bytes(OLD)
    code, err = cli(*argv)
    assert code == 2
    assert error_line(err, command) == (
        f"output {flag} {target} exists; pass --overwrite to replace it, or choose another "
        f"{flag} path"
    )
    assert target.read_bytes() == OLD
    assert files_under(tmp_path) == [target.name]  # no other output was started


@pytest.mark.parametrize("command", ["register", "score"])
def test_the_residual_geopackage_is_not_replaced_without_overwrite(
    command: str, small_pair: SyntheticPair, zero_map: Path, tmp_path: Path, cli: CliRun
) -> None:
    argv = _argv(command, "--residuals", small_pair, zero_map, tmp_path)
    points = tmp_path / "out.gpkg"
    points.write_bytes(OLD)
    code, err = cli(*argv)
    assert code == 2
    assert f"{points} exists; pass --overwrite" in error_line(err, command)
    assert points.read_bytes() == OLD and files_under(tmp_path) == ["out.gpkg"]
    assert cli(*argv, "--overwrite")[0] == 0
    assert points.read_bytes()[:16] == b"SQLite format 3\x00"


@pytest.mark.parametrize("command, flag", CASES)
def test_overwrite_replaces_an_existing_output(
    command: str,
    flag: str,
    small_pair: SyntheticPair,
    zero_map: Path,
    tmp_path: Path,
    cli: CliRun,
) -> None:
    argv = _argv(command, flag, small_pair, zero_map, tmp_path)
    target = Path(argv[argv.index(flag) + 1])
    target.write_bytes(OLD)
    code, err = cli(*argv, "--overwrite")
    assert code == 0, err
    if target.suffix == ".csv":
        assert target.read_text().startswith("sar_row,sar_col,optical_row,optical_col")
    else:
        with rasterio.open(target) as ds:
            assert ds.width > 0
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


@pytest.mark.parametrize(
    "command, flag, name, wanted",
    [
        ("register", "-o", "out.png", ".tif or .tiff"),
        ("register", "--confidence", "conf", ".tif or .tiff"),
        ("register", "--residuals", "res.txt", ".csv"),
        ("warp", "-o", "aligned.jpg", ".tif or .tiff"),
        ("score", "--residuals", "res.tif", ".csv"),
    ],
)
def test_an_output_needs_the_extension_of_its_format(
    command: str,
    flag: str,
    name: str,
    wanted: str,
    small_pair: SyntheticPair,
    zero_map: Path,
    tmp_path: Path,
    cli: CliRun,
) -> None:
    argv = _argv(command, flag, small_pair, zero_map, tmp_path)
    argv[argv.index(flag) + 1] = tmp_path / name
    code, err = cli(*argv)
    assert code == 2
    message = error_line(err, command)
    suffix = Path(name).suffix
    found = f"extension {suffix}" if suffix else "no extension"
    assert message.startswith(f"{flag} {tmp_path / name}: {found}, but this output is written")
    assert f"give a path ending in {wanted}" in message
    assert files_under(tmp_path) == []


def test_extensions_are_matched_in_any_case(
    small_pair: SyntheticPair, zero_map: Path, tmp_path: Path, cli: CliRun
) -> None:
    code, err = cli("warp", small_pair.optical, zero_map, "-o", tmp_path / "A.TIFF")
    assert code == 0, err
    assert files_under(tmp_path) == ["A.TIFF"]


def test_bench_refuses_an_existing_report(tmp_path: Path, cli: CliRun) -> None:
    report = tmp_path / "report.json"
    report.write_bytes(OLD)
    code, err = cli("bench", "--data", tmp_path / "no-data", "--out", report)
    assert code == 2
    assert error_line(err, "bench").startswith(f"output --out {report} exists; pass --overwrite")
    assert report.read_bytes() == OLD
    code, err = cli("bench", "--data", tmp_path / "no-data", "--out", tmp_path / "report.txt")
    assert code == 2 and "give a path ending in .json" in error_line(err, "bench")


def test_register_prints_text_or_one_json_line(
    small_pair: SyntheticPair, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = [small_pair.optical, small_pair.sar, "--method", "zero", "--no-progress"]
    base += ["--tiepoints", small_pair.tiepoints]
    assert main([str(a) for a in ["register", *base, "-o", tmp_path / "a.tif"]]) == 0
    text = capsys.readouterr().out
    assert main([str(a) for a in ["register", *base, "-o", tmp_path / "b.tif", "--json"]]) == 0
    (line,) = capsys.readouterr().out.splitlines()
    summary = json.loads(line)
    assert {"method", "version", "device", "runtime_s", "matches", "inliers", "output"} <= set(
        summary
    )
    assert summary["score"]["tiepoints"] == len(small_pair.tiepoints.read_text().splitlines()) - 1
    assert text.startswith(f"zero {summary['version']} on {summary['device']}: ")
    assert f"  displacement  {tmp_path / 'a.tif'}\n" in text
    assert f"  score         {summary['score']['tiepoints']} tiepoints: mean " in text
    with pytest.raises(json.JSONDecodeError):
        json.loads(text)


def test_warp_and_score_print_text_or_one_json_line(
    small_pair: SyntheticPair, zero_map: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    warp = ["warp", small_pair.optical, zero_map, "-o", tmp_path / "w.tif"]
    assert main([str(a) for a in warp]) == 0
    assert capsys.readouterr().out == f"aligned optical  {tmp_path / 'w.tif'}\n"
    assert main([str(a) for a in [*warp, "--overwrite", "--json"]]) == 0
    assert json.loads(capsys.readouterr().out) == {"output": str(tmp_path / "w.tif")}
    score = ["score", zero_map, small_pair.optical, small_pair.sar, small_pair.tiepoints]
    assert main([str(a) for a in score]) == 0
    assert capsys.readouterr().out.startswith("tiepoints ")
    assert main([str(a) for a in [*score, "--json"]]) == 0
    (line,) = capsys.readouterr().out.splitlines()
    assert set(json.loads(line)) >= {"tiepoints", "mean_px", "mean_m", "p90_px"}


def test_register_residuals_need_tiepoints(
    small_pair: SyntheticPair, tmp_path: Path, cli: CliRun
) -> None:
    residuals = tmp_path / "r.csv"
    argv = ["register", small_pair.optical, small_pair.sar, "-o", tmp_path / "d.tif"]
    code, err = cli(*argv, "--method", "zero", "--residuals", residuals)
    assert code == 2
    assert error_line(err, "register").startswith(f"--residuals {residuals}: residuals are")
    assert files_under(tmp_path) == []


def test_score_confidence_needs_residuals(
    small_pair: SyntheticPair, zero_map: Path, tmp_path: Path, cli: CliRun
) -> None:
    argv = ["score", zero_map, small_pair.optical, small_pair.sar, small_pair.tiepoints]
    code, err = cli(*argv, "--confidence", zero_map)
    assert code == 2
    assert error_line(err, "score").startswith(f"--confidence {zero_map}: the confidence is")
