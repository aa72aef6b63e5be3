"""Server-side SVG charts for the dashboard: numbers in, escaped inline SVG out (no Django models).

Every chart is plain markup that reads without JavaScript: ``role="img"`` with an
``aria-label`` saying what it shows, a ``<title>`` on the chart and on every mark (a
browser shows it on hover), and the same numbers in a table beside it (the templates).
Text is never concatenated into markup: each piece goes through ``format_html`` or
``format_html_join``, which escape their arguments, and only their SafeString results
are composed. Colours come from classes (``dash-c0`` ...) styled in app.css, because
the Content-Security-Policy forbids ``style`` attributes; presentation attributes
(``fill``, ``stroke``, ``x``, ``width``) are not styles and are allowed.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

WIDTH = 760
LABEL_WIDTH = 190  # left gutter for row labels
RIGHT = 28
ROW_HEIGHT = 22
PANEL_TITLE = 22
PANEL_GAP = 10
AXIS_HEIGHT = 44
TOP = 6
MAX_LABEL_CHARS = 26
SERIES_COUNT = 8  # dash-c0 .. dash-c7 in app.css; more series reuse the colours
EMPTY = SafeString("")


def _n(value: float) -> str:
    """A coordinate: one decimal is finer than a pixel and keeps the markup small."""
    return f"{value:.1f}"


def _short(text: str, limit: int = MAX_LABEL_CHARS) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def series_class(index: int) -> str:
    return f"dash-c{index % SERIES_COUNT}"


def _join(parts: Sequence[SafeString]) -> SafeString:
    return format_html_join("", "{}", ((part,) for part in parts))


# --- Scales ----------------------------------------------------------------------------


@dataclass(frozen=True)
class LinearScale:
    """Maps [low, high] linearly onto [start, end] (pixels; end < start for a y axis)."""

    low: float
    high: float
    start: float
    end: float

    def __call__(self, value: float) -> float:
        if self.high == self.low:
            return (self.start + self.end) / 2
        share = (value - self.low) / (self.high - self.low)
        return self.start + min(max(share, 0.0), 1.0) * (self.end - self.start)


@dataclass(frozen=True)
class LogScale:
    """Maps [low, high] (both > 0) onto [start, end] by log10; values outside are clamped."""

    low: float
    high: float
    start: float
    end: float

    def __post_init__(self) -> None:
        if self.low <= 0 or self.high <= 0:
            raise ValueError("a log scale needs a positive domain")

    def __call__(self, value: float) -> float:
        value = min(max(value, self.low), self.high)
        span = math.log10(self.high) - math.log10(self.low)
        if span == 0:
            return (self.start + self.end) / 2
        share = (math.log10(value) - math.log10(self.low)) / span
        return self.start + share * (self.end - self.start)


def nice_step(span: float, count: int) -> float:
    """A 1, 2 or 5 times a power of ten step giving about ``count`` intervals over ``span``."""
    if span <= 0:
        return 1.0
    raw = span / max(count, 1)
    magnitude = 10 ** math.floor(math.log10(raw))
    for multiple in (1, 2, 5, 10):
        if raw <= multiple * magnitude:
            return multiple * magnitude
    return 10 * magnitude  # pragma: no cover (the loop always returns)


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round tick values covering [low, high], e.g. (0, 1) -> 0, 0.2, ..., 1."""
    step = nice_step(high - low, count)
    first = math.ceil(low / step - 1e-9) * step
    ticks = []
    value = first
    while value <= high + step * 1e-9:
        ticks.append(round(value, 10) + 0.0)  # + 0.0 turns -0.0 into 0.0
        value += step
    return ticks


def nice_domain(low: float, high: float, count: int = 5) -> tuple[float, float]:
    """[low, high] widened outward to round ticks."""
    step = nice_step(high - low, count)
    return math.floor(low / step + 1e-9) * step, math.ceil(high / step - 1e-9) * step


