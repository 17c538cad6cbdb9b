"""Progress of long stages: the callback ``(stage, done, total)`` and counters that feed it."""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from core.grid import Grid

# called as (stage, done, total)
Progress = Callable[[str, int, int], None]
# the stage counting a whole run's phases (a method's passes, then the pipeline's writes)
OVERALL = "overall"


def no_progress(stage: str, done: int, total: int) -> None:
    """Default progress sink."""


class Steps:
    """One stage's progress counted in steps: ``(stage, 0, total)`` when it starts, then every
    change; ``done`` never decreases nor passes ``total``, and ``total`` only grows.

    Args:
        progress: The callback.
        stage: The stage's name (a bar label).
        total: The steps known when the stage starts.
    """

    def __init__(self, progress: Progress, stage: str, total: int) -> None:
        self.progress = progress
        self.stage = stage
        self.total = max(int(total), 0)
        self.done = 0
        progress(stage, 0, self.total)

    def advance_to(self, done: int) -> None:
        """Report ``done`` steps (kept within what was reported before and ``total``)."""
        done = min(max(int(done), self.done), self.total)
        if done != self.done:
            self.done = done
            self.progress(self.stage, done, self.total)

    def step(self, n: int = 1) -> None:
        """Report ``n`` more steps done."""
        self.advance_to(self.done + n)

    def grow(self, n: int = 1) -> None:
        """Add ``n`` steps to the stage (work found while it runs)."""
        if n > 0:
            self.total += n
            self.progress(self.stage, self.done, self.total)

    def finish(self) -> None:
        """Report the stage done."""
        self.advance_to(self.total)

    @contextmanager
    def part(self, n: int) -> Iterator[Steps]:
        """The next ``n`` steps as one part: however many of them the body reports, the stage
        stands at their end afterwards (a part that ends early skips the rest)."""
        end = self.done + n
        try:
            yield self
        finally:
            self.advance_to(end)


def ignore_steps() -> Steps:
    """A counter that reports nowhere (for callers without a stage)."""
    return Steps(no_progress, "", 0)


class Phases:
    """The ``overall`` stage of a pipeline: an inner run's own ``overall`` steps (a method's
    phases, one step when it reports none), then the pipeline's phases after it.

    Used as the inner run's callback: its other stages pass through, and each stage named in
    ``after`` counts one phase when it reports its end.

    Args:
        progress: The pipeline's callback.
        after: Stages that follow the inner run, one phase each.
    """

    def __init__(self, progress: Progress, after: Collection[str]) -> None:
        self.progress = progress
        self.after = set(after)
        self.inner = (0, 1)
        self.extra = 0
        self._reported: tuple[int, int] | None = None
        self._report()

    def __call__(self, stage: str, done: int, total: int) -> None:
        if stage == OVERALL:
            self.inner = (done, max(total, 1))
            self._report()
            return
        self.progress(stage, done, total)
        if stage in self.after and done >= total:
            self.after.discard(stage)
            self.inner = (self.inner[1], self.inner[1])
            self.extra += 1
            self._report()

    def inner_done(self) -> None:
        """The inner run ended: its phases count as done."""
        self.inner = (self.inner[1], self.inner[1])
        self._report()

    def _report(self) -> None:
        done, total = self.inner
        now = (done + self.extra, total + self.extra + len(self.after))
        if now != self._reported:
            self._reported = now
            self.progress(OVERALL, *now)


def block_count(grid: Grid, block: int) -> int:
    """Blocks of ``block`` pixels a side that cover ``grid``."""
    return math.ceil(grid.width / block) * math.ceil(grid.height / block)


@contextmanager
def block_steps(
    progress: Progress, stage: str, grid: Grid, block: int
) -> Iterator[Callable[[int], None]]:
    """The stage of a block-by-block COG write (:func:`models.cog.write_cog`): one step per
    block written (the callback this yields, called with each block's pixels), one for the
    conversion to a COG, reported when the body ends without an error."""
    steps = Steps(progress, stage, block_count(grid, block) + 1)
    yield lambda pixels: steps.step()
    steps.finish()
