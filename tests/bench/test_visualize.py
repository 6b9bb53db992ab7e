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


def test_the_explain_picture_has_no_empty_band_under_its_title(tmp_path):
    """The title sits on the top row: no run of blank pixel rows taller than 25 px between it
    and the first panels (it was ~100 px at 4 samples: a title at a fixed figure fraction)."""
    import numpy as np
    from PIL import Image

    from explainbench.bench.report.pictures import image_attributions, image_examples

    g = np.random.default_rng(0)
    images = g.random((4, 28, 28))
    paths = [image_attributions(tmp_path / "a.png", images, g.standard_normal((4, 28, 28)),
                                ["t"] * 4, "model · explainer · seed 0"),
             image_examples(tmp_path / "e.png", images, g.random((4, 3, 28, 28)),
                            g.random((4, 3)), np.zeros((4, 3), int), ["t"] * 4,
                            "model · explainer · seed 0")]
    for path in paths:
        pixels = np.asarray(Image.open(path).convert("L"))
        blank = (pixels > 250).all(axis=1)
        top = blank[: len(blank) // 3]
        inked = np.flatnonzero(~top)
        runs, run = [], 0
        for b in top[inked[0]:]:  # from the title down
            run = run + 1 if b else 0
            runs.append(run)
        assert max(runs) <= 25, (path.name, max(runs))