def log_ticks(low: float, high: float) -> list[float]:
    """1, 2, 5 times each power of ten within [low, high]."""
    ticks = []
    for exponent in range(math.floor(math.log10(low)), math.ceil(math.log10(high)) + 1):
        for multiple in (1, 2, 5):
            value = multiple * 10.0**exponent
            if low * (1 - 1e-9) <= value <= high * (1 + 1e-9):
                ticks.append(value)
    return ticks


def log_domain(values: Sequence[float], minimum: float = 0.5) -> tuple[float, float]:
    """Powers-of-ten-ish bounds around positive values (1-2-5 steps), at least ``minimum``."""
    positive = [v for v in values if v is not None and v > 0] or [minimum, 10 * minimum]
    low, high = max(min(positive), minimum), max(max(positive), minimum * 2)

    def down(value: float) -> float:
        base = 10.0 ** math.floor(math.log10(value))
        return max(m * base for m in (1, 2, 5) if m * base <= value * (1 + 1e-9))

    def up(value: float) -> float:
        base = 10.0 ** math.floor(math.log10(value))
        return min(m * base for m in (1, 2, 5, 10) if m * base >= value * (1 - 1e-9))

    return down(low), up(high)


# --- Shared pieces ---------------------------------------------------------------------


def _svg(chart_id: str, width: float, height: float, aria_label: str, body: SafeString) -> SafeString:
    return format_html(
        '<svg class="dash-chart" id="{}" role="img" aria-label="{}" viewBox="0 0 {} {}" width="{}" height="{}"'
        ' xmlns="http://www.w3.org/2000/svg"><title>{}</title>{}</svg>',
        chart_id,
        aria_label,
        _n(width),
        _n(height),
        _n(width),
        _n(height),
        aria_label,
        body,
    )


def _x_axis(
    scale: Callable[[float], float],
    ticks: Sequence[float],
    tick_label: Callable[[float], str],
    top: float,
    bottom: float,
    title: str,
    left: float,
    right: float,
) -> SafeString:
    """Grid lines from ``top`` to ``bottom`` at each tick, labels and a title below."""
    grid = format_html_join(
        "",
        '<line class="dash-grid" x1="{}" x2="{}" y1="{}" y2="{}"/>'
        '<text class="dash-tick" x="{}" y="{}" text-anchor="middle">{}</text>',
        (
            (_n(scale(t)), _n(scale(t)), _n(top), _n(bottom), _n(scale(t)), _n(bottom + 14), tick_label(t))
            for t in ticks
        ),
    )
    return format_html(
        '<g class="dash-axis">{}<line class="dash-axis-line" x1="{}" x2="{}" y1="{}" y2="{}"/>'
        '<text class="dash-axis-title" x="{}" y="{}" text-anchor="middle">{}</text></g>',
        grid,
        _n(left),
        _n(right),
        _n(bottom),
        _n(bottom),
        _n((left + right) / 2),
        _n(bottom + 32),
        title,
    )


def _y_axis(
    scale: Callable[[float], float],
    ticks: Sequence[float],
    tick_label: Callable[[float], str],
    left: float,
    right: float,
    title: str,
    top: float,
    bottom: float,
) -> SafeString:
    grid = format_html_join(
        "",
        '<line class="dash-grid" x1="{}" x2="{}" y1="{}" y2="{}"/>'
        '<text class="dash-tick" x="{}" y="{}" text-anchor="end">{}</text>',
        (
            (_n(left), _n(right), _n(scale(t)), _n(scale(t)), _n(left - 6), _n(scale(t) + 4), tick_label(t))
            for t in ticks
        ),
    )
    middle = (top + bottom) / 2
    return format_html(
        '<g class="dash-axis">{}<line class="dash-axis-line" x1="{}" x2="{}" y1="{}" y2="{}"/>'
        '<text class="dash-axis-title" x="{}" y="{}" text-anchor="middle" transform="rotate(-90 {} {})">{}</text></g>',
        grid,
        _n(left),
        _n(left),
        _n(top),
        _n(bottom),
        _n(14),
        _n(middle),
        _n(14),
        _n(middle),
        title,
    )


