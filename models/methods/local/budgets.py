"""Cost budgets of ``local``'s content-dependent passes: repeats and the verification sample."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from models.methods.base import RegistrationResult
from models.methods.local.context import LocalRun
from models.methods.local.schedule import level_layout


@dataclass(frozen=True)
class BudgetHit:
    """A budget that bounded a stage (the result's ``details["budgets"]`` entries)."""

    stage: str  # the stage it bounded, e.g. ``level3 repeat`` or ``verify``
    budget: str  # the setting and its value, e.g. ``repeat_budget=1.5``
    reason: str  # what the stage would have cost, and what it did instead


def record_budget(result: RegistrationResult, hit: BudgetHit) -> None:
    """Add ``hit`` to the result's ``details["budgets"]``.

    A hit is not a warning: the budgets bound passes by design (the default repeat budget
    leaves out the optical-level repeat on every pair with an optical pixel finer than the
    SAR's), and the stage they bound still returns a checked field.

    Args:
        result: The run's result.
        hit: The budget that bounded a stage.
    """
    result.details.setdefault("budgets", []).append(asdict(hit))


def scenes(run: LocalRun, res: float) -> float:
    """Pixels a pass at working pixel ``res`` matches, in scenes (the overlap at the native
    pixel)."""
    return (run.pair.native_resolution() / res) ** 2


def repeat_fits(run: LocalRun, level: int, res: float) -> bool:
    """Whether one more repeat of a pass at ``res`` fits ``repeat_budget`` (the scenes of pixels
    all repeat passes of the run may match); records the budget hit when not.

    Args:
        run: The run (its result's ``details["levels"]`` holds the repeats so far).
        level: The pass's index.
        res: The pass's working pixel, metres.
    """
    spent = sum(
        scenes(run, info["resolution_m"])
        for info in run.result.details.get("levels", [])
        if "repeat" in info
    )
    cost = scenes(run, res)
    budget = run.conf.repeat_budget
    if spent + cost <= budget + 1e-9:
        return True
    record_budget(
        run.result,
        BudgetHit(
            f"level{level} repeat",
            f"repeat_budget={budget:g}",
            f"a repeat at {res:.2f} m would match {cost:.2f} scenes of pixels with {spent:.2f} "
            "spent on repeats; the level's field was kept without it",
        ),
    )
    return False


def verify_tiles(run: LocalRun, res: float, cap: int = 0) -> int:
    """How many tiles a verification at ``res`` may sample (0: all) under
    ``verify_max_templates``, and at most ``cap`` (0: no cap of its own); records the budget
    hit when the budget leaves out tiles the cap would have kept.

    Tiles hold ``(tile_px / spacing_px)²`` templates each and are drawn evenly over the overlap.

    Args:
        run: The run.
        res: The verification's working pixel, metres.
        cap: The check's own largest sample, tiles (0: none).
    """
    conf = run.conf
    layout = level_layout(run.pair, conf, res, 0)
    tiles = math.ceil(layout.grid.width / conf.tile_px) * math.ceil(
        layout.grid.height / conf.tile_px
    )
    wanted = min(tiles, cap) if cap else tiles
    per_tile = max(1, min(conf.tile_px, layout.grid.width) // layout.spacing) * max(
        1, min(conf.tile_px, layout.grid.height) // layout.spacing
    )
    allowed = max(1, conf.verify_max_templates // per_tile)
    if not conf.verify_max_templates or allowed >= wanted:
        return cap
    record_budget(
        run.result,
        BudgetHit(
            "verify",
            f"verify_max_templates={conf.verify_max_templates}",
            f"{wanted} tiles of about {per_tile} templates at {res:.2f} m; "
            f"{allowed} drawn evenly over the overlap",
        ),
    )
    return allowed


__all__ = ["BudgetHit", "record_budget", "repeat_fits", "scenes", "verify_tiles"]
