"""What every registration method shares: its input, its result, its config handling."""

from __future__ import annotations

import dataclasses
import math
import time
import typing
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

import numpy as np
from pyproj import CRS
from shapely.geometry import Polygon

from models.displacement import DisplacementField
from models.errors import InputError
from models.grid import Grid, north_up_grid
from models.raster import RasterSource, footprint_overlap, open_raster

Progress = Callable[[str, int, int], None]


def no_progress(stage: str, done: int, total: int) -> None:
    """Default progress sink."""


@dataclass(frozen=True)
class RegistrationInput:
    """An optical/SAR pair ready to register: checked sources, metric CRS, overlap."""

    optical: RasterSource
    sar: RasterSource
    crs: CRS
    overlap: Polygon
    device: str = "cpu"

    @classmethod
    def open(cls, optical: str, sar: str, device: str = "auto") -> RegistrationInput:
        from models.matchers import resolve_device

        o = open_raster(optical, "optical")
        s = open_raster(sar, "sar")
        crs, overlap = footprint_overlap(o, s)
        return cls(o, s, crs, overlap, resolve_device(device))

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


def _parse(value: Any, tp: Any, key: str) -> Any:
    if not isinstance(value, str):
        return value
    origin = typing.get_origin(tp)
    if origin is typing.Literal:
        if value not in typing.get_args(tp):
            raise InputError(
                f"setting {key}={value!r}: choose one of {', '.join(map(str, typing.get_args(tp)))}"
            )
        return value
    if origin is tuple:
        inner = typing.get_args(tp)[0]
        return tuple(_parse(v.strip(), inner, key) for v in value.split(",") if v.strip())
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if value.lower() in ("none", "null", ""):
            return None
        return _parse(value, args[0], key)
    try:
        if tp is bool:
            if value.lower() in ("1", "true", "yes", "on"):
                return True
            if value.lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError(value)
        if tp in (int, float, str):
            return tp(value)
    except ValueError:
        raise InputError(
            f"setting {key}={value!r}: expected {getattr(tp, '__name__', tp)}"
        ) from None
    return value


def make_config(config_cls: type, overrides: Mapping[str, Any] | None = None) -> Any:
    """The method's defaults merged with user overrides (strings are parsed by field type)."""
    fields = {f.name: f for f in dataclasses.fields(config_cls)}
    hints = typing.get_type_hints(config_cls)
    values: dict[str, Any] = {}
    for key, value in (overrides or {}).items():
        if key not in fields:
            raise InputError(
                f"unknown setting {key!r} for this method; valid settings: {', '.join(fields)}"
            )
        values[key] = _parse(value, hints[key], key)
    return dataclasses.replace(config_cls(), **values)


def config_dict(conf: Any) -> dict[str, Any]:
    return {
        k: (list(v) if isinstance(v, tuple) else v) for k, v in dataclasses.asdict(conf).items()
    }


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
