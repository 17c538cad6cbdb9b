"""Method settings: every one declares its valid values, and a bad one is refused with a clear
message before any work starts (register, activate, the activation flow)."""

from __future__ import annotations

import dataclasses
import json
import re
import time
import typing
from pathlib import Path

import numpy as np
import pytest
from affine import Affine

from core.errors import InputError
from flows.cli import main
from models.methods import METHODS, check_methods, method_config, parse_set_options
from models.methods.base import SETTING, Valid, describe
from models.methods.local import LocalMethod
from tests.conftest import write_geotiff


def _numeric(tp: typing.Any) -> bool:
    if typing.get_origin(tp) is tuple:
        return True
    return tp in (int, float)


@pytest.mark.parametrize("name", sorted(METHODS))
def test_every_setting_declares_its_valid_values_and_its_default_is_one(name):
    config = METHODS[name].Config
    hints = typing.get_type_hints(config)
    for f in dataclasses.fields(config):
        valid = f.metadata.get(SETTING)
        assert isinstance(valid, Valid), f"{name}.{f.name} declares no valid values"
        if _numeric(hints[f.name]):
            assert valid.bounds(), f"{name}.{f.name} is a number without a range"
        assert describe(hints[f.name], valid)
        # the default, given back as a setting, passes its own check
        default = getattr(config(), f.name)
        given = ",".join(map(str, default)) if isinstance(default, tuple) else str(default)
        assert getattr(method_config(name, {f.name: given}), f.name) == default


@pytest.mark.parametrize(
    "method, key, value, valid",
    [
        ("local", "template_px", "-48", "int in [8, 512]"),
        ("local", "levels", "0", "each in (0, 64]"),
        ("local", "levels", "", "1 or more comma-separated float values"),
        ("local", "radius_px", "12,6,x", "int values, each in [1, 128]"),
        ("local", "min_peak", "nan", "float in [-1, 1]"),
        ("local", "smoothing", "inf", "float >= 0"),
        ("local", "workers", "-2", "int in [0, 1024]"),
        ("local", "workers", "1.5", "int in [0, 1024]"),
        ("local", "verify", "maybe", "true or false"),
        ("local", "interpolation", "cubic", "one of gaussian, tps"),
        ("global-affine", "max_side", "16", "int in [64, 16384]"),
        ("global-affine", "min_inliers", "2", "int >= 3"),
        ("global-affine", "filter_threshold", "-inf", "float in [0, 1]"),
        ("zero", "resolution_m", "0", "float > 0"),
        ("zero", "resolution_m", "NaN", "float > 0"),
    ],
)
def test_a_bad_setting_names_method_key_value_and_range(method, key, value, valid):
    with pytest.raises(InputError) as err:
        method_config(method, {key: value})
    message = str(err.value)
    assert message.startswith(f"{method} setting {key}={value!r}: ")
    assert valid in message


@pytest.mark.parametrize(
    "value",
    [True, 2.5, float("nan"), "two", None],
)
def test_python_values_of_the_wrong_type_or_not_finite_are_refused(value):
    with pytest.raises(InputError, match=r"local setting workers=.*expected int in \[0, 1024\]"):
        method_config("local", {"workers": value})
    with pytest.raises(InputError, match="local setting min_peak="):
        method_config("local", {"min_peak": float("nan") if value is None else value})


def test_python_values_in_range_are_taken():
    conf = method_config("local", {"levels": [4, 2], "radius_px": (8, 4), "min_peak": 0})
    assert conf.levels == (4, 2) and conf.radius_px == (8, 4) and conf.min_peak == 0
    assert method_config("local", {"levels": " 4, 2 ", "radius_px": "8,4"}).levels == (4.0, 2.0)


def test_settings_that_contradict_each_other_are_refused():
    with pytest.raises(InputError, match=r"local settings: radius_px needs one value per level"):
        method_config("local", {"levels": "4,2"})
    with pytest.raises(InputError, match="unknown setting 'templat_px' for method local"):
        method_config("local", {"templat_px": "48"})


def _tif(path: Path, count: int) -> str:
    rng = np.random.default_rng(count)
    data = rng.integers(1, 255, (count, 64, 64), dtype=np.uint8)
    write_geotiff(path, data, Affine(0.5, 0, 377000.0, 0, -0.5, 4106000.0))
    return str(path)


