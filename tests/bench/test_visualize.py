"""The HTML snippet of highlighted words (for the later HTML report)."""

from __future__ import annotations

import re

from explainbench.bench.report.pictures import text_html


def _rgb(span: str) -> tuple[int, int, int]:
    r, g, b = re.search(r"rgb\((\d+), (\d+), (\d+)\)", span).groups()
    return int(r), int(g), int(b)


def test_words_are_red_for_blue_against_white_at_zero_and_escaped():
    html = text_html(["good", "<b>", "bad"], [0.8, 0.0, -0.4])
    spans = re.findall(r"<span[^>]*>.*?</span>", html)
    assert len(spans) == 3
    good, neutral, bad = (_rgb(s) for s in spans)
    assert good[0] > good[2] + 50 and good[1] < 50  # saturated (dark) red
    assert bad[2] > bad[0] + 30  # blue, weaker (half the largest |attribution|)
    assert min(neutral) > 240  # near white
    assert spans[1].endswith(">&lt;b&gt;</span>")
    assert 'title="+0.8"' in spans[0] and 'title="-0.4"' in spans[2]
