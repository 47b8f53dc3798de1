"""Progress bars a person can follow: rate and ETA on a terminal, a line a minute in a log."""

from __future__ import annotations

import sys


def bar(total: float | None, desc: str, unit: str = "it", initial: float = 0,
        disable: bool = False, **options):
    """A tqdm bar on stderr; redrawn every second on a terminal, once a minute when the output
    is a file (a log of a long run stays readable)."""
    from tqdm import tqdm

    interactive = sys.stderr.isatty()
    return tqdm(total=total, desc=desc, unit=unit, initial=initial, file=sys.stderr,
                disable=disable, dynamic_ncols=interactive, leave=True,
                mininterval=1.0 if interactive else 60.0, unit_scale=unit == "pairs", **options)
