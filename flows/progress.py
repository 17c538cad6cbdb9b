"""Progress bars for the command line: one tqdm bar per named stage."""

from __future__ import annotations

import sys
from typing import TextIO

from tqdm import tqdm


class CliProgress:
    """A ``models`` progress callback ``(stage, done, total)`` drawing tqdm bars.

    A stage's bar opens at its first report, moves whenever ``done`` changes (redrawn at most
    every ``min_interval_s``), takes a grown ``total`` and closes when ``done`` reaches it; a
    stage that reports again after that, or goes back, gets a new bar.

    Args:
        enabled: Draw bars (default: when ``stream`` is a terminal).
        stream: Where the bars go (default: standard error).
        min_interval_s: Least time between two redraws of a bar.
    """

    def __init__(
        self,
        enabled: bool | None = None,
        stream: TextIO | None = None,
        min_interval_s: float = 0.1,
    ) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = self.stream.isatty() if enabled is None else enabled
        self.min_interval_s = min_interval_s
        self.bars: dict[str, tqdm] = {}

    def _bar(self, stage: str, done: int, total: int) -> tqdm:
        """The stage's open bar, or a new one when it has none or goes back."""
        bar = self.bars.get(stage)
        if bar is not None and done < bar.n:
            bar.close()
            bar = None
        if bar is None:
            bar = self.bars[stage] = tqdm(
                total=total,
                desc=stage,
                file=self.stream,
                leave=False,
                mininterval=self.min_interval_s,
                miniters=1,
            )
        return bar

    def __call__(self, stage: str, done: int, total: int) -> None:
        if not self.enabled:
            return
        bar = self._bar(stage, done, total)
        if bar.total != total:
            bar.total = total
            bar.refresh()
        bar.update(done - bar.n)
        if done >= total:
            bar.close()
            del self.bars[stage]

    def close(self) -> None:
        """Close every open bar."""
        for bar in self.bars.values():
            bar.close()
        self.bars.clear()