@dataclass(frozen=True)
class LegendEntry:
    label: str
    css: str  # a series class, or another dash- class the stylesheet knows
    shape: str = "circle"  # circle | ring | diamond | line | dash


LEGEND_LINE = 18
CHAR_WIDTH = 6.8  # average width of a 12px system-ui character, for laying out legends


def _legend_width(entry: LegendEntry) -> float:
    return 36 + CHAR_WIDTH * len(entry.label)


def legend_lines(entries: Sequence[LegendEntry], left: float, right: float) -> int:
    """How many lines a legend wraps onto between ``left`` and ``right``."""
    lines, x = 1, left
    for entry in entries:
        if x > left and x + _legend_width(entry) > right:
            lines, x = lines + 1, left
        x += _legend_width(entry)
    return lines


def _legend(entries: Sequence[LegendEntry], left: float, y: float, right: float = WIDTH - RIGHT) -> SafeString:
    """Swatches and labels in a row from (left, y), wrapping before ``right``."""
    parts = []
    x = left
    for entry in entries:
        if x > left and x + _legend_width(entry) > right:
            x, y = left, y + LEGEND_LINE
        if entry.shape == "ring":
            mark = format_html('<circle class="dash-ring" cx="{}" cy="{}" r="6"/>', _n(x + 6), _n(y - 4))
        elif entry.shape == "diamond":
            mark = format_html('<path class="dash-probe" d="{}"/>', _diamond(x + 6, y - 4, 6))
        elif entry.shape in ("line", "dash"):
            mark = format_html(
                '<line class="{}" x1="{}" x2="{}" y1="{}" y2="{}"/>', entry.css, _n(x), _n(x + 14), _n(y - 4), _n(y - 4)
            )
        else:
            mark = format_html('<circle class="{}" cx="{}" cy="{}" r="5"/>', entry.css, _n(x + 6), _n(y - 4))
        parts.append(
            format_html(
                '<g class="dash-legend-item">{}<text x="{}" y="{}">{}</text></g>', mark, _n(x + 18), _n(y), entry.label
            )
        )
        x += _legend_width(entry)
    return format_html('<g class="dash-legend">{}</g>', _join(parts))


def _diamond(cx: float, cy: float, r: float) -> str:
    return f"M{_n(cx)} {_n(cy - r)}L{_n(cx + r)} {_n(cy)}L{_n(cx)} {_n(cy + r)}L{_n(cx - r)} {_n(cy)}Z"


# --- Dot and whisker -------------------------------------------------------------------


@dataclass(frozen=True)
class Estimate:
    """One row of a dot-and-whisker panel: a point with its interval."""

    label: str
    value: float | None
    low: float | None
    high: float | None
    note: str  # the <title> of the mark: the numbers in words
    series: int = 0
    # Why a value has no interval ("too few reviewers (2) for an interval"), written beside the
    # dot so that a dot alone never reads as an interval of no width.
    reason: str = ""


@dataclass(frozen=True)
class Panel:
    title: str
    rows: Sequence[Estimate]
    reference: float | None = None  # a dashed vertical line, e.g. the control arm's rate
    reference_label: str = ""


def dot_whisker_height(panels: Sequence[Panel]) -> float:
    rows = sum(len(p.rows) for p in panels)
    return TOP + len(panels) * (PANEL_TITLE + PANEL_GAP) + rows * ROW_HEIGHT + AXIS_HEIGHT


