"""Progress bars that read well on a terminal and in a log file.

On a terminal: tqdm as usual (one line redrawn in place). Redirected to a file (``nohup``, CI, ``> log``):
one full line every ``LOG_INTERVAL_S`` seconds and at the end, instead of thousands of carriage-return
redraws glued into one very long line.
"""

from __future__ import annotations

import os
import sys
from typing import Any, TextIO

from tqdm import tqdm

LOG_INTERVAL_S = float(os.environ.get("HRLBC_LOG_INTERVAL", "10"))


class _Lines:
    """A text stream that turns tqdm's carriage-return redraws into whole lines."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.last = ""

    def write(self, text: str) -> int:
        for line in text.replace("\r", "\n").split("\n"):
            line = line.rstrip()
            if line and line != self.last:  # tqdm's close() repeats the final state
                self.stream.write(line + "\n")
                self.last = line
        return len(text)

    def flush(self) -> None:
        self.stream.flush()


def progress_bar(stream: TextIO | None = None, **kwargs: Any) -> tqdm:
    """``tqdm(**kwargs)`` writing to ``stream`` (default stderr): redrawn on a terminal, a line at a time in a log."""
    stream = stream if stream is not None else sys.stderr
    if hasattr(stream, "isatty") and stream.isatty():
        return tqdm(file=stream, dynamic_ncols=True, **kwargs)
    # Fixed width and ASCII: a log line should not depend on the terminal that is not there.
    lines = _Lines(stream)
    return tqdm(file=lines, mininterval=LOG_INTERVAL_S, maxinterval=LOG_INTERVAL_S, ncols=100, ascii=True, **kwargs)
