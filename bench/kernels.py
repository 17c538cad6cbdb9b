"""Milliseconds per tile of ``local``'s dense kernels (CFOG, template matching): NumPy against
torch on the CPU and, when one is visible, on a CUDA GPU (``python -m bench.kernels``)."""

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

# path, CFOG ms (both images), matching ms, matches
Row = tuple[str, float, float, int]


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
    return "numpy", ms_d, best_ms(match, repeat, no_sync), len(match())


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
    return f"torch-{device}", ms_d, best_ms(match, repeat, sync), len(match())


def kernel_times(side: int, repeat: int) -> list[Row]:
    """(path, CFOG ms for both images, matching ms, matches) per path on a ``side``² tile with
    ``local``'s default template, spacing and first search radius.

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
        f"radius {conf.radius_px[0]}, torch threads {torch.get_num_threads()}"
    )
    print(f"{'path':<12} {'cfog ms (2 images)':>20} {'match ms':>10} {'matches':>8}")
    for path, ms_d, ms_m, n in kernel_times(args.side, args.repeat):
        print(f"{path:<12} {ms_d:>20.0f} {ms_m:>10.0f} {n:>8}")


if __name__ == "__main__":
    main()
