"""What every registration method shares: its input, its result, its config handling."""

from __future__ import annotations

import dataclasses
import math
import numbers
import time
import types
import typing
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

import numpy as np
from pyproj import CRS
from shapely.geometry import Polygon

from core.errors import InputError
from core.grid import Grid, north_up_grid
from models.displacement import DisplacementField
from models.height import HeightModel, open_height_model
from models.progress import Progress, no_progress
from models.raster import RasterSource, footprint_overlap, open_raster
from models.sar_geometry import SarGeometry, geometry_from_tags


@dataclass(frozen=True)
class RegistrationInput:
    """An optical/SAR pair ready to register: checked sources, metric CRS, overlap."""

    optical: RasterSource
    sar: RasterSource
    crs: CRS
    overlap: Polygon
    device: str = "cpu"
    height: HeightModel | None = None
    geometry: SarGeometry | None = None

    @classmethod
    def open(
        cls,
        optical: str,
        sar: str,
        device: str = "auto",
        dsm: str | None = None,
        dtm: str | None = None,
        geometry: SarGeometry | None = None,
    ) -> RegistrationInput:
        """Open and check the pair; the SAR geometry is ``geometry`` (options, STAC item), else
        the SAR file's tags (:func:`models.sar_geometry.geometry_from_tags`), else none."""
        from models.matchers import resolve_device

        o = open_raster(optical, "optical")
        s = open_raster(sar, "sar")
        crs, overlap = footprint_overlap(o, s)
        height = open_height_model(dsm, dtm, crs, o.grid.footprint_in(crs), optical)
        geometry = geometry or geometry_from_tags(s.path)
        return cls(o, s, crs, overlap, resolve_device(device), height=height, geometry=geometry)

    def grid_over(self, area: Polygon, resolution: float) -> Grid:
        return north_up_grid(self.crs, area.bounds, resolution)

    def optical_footprint(self) -> Polygon:
        return self.optical.grid.footprint_in(self.crs)

    def native_resolution(self) -> float:
        """The coarser of the two images' pixel sizes, in metres of the working CRS."""
        return max(self._pixel_sizes())

    def finest_resolution(self) -> float:
        """The finer of the two images' pixel sizes, in metres of the working CRS."""
        return min(self._pixel_sizes())

    def _pixel_sizes(self) -> tuple[float, float]:
        def size(g: Grid) -> float:
            return float(math.sqrt(g.footprint_in(self.crs).area / (g.width * g.height)))

        return size(self.optical.grid), size(self.sar.grid)


@dataclass
class RegistrationResult:
    """A method's displacement field plus what a person needs to judge it."""

    method: str
    version: str
    config: dict[str, Any]
    field: DisplacementField
    matches: int = 0
    inliers: int = 0
    runtime_s: dict[str, float] = dataclasses.field(default_factory=dict)
    warnings: list[str] = dataclasses.field(default_factory=list)
    details: dict[str, Any] = dataclasses.field(default_factory=dict)

    @contextmanager
    def timed(self, stage: str) -> Iterator[None]:
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.runtime_s[stage] = self.runtime_s.get(stage, 0.0) + time.perf_counter() - t0


class Method(Protocol):
    """A named, versioned registration method with a frozen config (LightGlue ``default_conf``
    style)."""

    name: ClassVar[str]
    version: ClassVar[str]
    description: ClassVar[str]
    Config: ClassVar[type]

    def run(
        self, pair: RegistrationInput, conf: Any, progress: Progress = no_progress
    ) -> RegistrationResult: ...


SETTING = "coalign.setting"  # dataclass field metadata key of a setting's valid values


@dataclass(frozen=True)
class Valid:
    """The valid values of a setting: bounds of a number (each number's, for a list) and, for a
    list, its least length; choices come from a ``Literal`` type."""

    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    lt: float | None = None
    min_items: int = 1
    text: str = ""

    def contains(self, x: float) -> bool:
        """Whether the number ``x`` is finite and within the bounds."""
        return (
            math.isfinite(x)
            and (self.ge is None or x >= self.ge)
            and (self.gt is None or x > self.gt)
            and (self.le is None or x <= self.le)
            and (self.lt is None or x < self.lt)
        )

    def bounds(self) -> str:
        """The bounds in words, e.g. ``in [0, 1]``, ``> 0``, ``>= 8`` (empty when unbounded)."""
        lo = f"[{_num(self.ge)}" if self.ge is not None else None
        lo = f"({_num(self.gt)}" if self.gt is not None else lo
        hi = f"{_num(self.le)}]" if self.le is not None else None
        hi = f"{_num(self.lt)})" if self.lt is not None else hi
        if lo and hi:
            return f"in {lo}, {hi}"
        if lo:
            return (">= " if lo[0] == "[" else "> ") + lo[1:]
        if hi:
            return ("<= " if hi[-1] == "]" else "< ") + hi[:-1]
        return ""


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


