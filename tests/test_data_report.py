"""The HTML statistics report: content, comparison and drift order, escaping, self-containment."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest

from kiln.data import (
    Bucket,
    DatasetStatistics,
    FeatureStatistics,
    NumericStatistics,
    Statistics,
    StringStatistics,
    TopValue,
    statistics_html,
)

HIST_COUNTS = [5.0, 20.0, 40.0, 0.0, 10.0, 2.0, 1.0, 0.0, 0.0, 12.0]
EVIL = "<script>alert('x')</script>"


def _buckets(low: float, high: float, counts: list[float]) -> list[Bucket]:
    width = (high - low) / len(counts)
    return [Bucket(low + i * width, low + (i + 1) * width, c) for i, c in enumerate(counts)]


def _dataset(name: str = "train", *, shift: float = 0.0) -> DatasetStatistics:
    age = FeatureStatistics(
        "age",
        "INT",
        count=1234,
        num_missing=66,
        numeric=NumericStatistics(
            mean=38.25 + shift,
            std_dev=12.5,
            num_zeros=0,
            min=17,
            median=37 + shift,
            max=90,
            histogram=_buckets(17, 90, HIST_COUNTS),
            quantiles=_buckets(17, 90, [123.4] * 10),
        ),
    )
    city = FeatureStatistics(
        "city",
        "STRING",
        count=1300,
        num_missing=0,
        string=StringStatistics(
            unique=3,
            top_values=[TopValue(EVIL, 700), TopValue("Lyon", 400), TopValue("Nice", 200)],
            avg_length=5.5,
        ),
    )
    weight = FeatureStatistics("weight", "FLOAT", count=0, num_missing=1300)
    return DatasetStatistics(name, 1300, [weight, city, age])


class _Rects(HTMLParser):
    """The ``rect`` bars of each chart, in page order."""

    def __init__(self) -> None:
        super().__init__()
        self.charts: list[list[dict[str, str]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "svg":
            self.charts.append([])
        elif tag == "rect" and "bar" in a.get("class", ""):
            self.charts[-1].append(a)


def _rows(page: str) -> list[str]:
    return re.findall(r'<tr data-name="([^"]*)"', page)


def test_page_shows_every_feature_with_counts_and_missing() -> None:
    page = statistics_html(Statistics([_dataset()]), title="My data")
    assert page.startswith("<!DOCTYPE html>")
    assert "<title>My data</title>" in page
    for name in ("age", "city", "weight"):
        assert f'data-name="{name}"' in page
    assert "1,234" in page  # count, with thousands separator
    assert "1,300 examples" in page
    assert "5.1%" in page  # 66 / 1300 missing
    assert "100%" in page  # weight: all missing
    assert re.search(r'class="bad strong"[^>]*>5\.1%', page)
    assert "38.2" in page
    assert "12.5" in page
    assert _rows(page) == ["age", "weight", "city"]  # numeric table, then categorical, by name
    assert "Lyon" in page
    assert "30.8%" in page


def test_compare_shows_both_datasets_and_orders_by_drift() -> None:
    page = statistics_html(
        Statistics([_dataset("train")]),
        compare=Statistics([_dataset("serving", shift=3)]),
        drift={"age": 0.0123, "weight": 0.5, "city": 0.25},
    )
    assert "train" in page
    assert "serving" in page
    assert "0.0123" in page
    assert "0.5" in page
    assert "0.25" in page
    assert "drift (JS)" in page
    assert "drift (L∞)" in page
    assert _rows(page) == ["weight", "age", "city"]
    assert '<option value="drift" selected>' in page
    # each chart draws both datasets, in two colours
    charts = _Rects()
    charts.feed(page)
    age, city = charts.charts[0], charts.charts[-1]
    assert {r["data-series"] for r in age} == {"0", "1"}
    assert len({r["fill"] for r in city}) == 2


def test_same_split_names_are_told_apart() -> None:
    page = statistics_html(Statistics([_dataset()]), compare=Statistics([_dataset()]))
    assert "train (compare)" in page


def test_no_external_reference_of_any_kind() -> None:
    page = statistics_html(
        Statistics([_dataset()]), compare=Statistics([_dataset("b")]), drift={"age": 0.1}
    )
    for pattern in (r"https?:", r"src=\"//", r"href=\"//", r"@import", r"url\(", r"//cdn"):
        assert not re.search(pattern, page, re.IGNORECASE), pattern
    assert "<link" not in page


def test_names_and_values_are_escaped() -> None:
    data = _dataset()
    data.features.append(FeatureStatistics(EVIL, "INT", 1, 0))
    page = statistics_html(Statistics([data]), title=EVIL, drift={EVIL: 0.3})
    assert EVIL not in page
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in page
    assert page.count("<script>") == 1  # only the page's own


def test_histogram_bars_are_proportional_to_bucket_counts() -> None:
    page = statistics_html(Statistics([_dataset()]))
    charts = _Rects()
    charts.feed(page)
    bars = charts.charts[0]  # age's histogram: first chart of the numeric table
    assert len(bars) == len(HIST_COUNTS)
    heights = [float(r["height"]) for r in bars]
    scale = max(heights) / max(HIST_COUNTS)
    assert heights == pytest.approx([c * scale for c in HIST_COUNTS], abs=0.01)
    xs = [float(r["x"]) for r in bars]
    assert xs == sorted(xs)  # drawn left to right by value


def test_top_value_bars_are_proportional_to_counts() -> None:
    charts = _Rects()
    charts.feed(statistics_html(Statistics([_dataset()])))
    widths = [float(r["width"]) for r in charts.charts[-1]]
    assert widths == pytest.approx([w * widths[0] / 700 for w in (700, 400, 200)], abs=0.01)


def test_quantiles_chart_is_there_behind_a_toggle() -> None:
    page = statistics_html(Statistics([_dataset()]))
    assert 'id="chart-q"' in page
    assert 'class="chart-q"' in page
    assert page.count('class="q"') == 11  # ten deciles: eleven boundaries


def test_empty_dataset_and_feature_without_numbers_render() -> None:
    empty = DatasetStatistics(
        "empty", 0, [FeatureStatistics("x", "FLOAT", 0, 0), FeatureStatistics("s", "STRING", 0, 0)]
    )
    page = statistics_html(Statistics([empty]))
    assert 'data-name="x"' in page
    assert 'data-name="s"' in page
    assert "0 examples" in page
    assert "no data" in page
    assert "</html>" in statistics_html(Statistics([]))
    assert "</html>" in statistics_html(Statistics([DatasetStatistics("none", 0)]))


def test_degenerate_numbers_render() -> None:
    one_value = FeatureStatistics(
        "c",
        "FLOAT",
        3,
        0,
        numeric=NumericStatistics(
            mean=2.0,
            std_dev=0.0,
            num_zeros=0,
            min=2.0,
            median=2.0,
            max=2.0,
            num_nan=1,
            histogram=[Bucket(2.0, 2.0, 3.0)],
            quantiles=[Bucket(2.0, 2.0, 0.3)] * 10,
        ),
    )
    huge = FeatureStatistics(
        "h",
        "FLOAT",
        2,
        0,
        numeric=NumericStatistics(1e20, 1e-7, 0, -1e20, 0.000123, 1e20, num_pos_inf=2),
    )
    page = statistics_html(Statistics([DatasetStatistics("d", 3, [one_value, huge])]))
    assert "1 NaN" in page
    assert "2 +∞" in page
    assert "1.00e+20" in page
    assert "−1.00e+20" in page
    assert "0.000123" in page
    assert "nan" not in re.sub(r"<[^>]*>", "", page).lower().replace("1 nan", "")
