"""The priors tried on a few first-level tiles, and the kept prior's level completed."""

from __future__ import annotations

import pytest
from shapely.geometry import box

from models.methods.base import make_config
from models.methods.local import LocalConfig
from models.methods.local.levels import level_jobs
from models.methods.local.trial_tiles import core_footprint, trial_tiles
from models.registration import register


def _jobs(pair, tile_px: int):
    conf = make_config(LocalConfig, {"tile_px": str(tile_px)})
    fld = register(pair, "zero").field
    return level_jobs(pair, conf, fld, pair.native_resolution() * 2, 4)[1]


def test_every_tile_when_there_are_few(nonrigid_pair):
    jobs = _jobs(nonrigid_pair.open(), 64)
    assert len(jobs) >= 4
    overlap = nonrigid_pair.open().overlap
    assert trial_tiles(jobs, overlap, 0) == list(range(len(jobs)))
    assert trial_tiles(jobs, overlap, len(jobs)) == list(range(len(jobs)))


def test_the_tiles_covering_most_of_the_overlap(nonrigid_pair):
    pair = nonrigid_pair.open()
    jobs = _jobs(pair, 64)
    last = core_footprint(jobs[-1])
    # an overlap reaching only the last tile's core and a sliver of the first's
    first = core_footprint(jobs[0])
    x0, y0, x1, y1 = first.bounds
    overlap = last.union(box(x0, y0, x0 + 0.1 * (x1 - x0), y1))
    picked = trial_tiles(jobs, overlap, 2)
    assert picked == [0, len(jobs) - 1]
    assert trial_tiles(jobs, last, 1) == [len(jobs) - 1]


@pytest.mark.slow
def test_kept_prior_completed_on_every_tile(nonrigid_pair):
    pair = nonrigid_pair.open()
    settings = {"tile_px": "64", "levels": "2,1", "radius_px": "8,3", "optical_level": "false"}
    every = register(pair, "local", {**settings, "prior_tiles": "0"})
    few = register(pair, "local", {**settings, "prior_tiles": "1"})
    tiles = every.details["levels"][0]["tiles"]
    assert tiles >= 4
    assert "prior_tiles" not in every.details
    assert few.details["prior_tiles"] == {"tried": 1, "tiles": tiles}
    assert few.details["levels"][0]["tiles"] == tiles
    assert few.details["prior"] == every.details["prior"]
    err_every = nonrigid_pair.field_error_px(every.field).mean()
    err_few = nonrigid_pair.field_error_px(few.field).mean()
    assert err_few < 1.5 and abs(err_few - err_every) < 0.3, (err_few, err_every)
