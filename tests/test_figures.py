"""hrlbc.figures: every stage's PNGs are written whole, with titles inside the figure."""

from __future__ import annotations

import imageio.v3 as iio
from matplotlib.backends.backend_agg import FigureCanvasAgg

from hrlbc.figures import pyplot, save_png

# A master's title names its skills checkpoint by full path: wider than a 6-inch figure on one line.
TITLE = "UR5-Breakfast master (" + "/a/long/run/folder" * 5 + "/skills/best.pt, obs=depth, recent_skills=3)"


def _title_box(fig):
    """(left, right) pixel edges of the figure's title and the figure's width, as drawn by Agg."""
    canvas = FigureCanvasAgg(fig)  # a closed figure has lost its pyplot canvas
    canvas.draw()
    box = fig._suptitle.get_window_extent(canvas.get_renderer())
    return box.x0, box.x1, fig.bbox.width


def test_save_png_wraps_a_title_wider_than_the_figure(tmp_path):
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 3))
    ax.plot([0, 1], [0, 1])
    fig.suptitle(TITLE)
    x0, x1, width = _title_box(fig)
    assert x0 < 0 and x1 > width  # unwrapped, the centred title is cut at both edges
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(6, 3))
    ax.plot([0, 1], [0, 1])
    path = save_png(fig, tmp_path / "curve.png", TITLE)
    assert path == tmp_path / "curve.png"
    assert "\n" in fig.get_suptitle()
    assert "".join(fig.get_suptitle().split()) == "".join(TITLE.split())
    x0, x1, width = _title_box(fig)
    assert 0 <= x0 and x1 <= width
    image = iio.imread(path)
    assert image.shape[:2] == (300, 600)  # 6 x 3 inches at 100 dpi
    assert list(tmp_path.iterdir()) == [path]  # written atomically: no temporary file left


def test_save_png_keeps_a_short_title_on_one_line(tmp_path):
    fig, ax = pyplot().subplots(figsize=(6, 3))
    save_png(fig, tmp_path / "r.png", "UR5-Bowl, held-out seeds", dpi=50)
    assert fig.get_suptitle() == "UR5-Bowl, held-out seeds"
    assert iio.imread(tmp_path / "r.png").shape[:2] == (150, 300)
