"""Progress bars for the command line: one tqdm bar per named stage."""

from __future__ import annotations

import sys

from tqdm import tqdm


class CliProgress:
    """A ``models`` progress callback ``(stage, done, total)`` drawing tqdm bars on stderr."""

    def __init__(self, enabled: bool | None = None) -> None:
        self.enabled = sys.stderr.isatty() if enabled is None else enabled
        self.bars: dict[str, tqdm] = {}

    def __call__(self, stage: str, done: int, total: int) -> None:
        if not self.enabled:
            return
        bar = self.bars.get(stage)
        if bar is None:
            bar = self.bars[stage] = tqdm(
                total=total, desc=stage, file=sys.stderr, leave=False, unit_scale=True
            )
        bar.total = total
        bar.n = done
        bar.refresh()
        if done >= total:
            bar.close()

    def close(self) -> None:
        for bar in self.bars.values():
            bar.close()
