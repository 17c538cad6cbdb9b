"""Milliseconds of ``local``'s dense kernels: NumPy/SciPy against torch, on CPU and CUDA."""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import cv2
import numpy as np
import torch

from models.areamatch import TemplateMatches, cfog, match_templates
from models.gpu import cfog_torch, match_templates_torch
from models.methods.local.config import LocalConfig
from models.methods.local.dense import normalised_convolution

# path, CFOG ms (both images), matching ms, matches, normalised convolution ms
Row = tuple[str, float, float, int, float]
# Gaussian scale of the timed normalised convolution, grid cells
DENSE_SIGMA = 12.0


def no_sync() -> None:
    """Nothing to wait for on the CPU."""


def tile_images(side: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A blurred random texture and a shifted, squared, noisy copy (side × side float32).

    Args:
        side: Image side, pixels.
        seed: Random seed.
    """
    rng = np.random.default_rng(seed)
    img = cv2.GaussianBlur(rng.random((side, side)).astype(np.float32), (0, 0), 2.0)
    sar = np.roll(img, (3, -2), axis=(0, 1)) ** 2 + 0.01 * rng.random(img.shape)
    return img, sar.astype(np.float32)


def field_vectors(side: int, seed: int = 0) -> tuple[np.ndarray, ...]:
    """Cells, qualities and (dx, dy) of vectors every 4 cells of a ``side``² field grid.

    Args:
        side: Grid side, cells.
        seed: Random seed.
    """
    rng = np.random.default_rng(seed)
    rr, cc = np.meshgrid(np.arange(0, side, 4), np.arange(0, side, 4), indexing="ij")
    r, c = rr.ravel(), cc.ravel()
    return r, c, rng.uniform(0.1, 1.0, r.size), np.sin(r / 50.0), np.cos(c / 40.0)


def best_ms(fn: Callable[[], object], repeat: int, sync: Callable[[], None]) -> float:
    """The fastest of ``repeat`` timed calls after one warm-up call, in milliseconds.

    Args:
        fn: The call.
        repeat: Timed calls.
        sync: Waits for the device's queued work.
    """
    fn()
    sync()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t0)
    return 1000 * min(times)


def _numpy_row(img: np.ndarray, sar: np.ndarray, centres: np.ndarray, repeat: int) -> Row:
    conf = LocalConfig()
    template, radius = conf.template_px, conf.radius_px[0]
    od, sd = cfog(img), cfog(sar)

    def match() -> TemplateMatches:
        return match_templates(od, sd, centres, template, radius)

    ms_d = best_ms(lambda: (cfog(img), cfog(sar)), repeat, no_sync)
    shape, v = img.shape, field_vectors(img.shape[0])
    ms_g = best_ms(lambda: normalised_convolution(shape, *v, DENSE_SIGMA), repeat, no_sync)
    return "numpy", ms_d, best_ms(match, repeat, no_sync), len(match()), ms_g


def _torch_row(
    device: str, img: np.ndarray, sar: np.ndarray, centres: np.ndarray, repeat: int
) -> Row:
    conf = LocalConfig()
    template, radius = conf.template_px, conf.radius_px[0]
    sync = torch.cuda.synchronize if device == "cuda" else no_sync
    ti, ts = torch.from_numpy(img).to(device), torch.from_numpy(sar).to(device)
    od, sd = cfog_torch(ti), cfog_torch(ts)

    def match() -> TemplateMatches:
        return match_templates_torch(od, sd, centres, template, radius)

    ms_d = best_ms(lambda: (cfog_torch(ti), cfog_torch(ts)), repeat, sync)
    shape, v = img.shape, field_vectors(img.shape[0])
    ms_g = best_ms(
        lambda: normalised_convolution(shape, *v, DENSE_SIGMA, torch_device=device), repeat, sync
    )
    return f"torch-{device}", ms_d, best_ms(match, repeat, sync), len(match()), ms_g


def kernel_times(side: int, repeat: int) -> list[Row]:
    """(path, CFOG ms for both images, matching ms, matches, normalised convolution ms) per
    path on a ``side``² tile with ``local``'s default template, spacing and first search radius,
    and on a ``side``² field grid (:data:`DENSE_SIGMA`, vectors every 4 cells).

    Args:
        side: Tile side, pixels.
        repeat: Timed calls per kernel (the fastest counts).
    """
    conf = LocalConfig()
    img, sar = tile_images(side)
    half = conf.template_px // 2 + conf.radius_px[0] + 2
    axis = np.arange(half, side - half, conf.spacing_px, dtype=float)
    cc, rr = np.meshgrid(axis, axis)
    centres = np.column_stack([cc.ravel(), rr.ravel()])
    rows = [_numpy_row(img, sar, centres, repeat)]
    for device in ["cpu"] + (["cuda"] if torch.cuda.is_available() else []):
        rows.append(_torch_row(device, img, sar, centres, repeat))
    return rows


def main(argv: list[str] | None = None) -> None:
    """Print the table.

    Args:
        argv: Command-line arguments (default: the process's).
    """
    p = argparse.ArgumentParser(prog="python -m bench.kernels", description=__doc__)
    p.add_argument("--side", type=int, default=1024, help="tile side, pixels (default 1024)")
    p.add_argument("--repeat", type=int, default=3, help="timed calls per kernel (default 3)")
    p.add_argument(
        "--threads", type=int, default=0, help="torch CPU threads (default 0: torch's own choice)"
    )
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    conf = LocalConfig()
    print(
        f"{args.side}² tile, template {conf.template_px}, spacing {conf.spacing_px}, "
        f"radius {conf.radius_px[0]}, torch threads {torch.get_num_threads()}; dense: "
        f"{args.side}² field grid, sigma {DENSE_SIGMA:g} cells, a vector every 4 cells"
    )
    print(
        f"{'path':<12} {'cfog ms (2 images)':>20} {'match ms':>10} {'matches':>8} {'dense ms':>9}"
    )
    for path, ms_d, ms_m, n, ms_g in kernel_times(args.side, args.repeat):
        print(f"{path:<12} {ms_d:>20.0f} {ms_m:>10.0f} {n:>8} {ms_g:>9.0f}")


if __name__ == "__main__":
    main()
