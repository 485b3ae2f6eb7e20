"""The one figure style of the book: sized for a paper column, colour-blind-safe, PNG + PDF.

Figures are drawn at their printed size (``COLUMN`` = 3.5 in, one column of a two-column paper;
``PAGE`` = 7.2 in) with 8-point text, so they stay readable when dropped into a paper unscaled.
Colours are the Okabe-Ito palette (distinguishable under the common colour-vision deficiencies);
series also differ by marker. :func:`save` writes ``NAME.png`` (300 dpi) and ``NAME.pdf`` (vector,
no creation date: the same data give the same bytes) into the figure folder of the settings.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib
import matplotlib.pyplot as plt

COLUMN = 3.5
PAGE = 7.2
OKABE_ITO = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000")
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
TARGET_COLOUR = "#BBBBBB"     # shaded target ranges of the design
RC = {
    "font.size": 8, "axes.titlesize": 8, "axes.labelsize": 8, "xtick.labelsize": 7, "ytick.labelsize": 7,
    "legend.fontsize": 7, "legend.frameon": False, "axes.spines.top": False, "axes.spines.right": False,
    "axes.grid": True, "grid.color": "#E5E5E5", "grid.linewidth": 0.5, "lines.linewidth": 1.2,
    "lines.markersize": 4, "figure.dpi": 110, "savefig.dpi": 300, "savefig.bbox": "tight",
    "pdf.fonttype": 42, "svg.hashsalt": "cxrbench", "axes.prop_cycle": matplotlib.cycler(color=OKABE_ITO),
}


def apply() -> None:
    """Set the style for every figure drawn after it."""
    plt.rcParams.update(RC)


def colour(i: int) -> str:
    return OKABE_ITO[i % len(OKABE_ITO)]


def marker(i: int) -> str:
    return MARKERS[i % len(MARKERS)]


def figure(width: float = COLUMN, height: float | None = None, **kwargs):
    """A new figure at print size (height: 0.75 of the width unless given)."""
    apply()
    return plt.subplots(figsize=(width, height or width * 0.75), **kwargs)


def save(fig, name: str, folder: Path) -> list[Path]:
    """Write the figure as PNG and PDF into ``folder``; returns the two paths."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    out = [folder / f"{name}.png", folder / f"{name}.pdf"]
    fig.savefig(out[0], metadata={"Software": None})
    fig.savefig(out[1], metadata={"CreationDate": None, "Producer": None, "Creator": None})
    return out