def dot_whisker(
    panels: Sequence[Panel],
    *,
    domain: tuple[float, float],
    ticks: Sequence[float],
    tick_label: Callable[[float], str],
    axis_title: str,
    aria_label: str,
    chart_id: str,
    width: float = WIDTH,
) -> SafeString:
    """Panels of rows; each row a point and its interval on a shared horizontal axis."""
    scale = LinearScale(domain[0], domain[1], LABEL_WIDTH, width - RIGHT)
    height = dot_whisker_height(panels)
    plot_bottom = height - AXIS_HEIGHT
    parts = [_x_axis(scale, ticks, tick_label, TOP, plot_bottom, axis_title, LABEL_WIDTH, width - RIGHT)]
    y = TOP
    for panel in panels:
        parts.append(
            format_html('<text class="dash-panel-title" x="{}" y="{}">{}</text>', _n(8), _n(y + 15), panel.title)
        )
        y += PANEL_TITLE
        panel_top = y
        for row in panel.rows:
            parts.append(_estimate_row(row, scale, y + ROW_HEIGHT / 2))
            y += ROW_HEIGHT
        if panel.reference is not None:
            x = scale(panel.reference)
            # The label goes right of the line, or left of it near the right edge.
            near_edge = x > width - RIGHT - 160
            parts.append(
                format_html(
                    '<g class="dash-reference"><title>{}</title><line x1="{}" x2="{}" y1="{}" y2="{}"/>'
                    '<text x="{}" y="{}" text-anchor="{}">{}</text></g>',
                    panel.reference_label,
                    _n(x),
                    _n(x),
                    _n(panel_top - 4),
                    _n(y),
                    _n(x - 4 if near_edge else x + 4),
                    _n(panel_top - 6),
                    "end" if near_edge else "start",
                    _short(panel.reference_label, 40),
                )
            )
        y += PANEL_GAP
    return _svg(chart_id, width, height, aria_label, _join(parts))


def _estimate_row(row: Estimate, scale: LinearScale, cy: float) -> SafeString:
    label = format_html(
        '<text class="dash-row-label" x="{}" y="{}" text-anchor="end">{}<title>{}</title></text>',
        _n(LABEL_WIDTH - 10),
        _n(cy + 4),
        _short(row.label),
        row.label,
    )
    if row.value is None:
        mark = format_html(
            '<text class="dash-missing" x="{}" y="{}">no data<title>{}</title></text>',
            _n(LABEL_WIDTH + 6),
            _n(cy + 4),
            row.note,
        )
        return format_html("{}{}", label, mark)
    whisker = EMPTY
    if row.low is not None and row.high is not None:
        x1, x2 = scale(row.low), scale(row.high)
        whisker = format_html(
            '<line class="dash-whisker" x1="{}" x2="{}" y1="{}" y2="{}"/>'
            '<line class="dash-whisker" x1="{}" x2="{}" y1="{}" y2="{}"/>'
            '<line class="dash-whisker" x1="{}" x2="{}" y1="{}" y2="{}"/>',
            _n(x1),
            _n(x2),
            _n(cy),
            _n(cy),
            _n(x1),
            _n(x1),
            _n(cy - 5),
            _n(cy + 5),
            _n(x2),
            _n(x2),
            _n(cy - 5),
            _n(cy + 5),
        )
    reason = EMPTY
    if whisker is EMPTY and row.reason:
        # Outside the mark's group, so it reads as muted text, not in the series' colour.
        x = scale(row.value)
        right = x <= (scale.start + scale.end) / 2  # the text on the side with room
        reason = format_html(
            '<text class="dash-reason" x="{}" y="{}" text-anchor="{}">{}</text>',
            _n(x + 9 if right else x - 9),
            _n(cy + 4),
            "start" if right else "end",
            row.reason,
        )
    return format_html(
        '{}<g class="dash-mark {}"><title>{}</title>{}<circle cx="{}" cy="{}" r="5"/></g>{}',
        label,
        series_class(row.series),
        row.note,
        whisker,
        _n(scale(row.value)),
        _n(cy),
        reason,
    )


# --- Scatter ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ScatterPoint:
    x: float
    y: float
    note: str
    series: int = 0
    flagged: bool = False
    href: str = ""


