"""Progress bar on stderr for runs on a distributed scheduler."""

from __future__ import annotations

import contextlib
import sys

from distributed.diagnostics.progressbar import TextProgressBar
from dask.utils import format_time


class StderrProgressBar(TextProgressBar):
    """distributed's console progress bar, drawn on stderr instead of stdout.

    It follows every task of the graph behind the futures, on the scheduler,
    and blocks until they are all done or one fails.  The drawing hooks are
    those of distributed 2024.8 to 2026.8.
    """

    def _draw_bar(self, remaining, all, **kwargs):
        fraction = (1 - remaining / all) if all else 1.0
        bar = "#" * int(self.width * fraction)
        line = f"\r[{bar:<{self.width}}] | {int(100 * fraction)}% Completed | {format_time(self.elapsed)}"
        with contextlib.suppress(ValueError):
            sys.stderr.write(line)
            sys.stderr.flush()

    def _draw_stop(self, **kwargs):
        with contextlib.suppress(ValueError):
            sys.stderr.write("\r\n")
            sys.stderr.flush()
