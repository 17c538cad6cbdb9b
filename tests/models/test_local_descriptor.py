"""``local``'s descriptor setting: CFOG by default (unchanged), the learned network's features
with a weights file, the run's record and method version, and the settings it refuses."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from core.errors import InputError
from core.grid import north_up_grid
from models.areamatch import cfog
from models.displacement import DisplacementField
from models.learned import DescriptorNet, describe, load_descriptor, save_descriptor
from models.methods.base import make_config
from models.methods.local import LocalMethod
from models.methods.local.config import LocalConfig
from models.methods.local.descriptor import descriptor_record, descriptor_version
from models.methods.local.tiles import TileJob, describe_tile


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("weights") / "net.pt"
    save_descriptor(DescriptorNet(), path)
    return path


def _job(**kw) -> TileJob:
    grid = north_up_grid("EPSG:32637", (0.0, 0.0, 64.0, 64.0), 1.0)
    fld = DisplacementField.constant(grid)
    return TileJob(None, None, grid, (0, 0, 64, 64), fld, 16, 8, 3, 1.2, **kw)


def _image() -> np.ndarray:
    rng = np.random.default_rng(0)
    img = rng.random((64, 64), dtype=np.float32)
    img[:5, :5] = np.nan
    return img


def test_cfog_is_the_default_descriptor():
    img = _image()
    assert LocalConfig().descriptor == "cfog"
    assert np.array_equal(describe_tile(img, "sar", _job()), cfog(img, sigma=1.2))


def test_learned_tiles_use_the_network(weights):
    img = _image()
    job = _job(descriptor="learned", model=str(weights))
    got = describe_tile(img, "optical", job)
    assert np.array_equal(got, describe(img, "optical", load_descriptor(weights)))
    assert not np.array_equal(describe_tile(img, "sar", job), got)  # a stem per modality


def test_record_and_version(weights):
    conf = make_config(LocalConfig, {"descriptor": "learned", "model": str(weights)}, "local")
    record = descriptor_record(conf)
    assert record["name"] == "learned" and len(record["sha256"]) == 64
    assert descriptor_version("1.6.0", record) == f"1.6.0+learned-{record['sha256'][:12]}"
    pinned = descriptor_record(replace(conf, model_uri="models:/coalign-descriptor/3"))
    assert descriptor_version("1.6.0", pinned) == "1.6.0+coalign-descriptor/3"
    assert descriptor_version("1.6.0", descriptor_record(LocalConfig())) == "1.6.0"


@pytest.mark.parametrize(
    ("model", "message"),
    [
        ("", "descriptor=learned needs the weights"),
        ("/no/such.pt", "no such weights file"),
        ("models:/coalign-descriptor@champion", "resolved to a weights file"),
    ],
)
def test_learned_settings_refused_before_any_work(model, message):
    conf = replace(LocalConfig(), descriptor="learned", model=model)
    with pytest.raises(InputError, match=message):
        LocalMethod().run(None, conf)
