"""Bar charts as inline SVG geometry, one row per group and one bar per series. Pure.

The template draws what `bar_chart` measures (rects and text at the given coordinates);
colours come from the stylesheet by series index, so there is no inline style.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

LABEL_WIDTH = 140
PLOT_WIDTH = 300
VALUE_WIDTH = 90
BAR_HEIGHT = 14
BAR_GAP = 3
ROW_GAP = 10
TOP = 8


@dataclass(frozen=True)
class Bar:
    series: int
    x: float
    y: float
    width: float
    height: float
    text: str  # the value, written after the bar
    text_x: float
    text_y: float


@dataclass(frozen=True)
class Row:
    label: str
    label_y: float
    bars: list[Bar]


@dataclass(frozen=True)
class Chart:
    title: str
    series: list[str]
    rows: list[Row]
    width: int
    height: int
    label_x: int = LABEL_WIDTH - 6

    @property
    def empty(self) -> bool:
        return not self.rows


def bar_chart(
    title: str,
    groups: Sequence[tuple[str, Sequence[float | None]]],
    *,
    series: Sequence[str],
    fmt: Callable[[float | None], str],
    max_value: float | None = None,
) -> Chart:
    """`groups`: (label, one value per series); None draws no bar and writes "–".
    Bars scale to `max_value`, or to the largest value present."""
    values = [v for _, vs in groups for v in vs if v is not None and math.isfinite(v)]
    top = max_value if max_value is not None else max(values, default=0.0)
    scale = PLOT_WIDTH / top if top > 0 else 0.0
    rows: list[Row] = []
    y = float(TOP)
    per_row = len(series) * BAR_HEIGHT + (len(series) - 1) * BAR_GAP
    for label, vs in groups:
        bars = []
        for i, value in enumerate(vs):
            by = y + i * (BAR_HEIGHT + BAR_GAP)
            width = max(0.0, min(PLOT_WIDTH, (value or 0.0) * scale)) if value is not None and math.isfinite(value) else 0.0
            if value is not None and value > 0 and width < 1:
                width = 1.0  # something, however small, is not nothing
            bars.append(Bar(i, LABEL_WIDTH, by, round(width, 1), BAR_HEIGHT, fmt(value), round(LABEL_WIDTH + width + 4, 1), by + BAR_HEIGHT - 3))
        rows.append(Row(label, y + per_row / 2 + 4, bars))
        y += per_row + ROW_GAP
    return Chart(title=title, series=list(series), rows=rows, width=LABEL_WIDTH + PLOT_WIDTH + VALUE_WIDTH, height=int(y - ROW_GAP + TOP) if rows else 0)
