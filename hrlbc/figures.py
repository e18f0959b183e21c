"""PNG figures of every stage (learning curves, results, previews): headless pyplot, titles that fit, atomic saves."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

from demos.io import atomic_write

# Characters of matplotlib's default title font (DejaVu Sans, 12 pt: ~6.9 pt a character) per inch of figure width.
_TITLE_CHARS_PER_INCH = 10.5


def pyplot() -> Any:
    """``matplotlib.pyplot`` on the Agg backend: training runs on servers without a display."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_png(fig: Any, path: Path, title: str | None = None, dpi: int = 100, tight_bbox: bool = False) -> Path:
    """Title ``fig``, lay it out, write it to ``path`` atomically and close it; return ``path``.

    A title wider than the figure is wrapped onto more lines: centred, one long line is cut at both edges
    (a master's title names its skills checkpoint by its full path). ``tight_bbox`` crops the canvas to its
    content instead of laying the axes out in the figure's size.
    """
    path = Path(path)
    if title is not None:
        chars = max(20, int(fig.get_figwidth() * _TITLE_CHARS_PER_INCH))
        fig.suptitle(textwrap.fill(title, width=chars, break_on_hyphens=False))
    if not tight_bbox:
        fig.tight_layout()
    bbox = "tight" if tight_bbox else None
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=dpi, bbox_inches=bbox))
    pyplot().close(fig)
    return path
