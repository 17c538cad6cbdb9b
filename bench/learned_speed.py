"""Time the learned descriptor against CFOG on one tile: ``python -m bench.learned_speed``.

Rows: each descriptor of one image, then a whole tile as ``local`` matches it (both images
described, templates matched on the lattice of the finest level's defaults).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

import cv2
import numpy as np
import torch

from bench.kernels import best_ms, no_sync
from models.areamatch import cfog, match_templates
from models.learned import DescriptorNet, describe, load_descriptor
from models.learned.net import Modality
from models.methods.local.config import LocalConfig

Describer = Callable[[np.ndarray, Modality], np.ndarray]


def tile_ms(tile: np.ndarray, describer: Describer, repeats: int) -> float:
    """Milliseconds to describe ``tile`` as optical and as SAR and match its templates (the
    template side, lattice step and finest search radius of ``local``'s defaults). Every
    template is matched (no structure screening), so both descriptors do the same work.

    Args:
        tile: The image (both modalities see it).
        describer: ``(image, modality) -> descriptors``.
        repeats: Timed calls.
    """
    conf = LocalConfig()
    t, step, radius = conf.template_px, conf.spacing_px, conf.radius_px[-1]
    ticks = np.arange(t // 2 + radius, tile.shape[0] - t // 2 - radius, step, dtype=float)
    cx, cy = np.meshgrid(ticks, ticks)
    centres = np.column_stack([cx.ravel(), cy.ravel()])

    def run() -> None:
        optical, sar = describer(tile, "optical"), describer(tile, "sar")
        match_templates(optical, sar, centres, t, radius, min_structure=0.0)

    return best_ms(run, repeats, no_sync)


def main() -> None:
    """Print ms per tile for CFOG and the learned descriptor (both modalities) on the CPU."""
    p = argparse.ArgumentParser(prog="python -m bench.learned_speed", description=__doc__)
    p.add_argument("--size", type=int, default=1024, help="tile side in pixels (1024)")
    p.add_argument("--repeats", type=int, default=7, help="timed calls per descriptor (7)")
    p.add_argument("--weights", default="", help="a descriptor weights file (default: untrained)")
    p.add_argument("--device", default="cpu", help="torch device for the learned one (cpu)")
    p.add_argument(
        "--threads", type=int, default=0, help="torch and OpenCV threads (default: as they are)"
    )
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
        cv2.setNumThreads(args.threads)
    rng = np.random.default_rng(0)
    # a textured tile with some no data, like a SAR tile at a scene border
    noise = rng.standard_normal((args.size, args.size)).astype(np.float32)
    tile = cv2.GaussianBlur(noise, (0, 0), 2.0) + 0.3 * noise
    tile[: args.size // 8, : args.size // 8] = np.nan
    net = load_descriptor(args.weights) if args.weights else DescriptorNet()
    print(
        f"tile {args.size}x{args.size}, torch threads {torch.get_num_threads()}, "
        f"OpenCV threads {cv2.getNumThreads()}"
    )
    ms_cfog = best_ms(lambda: cfog(tile), args.repeats, no_sync)
    print(f"cfog            {ms_cfog:7.1f} ms")
    for modality in ("optical", "sar"):
        ms = best_ms(lambda m=modality: describe(tile, m, net, args.device), args.repeats, no_sync)
        print(f"learned {modality:<7} {ms:7.1f} ms  ({ms / ms_cfog:.2f} x cfog)")
    tile_cfog = tile_ms(
        tile, lambda im, m: cfog(im, sigma=LocalConfig().descriptor_sigma_px), args.repeats
    )
    tile_learned = tile_ms(tile, lambda im, m: describe(im, m, net, args.device), args.repeats)
    print(f"tile, cfog      {tile_cfog:7.1f} ms")
    print(f"tile, learned   {tile_learned:7.1f} ms  ({tile_learned / tile_cfog:.2f} x cfog)")


if __name__ == "__main__":
    main()