def setting(
    default: Any,
    *,
    ge: float | None = None,
    gt: float | None = None,
    le: float | None = None,
    lt: float | None = None,
    min_items: int = 1,
    text: str = "",
) -> Any:
    """A config field with its default and its valid values (checked by :func:`make_config`).

    Args:
        default: The default value (a tuple for list settings).
        ge: Least value (inclusive) of a number, or of each number of a list.
        gt: Bound that a number, or each number of a list, must exceed.
        le: Greatest value (inclusive).
        lt: Bound that a number must stay below.
        min_items: Least number of values of a list setting.
        text: What a text setting holds, in words (for the error message).
    """
    valid = Valid(ge, gt, le, lt, min_items, text)
    return field(default=default, metadata={SETTING: valid})


def describe(tp: Any, valid: Valid) -> str:
    """The valid values of a setting of type ``tp`` in words, e.g. ``int >= 8``."""
    origin = typing.get_origin(tp)
    if origin is typing.Literal:
        return "one of " + ", ".join(map(str, typing.get_args(tp)))
    if origin is tuple:
        inner = typing.get_args(tp)[0]
        each = f", each {valid.bounds()}" if valid.bounds() else ""
        return f"{valid.min_items} or more comma-separated {inner.__name__} values{each}"
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return f"none or {describe(args[0], valid)}"
    if tp is bool:
        return "true or false"
    if tp is str:
        return valid.text or "text"
    return f"{getattr(tp, '__name__', tp)} {valid.bounds()}".strip()


def _parse(value: Any, tp: Any) -> Any:
    """A setting given as text turned into ``tp``; ValueError when it is not one."""
    if not isinstance(value, str):
        return tuple(value) if isinstance(value, list) else value
    origin = typing.get_origin(tp)
    if origin is typing.Literal:
        return value.strip()
    if origin is tuple:
        inner = typing.get_args(tp)[0]
        return tuple(_parse(v.strip(), inner) for v in value.split(",") if v.strip())
    if origin in (typing.Union, types.UnionType):
        if value.strip().lower() in ("none", "null", ""):
            return None
        return _parse(value, [a for a in typing.get_args(tp) if a is not type(None)][0])
    if tp is bool:
        if value.strip().lower() in ("1", "true", "yes", "on"):
            return True
        if value.strip().lower() in ("0", "false", "no", "off"):
            return False
        raise ValueError(value)
    if tp in (int, float):
        return tp(value)
    return value


def _is_valid(value: Any, tp: Any, valid: Valid) -> bool:
    """Whether a parsed ``value`` is of type ``tp`` and within ``valid``."""
    origin = typing.get_origin(tp)
    if origin is typing.Literal:
        return value in typing.get_args(tp)
    if origin is tuple:
        inner = typing.get_args(tp)[0]
        return (
            isinstance(value, tuple)
            and len(value) >= valid.min_items
            and all(_is_valid(v, inner, valid) for v in value)
        )
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return value is None or _is_valid(value, args[0], valid)
    if tp is bool or tp is str:
        return isinstance(value, tp)
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return False
    if tp is int and not isinstance(value, numbers.Integral):
        return False
    return valid.contains(float(value))


def check_setting(method: str, name: str, value: Any, tp: Any, valid: Valid) -> Any:
    """The setting ``name`` of ``method`` parsed from text and checked against its valid values.

    Args:
        method: The method's name, for the message.
        name: The setting's name.
        value: The value given (text from the command line, or a Python value).
        tp: The setting's type (its dataclass annotation).
        valid: Its valid values.

    Raises:
        InputError: The value is not of the type, is NaN or infinite, or is out of range; the
            message names the method, the setting, the value and the valid values.
    """
    try:
        parsed = _parse(value, tp)
        ok = _is_valid(parsed, tp, valid)
    except ValueError:
        ok = False
    if not ok:
        what = describe(tp, valid)
        verb = "choose " if what.startswith("one of") else "expected "
        raise InputError(f"{method} setting {name}={value!r}: {verb}{what} (see `coalign methods`)")
    return parsed