def scatter(
    points: Sequence[ScatterPoint],
    *,
    x_domain: tuple[float, float],
    y_domain: tuple[float, float],
    x_ticks: Sequence[float],
    y_ticks: Sequence[float],
    x_label: Callable[[float], str],
    y_label: Callable[[float], str],
    x_title: str,
    y_title: str,
    legend: Sequence[LegendEntry],
    aria_label: str,
    chart_id: str,
    x_log: bool = True,
    width: float = WIDTH,
    height: float = 380,
) -> SafeString:
    """Points on x and y axes; flagged points get a ring; a point with ``href`` is a link."""
    left, right = 64, width - RIGHT
    extra = (legend_lines(legend, left, right) - 1) * LEGEND_LINE
    height += extra
    top, bottom = 30 + extra, height - 48
    x_scale = (LogScale if x_log else LinearScale)(x_domain[0], x_domain[1], left, right)
    y_scale = LinearScale(y_domain[0], y_domain[1], bottom, top)
    parts = [
        _x_axis(x_scale, x_ticks, x_label, top, bottom, x_title, left, right),
        _y_axis(y_scale, y_ticks, y_label, left, right, y_title, top, bottom),
        _legend(legend, left, 16, right),
    ]
    # Flagged last, so their rings are drawn on top.
    for point in sorted(points, key=lambda p: p.flagged):
        cx, cy = x_scale(point.x), y_scale(point.y)
        ring = format_html('<circle class="dash-ring" cx="{}" cy="{}" r="9"/>', _n(cx), _n(cy)) if point.flagged else ""
        mark = format_html(
            '<g class="dash-mark {}"><title>{}</title><circle cx="{}" cy="{}" r="5"/>{}</g>',
            series_class(point.series),
            point.note,
            _n(cx),
            _n(cy),
            ring,
        )
        parts.append(format_html('<a href="{}">{}</a>', point.href, mark) if point.href else mark)
    return _svg(chart_id, width, height, aria_label, _join(parts))


# --- Reviewer timeline -----------------------------------------------------------------


@dataclass(frozen=True)
class TimelinePoint:
    seq: int  # 1-based position in the reviewer's submit order
    seconds: float | None  # shown -> submitted
    floor: float | None  # reading floor of the item
    agree: bool | None  # with the AI's recommendation; None when it has none
    probe: bool
    note: str


TIMELINE_MIN_SECONDS = 0.5


def timeline(
    points: Sequence[TimelinePoint],
    *,
    seq_domain: tuple[int, int],
    aria_label: str,
    chart_id: str,
    ai_hidden: bool = False,
    width: float = WIDTH,
) -> SafeString:
    """Seconds to decide (log scale) per label in submit order, the reading floor as a grey
    step line under the points; agree / disagree by colour, probes as diamonds.
    ``ai_hidden``: the reviewer never saw the recommendation (control arm); the colours
    then say agreement with the hidden one."""
    legend = [
        LegendEntry("agrees with the hidden AI" if ai_hidden else "agrees with the AI", "dash-agree"),
        LegendEntry("disagrees", "dash-disagree"),
        LegendEntry("AI gave none", "dash-neutral"),
        LegendEntry("probe (planted error)", "dash-probe", "diamond"),
        LegendEntry("reading floor", "dash-floor", "line"),
    ]
    left, right = 64, width - RIGHT
    extra = (legend_lines(legend, left, right) - 1) * LEGEND_LINE
    height = 300 + extra
    top, bottom = 30 + extra, height - 48
    timed = [p.seconds for p in points if p.seconds is not None] + [p.floor for p in points if p.floor]
    y_low, y_high = log_domain(timed, TIMELINE_MIN_SECONDS)
    x_scale = LinearScale(seq_domain[0] - 0.5, seq_domain[1] + 0.5, left, right)
    y_scale = LogScale(y_low, y_high, bottom, top)
    parts = [
        _x_axis(
            x_scale,
            [t for t in nice_ticks(seq_domain[0], seq_domain[1], 8) if t == int(t)],
            lambda t: f"{t:.0f}",
            top,
            bottom,
            "Label, in submit order",
            left,
            right,
        ),
        _y_axis(y_scale, log_ticks(y_low, y_high), _seconds_label, left, right, "Seconds to decide", top, bottom),
        _legend(legend, left, 16, right),
    ]
    step = (right - left) / max(1, seq_domain[1] - seq_domain[0] + 1)
    floor_path = []
    for point in points:
        if point.floor:
            x, y = x_scale(point.seq), y_scale(point.floor)
            floor_path.append(f"M{_n(x - step / 2)} {_n(y)}H{_n(x + step / 2)}")
    if floor_path:
        parts.append(
            format_html(
                '<path class="dash-floor" d="{}"><title>Reading floor per item</title></path>', "".join(floor_path)
            )
        )
    for point in points:
        if point.seconds is None:
            continue
        css = "dash-neutral" if point.agree is None else ("dash-agree" if point.agree else "dash-disagree")
        cx, cy = x_scale(point.seq), y_scale(max(point.seconds, y_low))
        shape = (
            format_html('<path d="{}"/>', _diamond(cx, cy, 6))
            if point.probe
            else format_html('<circle cx="{}" cy="{}" r="3.5"/>', _n(cx), _n(cy))
        )
        probe = " dash-is-probe" if point.probe else ""
        parts.append(format_html('<g class="dash-mark {}{}"><title>{}</title>{}</g>', css, probe, point.note, shape))
    return _svg(chart_id, width, height, aria_label, _join(parts))


