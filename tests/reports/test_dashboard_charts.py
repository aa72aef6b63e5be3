"""The SVG chart builders (pure): scales, ticks, where a mark lands, escaping."""

from __future__ import annotations

import re

import pytest

from reviewapp.reports import charts

HOSTILE = '<script>alert("x")</script>'


def number(attribute: str, markup: str) -> list[float]:
    return [float(v) for v in re.findall(rf'\b{attribute}="(-?[\d.]+)"', markup)]


class TestCharts:
    def test_a_linear_scale_maps_and_clamps(self):
        x = charts.LinearScale(0.0, 1.0, 100.0, 300.0)
        assert x(0.0) == 100.0 and x(0.25) == 150.0 and x(1.0) == 300.0
        assert x(-3.0) == 100.0 and x(7.0) == 300.0
        y = charts.LinearScale(0.0, 1.0, 200.0, 0.0)  # a y axis: up is smaller
        assert y(0.75) == 50.0
        assert charts.LinearScale(5.0, 5.0, 0.0, 10.0)(5.0) == 5.0

    def test_a_log_scale_maps_decades_evenly(self):
        scale = charts.LogScale(1.0, 100.0, 0.0, 200.0)
        assert scale(10.0) == pytest.approx(100.0)
        assert scale(1.0) == 0.0 and scale(100.0) == pytest.approx(200.0)
        assert scale(0.01) == 0.0  # clamped
        with pytest.raises(ValueError):
            charts.LogScale(0.0, 10.0, 0.0, 1.0)

    def test_ticks_and_domains_are_round(self):
        assert charts.nice_ticks(0, 1, 5) == [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]
        assert charts.nice_ticks(-0.2, 0.8, 5) == [-0.2, 0.0, 0.2, 0.4, 0.6, 0.8]
        assert charts.nice_domain(-0.13, 0.66, 5) == pytest.approx((-0.2, 0.8))
        assert charts.log_ticks(0.5, 200) == [0.5, 1, 2, 5, 10, 20, 50, 100, 200]
        assert charts.log_domain([3.1, 42.0]) == (2.0, 50.0)

    def test_a_dot_and_whisker_puts_the_point_and_interval_where_they_belong(self):
        row = charts.Estimate("arm", 0.5, 0.25, 0.75, "arm: 50%")
        markup = charts.dot_whisker(
            [charts.Panel("All items", [row], reference=0.25, reference_label="baseline")],
            domain=(0.0, 1.0),
            ticks=[0.0, 0.5, 1.0],
            tick_label=lambda v: f"{v:.1f}",
            axis_title="x",
            aria_label="a chart",
            chart_id="c",
        )
        left, right = charts.LABEL_WIDTH, charts.WIDTH - charts.RIGHT
        middle = left + 0.5 * (right - left)
        quarter = left + 0.25 * (right - left)
        assert number("cx", markup) == [pytest.approx(middle, abs=0.05)]
        # The whisker runs from the low to the high bound; the baseline sits at 0.25.
        assert pytest.approx(quarter, abs=0.05) in number("x1", markup)
        assert pytest.approx(left + 0.75 * (right - left), abs=0.05) in number("x2", markup)
        assert markup.startswith('<svg class="dash-chart" id="c" role="img" aria-label="a chart"')
        assert "<title>a chart</title>" in markup and "<title>arm: 50%</title>" in markup

    def test_a_missing_estimate_says_no_data(self):
        markup = charts.dot_whisker(
            [charts.Panel("AI wrong", [charts.Estimate("arm", None, None, None, "arm: —")])],
            domain=(0.0, 1.0),
            ticks=[0.0, 1.0],
            tick_label=str,
            axis_title="x",
            aria_label="a",
            chart_id="c",
        )
        assert "no data" in markup and "<circle" not in markup

    def test_every_text_is_escaped(self):
        markup = charts.dot_whisker(
            [charts.Panel(HOSTILE, [charts.Estimate(HOSTILE, 0.5, 0.4, 0.6, HOSTILE)], 0.5, HOSTILE)],
            domain=(0.0, 1.0),
            ticks=[0.0, 1.0],
            tick_label=lambda v: HOSTILE,
            axis_title=HOSTILE,
            aria_label=HOSTILE,
            chart_id='x" onload="alert(1)',
        )
        scatter = charts.scatter(
            [charts.ScatterPoint(3.0, 0.5, HOSTILE, flagged=True, href='/r/"><script>')],
            x_domain=(1.0, 10.0),
            y_domain=(0.0, 1.0),
            x_ticks=[1.0, 10.0],
            y_ticks=[0.0, 1.0],
            x_label=str,
            y_label=str,
            x_title=HOSTILE,
            y_title=HOSTILE,
            legend=[charts.LegendEntry(HOSTILE, "dash-c0")],
            aria_label=HOSTILE,
            chart_id="s",
        )
        segments = [charts.Segment(HOSTILE, 3, "dash-state-full")]
        bars = charts.stacked_bars([(HOSTILE, segments)], aria_label=HOSTILE, chart_id="b")
        for chart in (markup, scatter, bars, charts.sparkline([1, 0, 2], aria_label=HOSTILE)):
            assert "<script>" not in chart and 'onload="' not in chart
            assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in chart
        assert 'href="/r/&quot;&gt;&lt;script&gt;"' in scatter

    def test_a_scatter_rings_flagged_points_and_links_them(self):
        markup = charts.scatter(
            [
                charts.ScatterPoint(10.0, 0.5, "careful", series=0, href="/a/"),
                charts.ScatterPoint(1.0, 1.0, "stamp", series=2, flagged=True, href="/b/"),
            ],
            x_domain=(1.0, 100.0),
            y_domain=(0.0, 1.0),
            x_ticks=[1, 10, 100],
            y_ticks=[0, 1],
            x_label=str,
            y_label=str,
            x_title="x",
            y_title="y",
            legend=[],
            aria_label="a",
            chart_id="s",
        )
        assert markup.count('class="dash-ring"') == 1
        assert '<a href="/b/"><g class="dash-mark dash-c2"><title>stamp</title>' in markup
        # x = 10 s is the middle of a 1..100 log axis.
        careful = re.search(r"<title>careful</title><circle cx=\"([\d.]+)\"", markup).group(1)
        assert float(careful) == pytest.approx(64 + (charts.WIDTH - charts.RIGHT - 64) / 2, abs=0.05)

    def test_a_timeline_marks_probes_and_draws_the_floor(self):
        points = [
            charts.TimelinePoint(1, 2.0, 10.0, True, False, "one"),
            charts.TimelinePoint(2, 20.0, 10.0, False, True, "two"),
            charts.TimelinePoint(3, None, None, None, False, "three"),
        ]
        markup = charts.timeline(points, seq_domain=(1, 3), aria_label="t", chart_id="t")
        assert markup.count('class="dash-mark dash-agree"') == 1
        assert markup.count('class="dash-mark dash-disagree dash-is-probe"') == 1
        assert "<title>three</title>" not in markup  # no time, no mark
        assert markup.count("H") >= 2 and 'class="dash-floor"' in markup

    def test_a_sparkline_scales_to_the_busiest_day(self):
        markup = charts.sparkline([0, 5, 10], aria_label="s", width=30, height=20)
        assert number("height", markup)[1:] == [0.5, 10.0, 20.0]