@pytest.mark.parametrize(
    "setting, message",
    [
        ("template_px=-48", "local setting template_px='-48': expected int in [8, 512]"),
        ("levels=0", "local setting levels='0': expected 1 or more"),
        ("min_peak=nan", "local setting min_peak='nan': expected float in [-1, 1]"),
        ("workers=-2", "local setting workers='-2': expected int in [0, 1024]"),
        ("local:levels=0", "local setting levels='0': expected 1 or more"),
        ("zero:resolution_m=5", "settings given for method 'zero', which is not run"),
        ("local.levels=2", "a method is named with a colon, e.g. local:levels=2"),
    ],
)
def test_register_refuses_a_bad_setting_before_the_method_runs(
    tmp_path, capsys, monkeypatch, setting, message
):
    def never(*args, **kwargs):
        raise AssertionError("the method ran")

    monkeypatch.setattr(LocalMethod, "run", never)
    optical, sar = _tif(tmp_path / "o.tif", 3), _tif(tmp_path / "s.tif", 1)
    out = tmp_path / "d.tif"
    argv = ["register", optical, sar, "-o", str(out), "--no-progress", "--set", setting]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("coalign register: error: ") and message in err
    assert not out.exists()


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--method", "bogus"], "unknown method 'bogus'; available: zero, global-affine, local"),
        (
            ["--method", "zero", "--method", "bogus"],
            "unknown method 'bogus'; available: zero, global-affine, local",
        ),
        (["--set", "bogus:levels=4"], "unknown method 'bogus'; available:"),
        (["--set", "local:template_px=-48"], "local setting template_px='-48': expected int"),
        (["--set", "local:nope=1"], "unknown setting 'nope' for method local"),
        (["--set", "zero:resolution_m=5"], "settings given for method 'zero', which is not run"),
        (["--set", "levels=0"], "local setting levels='0': expected 1 or more"),
        (
            ["--method", "zero", "--method", "local", "--set", "levels=2"],
            "several methods run (zero, local); name the one it is for, as METHOD:levels=2",
        ),
    ],
)
def test_activate_checks_methods_before_anything_starts(
    tmp_path, capsys, monkeypatch, extra, message
):
    import flows.commands.activate as activate

    def never(*args, **kwargs):
        raise AssertionError("the activation started")

    monkeypatch.setattr(activate, "run_activation", never)
    monkeypatch.setattr(activate, "emit_activation", never)
    argv = ["activate", "--catalog", str(tmp_path / "catalog.json"), "--workdir", str(tmp_path)]
    t0 = time.perf_counter()
    assert main([*argv, *extra]) == 2
    assert time.perf_counter() - t0 < 10
    err = capsys.readouterr().err
    assert err.startswith("coalign activate: error: ") and message in err
    assert list(tmp_path.iterdir()) == []


def test_activation_flow_checks_methods_before_discovery_and_tracking(tmp_path, monkeypatch):
    import flows.activation as activation

    def never(*args, **kwargs):
        raise AssertionError("tracking started")

    monkeypatch.setattr(activation, "track_activation_start", never)
    monkeypatch.setattr(activation, "for_workdir", never)
    work = tmp_path / "work"
    with pytest.raises(InputError, match="unknown method 'bogus'; available: zero, global-affine"):
        activation.activation.fn(catalogs=["c.json"], methods=["bogus"], workdir=str(work))
    with pytest.raises(InputError, match="local setting levels='0'"):
        activation.activation.fn(
            catalogs=["c.json"], settings={"local": {"levels": "0"}}, workdir=str(work)
        )
    assert not work.exists()


def test_set_options_read_one_grammar():
    assert parse_set_options(["levels=2,1", "local:radius_px = 6,3 "], ["local"]) == {
        "local": {"levels": "2,1", "radius_px": "6,3"}
    }
    both = parse_set_options(["zero:resolution_m=5", "local:levels=2,1", "zero:x=1"], ["zero"])
    assert both == {"zero": {"resolution_m": "5", "x": "1"}, "local": {"levels": "2,1"}}
    assert parse_set_options(["levels=2", "levels=3"], ["local"]) == {"local": {"levels": "3"}}
    assert parse_set_options(None, ["local"]) == {}


@pytest.mark.parametrize(
    "item, message",
    [
        ("levels", "expected [METHOD:]KEY=VALUE"),
        ("local:=2", "expected [METHOD:]KEY=VALUE"),
        (":levels=2", "expected [METHOD:]KEY=VALUE"),
        ("local.levels=2", "e.g. local:levels=2"),
        ("levels=2", "several methods run (zero, local)"),
    ],
)
def test_set_options_refuse_what_they_cannot_place(item, message):
    with pytest.raises(InputError, match=re.escape(message)):
        parse_set_options([item], ["zero", "local"])


def test_check_methods_takes_good_methods_and_settings():
    check_methods(["zero", "local"], {"local": {"levels": "2,1", "radius_px": "6,3"}})
    check_methods(["global-affine"], None)


def test_methods_lists_the_valid_values_the_check_enforces(capsys):
    assert main(["methods", "--json"]) == 0
    infos = {m["name"]: m for m in json.loads(capsys.readouterr().out)}
    assert set(infos) == set(METHODS)
    assert all(set(i["valid"]) == set(i["defaults"]) for i in infos.values())
    listed = infos["local"]["valid"]["template_px"]
    with pytest.raises(InputError) as err:
        method_config("local", {"template_px": "7"})
    assert str(err.value).endswith(f"expected {listed} (see `coalign methods`)")