def _seconds_label(value: float) -> str:
    return f"{value:g} s"


def running_rate(
    cumulative: Sequence[tuple[int, float]],
    rolling: Sequence[tuple[int, float]],
    *,
    seq_domain: tuple[int, int],
    reference: float | None,
    reference_label: str,
    window: int,
    aria_label: str,
    chart_id: str,
    width: float = WIDTH,
) -> SafeString:
    """Agreement with the AI so far (solid) and over the last ``window`` labels (thin), in
    submit order, against a dashed reference (the reviewer's arm)."""
    legend = [
        LegendEntry("so far", "dash-line-cumulative", "line"),
        LegendEntry(f"last {window}", "dash-line-rolling", "line"),
        *([LegendEntry(reference_label, "dash-reference-line", "dash")] if reference is not None else []),
    ]
    left, right = 64, width - RIGHT
    extra = (legend_lines(legend, left, right) - 1) * LEGEND_LINE
    height = 220 + extra
    top, bottom = 30 + extra, height - 48
    x_scale = LinearScale(seq_domain[0] - 0.5, seq_domain[1] + 0.5, left, right)
    y_scale = LinearScale(0.0, 1.0, bottom, top)
    parts = [
        _x_axis(
            x_scale,
            [t for t in nice_ticks(seq_domain[0], seq_domain[1], 8) if t == int(t)],
            lambda t: f"{t:.0f}",
            top,
            bottom,
            "Label, in submit order",
            left,
            right,
        ),
        _y_axis(y_scale, [0, 0.25, 0.5, 0.75, 1.0], _percent_label, left, right, "Agreement with the AI", top, bottom),
        _legend(legend, left, 16, right),
    ]
    if reference is not None:
        y = y_scale(reference)
        parts.append(
            format_html(
                '<line class="dash-reference-line" x1="{}" x2="{}" y1="{}" y2="{}"><title>{}</title></line>',
                _n(left),
                _n(right),
                _n(y),
                _n(y),
                reference_label,
            )
        )
    for css, series in (("dash-line-rolling", rolling), ("dash-line-cumulative", cumulative)):
        if series:
            path = " ".join(f"{_n(x_scale(seq))},{_n(y_scale(rate))}" for seq, rate in series)
            parts.append(format_html('<polyline class="{}" points="{}"/>', css, path))
    return _svg(chart_id, width, height, aria_label, _join(parts))


def _percent_label(value: float) -> str:
    return f"{100 * value:.0f}%"


# --- Bars ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Segment:
    label: str
    count: int
    css: str


