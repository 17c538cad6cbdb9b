"""A synthetic sample event: a Maxar-like optical scene and an Umbra-like SAR scene with SN9
tiepoints.

The demo's event and the workflow tests' fixture. Deterministic: the same arguments give the same
files, and files already written for the same arguments are reused (a rerun then hits the caches).
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path

from samples.synth import SceneSpec, ShiftModel, SyntheticPair, synthesize_pair

EVENT_DATE = dt.datetime(2023, 2, 6, 1, 17, tzinfo=dt.UTC)


@dataclass(frozen=True)
class SampleEvent:
    name: str
    event_date: dt.datetime
    optical_time: dt.datetime
    sar_time: dt.datetime
    pair: SyntheticPair


def sample_spec(
    size_m: float = 400.0, seed: int = 11, origin: tuple[float, float] = (377000.0, 4106000.0)
) -> SceneSpec:
    """Optical 3-band uint8 at 0.3 m (north-up); SAR 1-band at 0.4 m on a 14°-rotated grid with
    speckle, layover of
    built structures towards the sensor, nodata corners; a smooth non-rigid ~30 m offset (24 m east,
    17 m south,
    a gentle affine part and ±4 m waves)."""
    centre = (origin[0] + size_m / 2, origin[1] - size_m / 2)
    return SceneSpec(
        size_m=size_m,
        optical_res=0.3,
        sar_res=0.4,
        sar_rotation_deg=14.0,
        seed=seed,
        base_res=0.2,
        origin=origin,
        shift=ShiftModel(
            offset=(24.0, -17.0),
            linear=(0.004, -0.002, 0.003, 0.002),
            nonrigid_m=4.0,
            wavelength_m=max(size_m, 200.0),
            centre=centre,
            seed=seed,
        ),
    )


def sample_event(
    out_dir: str | Path,
    size_m: float = 400.0,
    seed: int = 11,
    name: str = "sample-earthquake",
    origin: tuple[float, float] = (377000.0, 4106000.0),
) -> SampleEvent:
    """The event's scenes in ``out_dir`` (``event_optical.tif``, ``event_sar.tif``,
    ``event_tiepoints.csv``):
    pre-event optical 12 days before the event, post-event SAR 2.6 days after."""
    out = Path(out_dir)
    spec = sample_spec(size_m, seed, origin)
    stamp = out / "event_spec.json"
    key = repr(spec)
    files = [out / f"event_{k}" for k in ("optical.tif", "sar.tif", "tiepoints.csv")]
    if stamp.exists() and stamp.read_text() == json.dumps(key) and all(f.exists() for f in files):
        from models.raster import open_raster

        pair = SyntheticPair(
            files[0],
            files[1],
            files[2],
            spec,
            open_raster(files[0], "optical").grid,
            open_raster(files[1], "sar").grid,
        )
    else:
        stamp.unlink(missing_ok=True)
        pair = synthesize_pair(out, spec, "event")
        stamp.write_text(json.dumps(key))
    return SampleEvent(
        name,
        EVENT_DATE,
        EVENT_DATE - dt.timedelta(days=12, hours=3),
        EVENT_DATE + dt.timedelta(days=2, hours=15),
        pair,
    )