def make_config(
    config_cls: type, overrides: Mapping[str, Any] | None = None, method: str = ""
) -> Any:
    """The method's defaults merged with user overrides, every override checked before any work.

    Args:
        config_cls: The method's config dataclass; each field declares its valid values
            (:func:`setting`).
        overrides: Settings by name: text (``--set`` values, parsed by the field's type) or
            Python values.
        method: The method's name, for error messages (default: the config class's name).

    Raises:
        InputError: An unknown setting, or a value of the wrong type, NaN/infinite, out of range
            or inconsistent with another setting.
    """
    method = method or config_cls.__name__
    fields = {f.name: f for f in dataclasses.fields(config_cls)}
    hints = typing.get_type_hints(config_cls)
    values: dict[str, Any] = {}
    for key, value in (overrides or {}).items():
        if key not in fields:
            raise InputError(
                f"unknown setting {key!r} for method {method}; valid settings: {', '.join(fields)}"
            )
        valid = fields[key].metadata.get(SETTING, Valid())
        values[key] = check_setting(method, key, value, hints[key], valid)
    conf = dataclasses.replace(config_cls(), **values)
    check = getattr(conf, "inconsistency", None)
    problem = check() if check else None
    if problem:
        raise InputError(f"{method} settings: {problem}")
    return conf


def valid_settings(config_cls: type) -> dict[str, str]:
    """Each setting's valid values in words, by name (what ``coalign methods`` lists)."""
    hints = typing.get_type_hints(config_cls)
    return {
        f.name: describe(hints[f.name], f.metadata.get(SETTING, Valid()))
        for f in dataclasses.fields(config_cls)
    }


def config_dict(conf: Any) -> dict[str, Any]:
    return {
        k: (list(v) if isinstance(v, tuple) else v) for k, v in dataclasses.asdict(conf).items()
    }


def check_extent(pair: RegistrationInput, method: str, min_m: float, need: str) -> None:
    """Refuse a pair too small for a method to measure anything, before any work.

    Args:
        pair: The pair to register.
        method: The method's name, for the message.
        min_m: The least width, in metres, of each image and of the footprints' overlap (its
            bounding box in the working CRS, as the methods' grids cover it).
        need: What that width must hold, in words (e.g. one template plus its search).

    Raises:
        InputError: An image, or the overlap, is narrower than ``min_m``; the message gives the
            size found and the least size in pixels and metres.
    """
    images = (("optical", pair.optical), ("SAR", pair.sar))
    for (label, src), pixel in zip(images, pair._pixel_sizes(), strict=True):
        w, h = src.grid.width, src.grid.height
        if min(w, h) * pixel < min_m:
            raise InputError(
                f"{label} image {src.path} is {w}x{h} pixels ({w * pixel:.1f} x {h * pixel:.1f} m):"
                f" too small to register with {method}, which needs at least "
                f"{math.ceil(min_m / pixel)} pixels ({min_m:.1f} m) across ({need})"
            )
    minx, miny, maxx, maxy = pair.overlap.bounds
    if min(maxx - minx, maxy - miny) < min_m:
        raise InputError(
            f"optical {pair.optical.path} and SAR {pair.sar.path} overlap by only "
            f"{maxx - minx:.1f} x {maxy - miny:.1f} m: too little for {method}, which needs an "
            f"overlap at least {min_m:.1f} m across ({need}); give a pair that overlaps more"
        )


def field_grid(pair: RegistrationInput, resolution: float) -> Grid:
    """The grid a displacement field is stored on: the optical footprint at ``resolution``."""
    return pair.grid_over(pair.optical_footprint(), resolution)


def inlier_confidence(grid: Grid, x: np.ndarray, y: np.ndarray, radius_m: float) -> np.ndarray:
    """0–1 support map: 1 where inliers are dense within ``radius_m``, falling to 0 far from any."""
    from scipy.ndimage import gaussian_filter

    counts = np.zeros(grid.shape, np.float32)
    if len(x):
        col, row = grid.map_to_pixel(x, y)
        c = np.clip(col.astype(int), 0, grid.width - 1)
        r = np.clip(row.astype(int), 0, grid.height - 1)
        np.add.at(counts, (r, c), 1.0)
    sigma = max(radius_m / grid.resolution, 0.5)
    density = gaussian_filter(counts, sigma, mode="constant") * (2 * math.pi * sigma * sigma)
    return (1.0 - np.exp(-density)).astype(np.float32)


@dataclass(frozen=True)
class MethodInfo:
    name: str
    version: str
    description: str
    defaults: dict[str, Any] = field(default_factory=dict)
    valid: dict[str, str] = field(default_factory=dict)