def stacked_bars(
    rows: Sequence[tuple[str, Sequence[Segment]]], *, aria_label: str, chart_id: str, width: float = WIDTH
) -> SafeString:
    """One horizontal bar per row, split into segments by share of the row's total."""
    bar, gap = 18, 10
    left, right = LABEL_WIDTH, width - RIGHT
    legend_entries = []
    seen = set()
    for _, segments in rows:
        for segment in segments:
            if segment.css not in seen:
                seen.add(segment.css)
                legend_entries.append(LegendEntry(segment.label, segment.css))
    top = 28 + (legend_lines(legend_entries, left, right) - 1) * LEGEND_LINE
    height = top + len(rows) * (bar + gap) + 6
    parts = [_legend(legend_entries, left, 16, right)]
    y = top
    for label, segments in rows:
        total = sum(s.count for s in segments)
        parts.append(
            format_html(
                '<text class="dash-row-label" x="{}" y="{}" text-anchor="end">{}<title>{}</title></text>',
                _n(left - 10),
                _n(y + bar - 4),
                _short(label),
                label,
            )
        )
        x = float(left)
        for segment in segments:
            if not segment.count or not total:
                continue
            w = (right - left) * segment.count / total
            parts.append(
                format_html(
                    '<rect class="{}" x="{}" y="{}" width="{}" height="{}"><title>{}: {} of {}</title></rect>',
                    segment.css,
                    _n(x),
                    _n(y),
                    _n(w),
                    _n(bar),
                    segment.label,
                    f"{segment.count:,}",
                    f"{total:,}",
                )
            )
            x += w
        if not total:
            parts.append(
                format_html('<text class="dash-missing" x="{}" y="{}">none</text>', _n(left + 6), _n(y + bar - 4))
            )
        y += bar + gap
    return _svg(chart_id, width, height, aria_label, _join(parts))


def day_bars(days: Sequence[tuple[str, int]], *, aria_label: str, chart_id: str, width: float = WIDTH) -> SafeString:
    """Labels per day, one vertical bar per day."""
    height = 170
    left, right, top, bottom = 64, width - RIGHT, 12, height - 40
    peak = max([count for _, count in days] + [1])
    high = max(nice_domain(0, peak, 4)[1], 1.0)
    y_scale = LinearScale(0, high, bottom, top)
    slot = (right - left) / max(1, len(days))
    ticks = [t for t in nice_ticks(0, high, 4) if t == int(t)]  # counts: whole numbers only
    parts = [_y_axis(y_scale, ticks, lambda t: f"{t:,.0f}", left, right, "Labels", top, bottom)]
    for index, (day, count) in enumerate(days):
        x = left + index * slot
        y = y_scale(count)
        parts.append(
            format_html(
                '<rect class="dash-bar" x="{}" y="{}" width="{}" height="{}"><title>{}: {} labels</title></rect>'
                '<text class="dash-tick" x="{}" y="{}" text-anchor="middle">{}</text>',
                _n(x + slot * 0.15),
                _n(y),
                _n(slot * 0.7),
                _n(bottom - y),
                day,
                f"{count:,}",
                _n(x + slot / 2),
                _n(bottom + 14),
                day[5:],  # MM-DD under the bar; the full date is in the title
            )
        )
    parts.append(
        format_html(
            '<line class="dash-axis-line" x1="{}" x2="{}" y1="{}" y2="{}"/>',
            _n(left),
            _n(right),
            _n(bottom),
            _n(bottom),
        )
    )
    return _svg(chart_id, width, height, aria_label, _join(parts))


def sparkline(counts: Sequence[int], *, aria_label: str, width: float = 70, height: float = 20) -> SafeString:
    """Tiny bars (one per day) for a table cell."""
    peak = max([*counts, 1])
    slot = width / max(1, len(counts))
    # A day without labels still gets a hairline, so the days stay countable.
    tall = [max(1.0, height * c / peak) if c else 0.5 for c in counts]
    bars = format_html_join(
        "",
        '<rect x="{}" y="{}" width="{}" height="{}"/>',
        ((_n(i * slot + 0.5), _n(height - h), _n(slot - 1), _n(h)) for i, h in enumerate(tall)),
    )
    return format_html(
        '<svg class="dash-spark" role="img" aria-label="{}" viewBox="0 0 {} {}" width="{}" height="{}">'
        "<title>{}</title>{}</svg>",
        aria_label,
        _n(width),
        _n(height),
        _n(width),
        _n(height),
        aria_label,
        bars,
    )
