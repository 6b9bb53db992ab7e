"""Pictures of explanations: heatmaps over digits, highlighted words, nearest examples.

Attributions are shown on a diverging map centred at zero, red for evidence for the target class
and blue for evidence against, each sample scaled by its own largest |attribution| (attributions
of different methods and samples are not on a common scale). matplotlib is imported inside the
functions, with the Agg backend, so that importing this module costs nothing.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Sequence

import numpy as np

DIVERGING = "RdBu_r"  # blue (negative) - white (zero) - red (positive)


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _symmetric_limit(values: np.ndarray) -> float:
    limit = float(np.abs(values).max()) if values.size else 0.0
    return limit if limit > 0 else 1.0


def _save(fig, path: str | Path) -> Path:
    from explainbench.bench.store import StorageError

    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=120, bbox_inches="tight")
    except OSError as exc:
        raise StorageError(f"could not write {path} ({exc.strerror or exc})") from None
    finally:
        _pyplot().close(fig)
    return path


# ------------------------------------------------------------------------------ images


def image_attributions(path: str | Path, images: np.ndarray, attributions: np.ndarray,
                       titles: Sequence[str], suptitle: str = "") -> Path:
    """One row per sample: the digit, and the attribution heatmap over it with a colour bar.
    images and attributions are (B, 28, 28)."""
    plt = _pyplot()
    from matplotlib.colors import TwoSlopeNorm

    n = len(images)
    # constrained: the title sits on the top row (a fixed figure fraction left an empty band)
    fig, axes = plt.subplots(n, 2, figsize=(6.0, 2.8 * n), squeeze=False, layout="constrained")
    for row, (image, attribution, title) in enumerate(zip(images, attributions, titles)):
        left, right = axes[row]
        left.imshow(image, cmap="gray", vmin=0.0, vmax=1.0)
        left.set_title(title, fontsize=9)
        limit = _symmetric_limit(attribution)
        right.imshow(image, cmap="gray", vmin=0.0, vmax=1.0)
        heat = right.imshow(attribution, cmap=DIVERGING, alpha=0.65,
                            norm=TwoSlopeNorm(vcenter=0.0, vmin=-limit, vmax=limit))
        right.set_title("attribution", fontsize=9)
        fig.colorbar(heat, ax=right, fraction=0.046, pad=0.04)
        for ax in (left, right):
            ax.set_xticks([]), ax.set_yticks([])
    if suptitle:
        fig.suptitle(suptitle, fontsize=10)
    return _save(fig, path)


def image_examples(path: str | Path, images: np.ndarray, neighbours: np.ndarray,
                   similarities: np.ndarray, neighbour_ids: np.ndarray, titles: Sequence[str],
                   suptitle: str = "") -> Path:
    """One row per sample: the digit, then its k nearest training digits with their similarity.
    images (B, 28, 28), neighbours (B, k, 28, 28)."""
    plt = _pyplot()

    n, k = neighbours.shape[:2]
    fig, axes = plt.subplots(n, k + 1, figsize=(1.6 * (k + 1), 1.9 * n), squeeze=False,
                             layout="constrained")
    for row in range(n):
        axes[row, 0].imshow(images[row], cmap="gray", vmin=0.0, vmax=1.0)
        axes[row, 0].set_title(titles[row], fontsize=7)
        for j in range(k):
            axes[row, j + 1].imshow(neighbours[row, j], cmap="gray", vmin=0.0, vmax=1.0)
            axes[row, j + 1].set_title(f"train {neighbour_ids[row, j]}\ncos {similarities[row, j]:.3f}",
                                       fontsize=7)
        for ax in axes[row]:
            ax.set_xticks([]), ax.set_yticks([])
    if suptitle:
        fig.suptitle(suptitle, fontsize=10)
    return _save(fig, path)


# ------------------------------------------------------------------------------ text


def word_colours(attributions: np.ndarray) -> np.ndarray:
    """RGBA (n, 4) per word: hue by sign, saturation by |a| / max |a| of the sample."""
    import matplotlib

    scaled = np.asarray(attributions, dtype=np.float64) / _symmetric_limit(np.asarray(attributions))
    return matplotlib.colormaps[DIVERGING]((scaled + 1.0) / 2.0)


def text_html(tokens: Sequence[str], attributions: Sequence[float]) -> str:
    """An HTML snippet: each word in a span whose background shows the attribution (red for,
    blue against the target class), the value in its tooltip."""
    colours = word_colours(np.asarray(attributions))
    spans = []
    for word, value, (r, g, b, _) in zip(tokens, attributions, colours):
        spans.append(f'<span style="background-color: rgb({int(255 * r)}, {int(255 * g)}, '
                     f'{int(255 * b)}); padding: 0 2px; border-radius: 2px" '
                     f'title="{float(value):+.4g}">{html.escape(word)}</span>')
    return '<p class="attribution" style="line-height: 1.8">' + " ".join(spans) + "</p>"


def _text_figure(blocks: list[tuple[str, list[tuple[str, tuple]]]], chars_per_line: int = 110):
    """Lay out blocks of (title, [(word, facecolour)]) in a monospace font: with every character
    the same width, line breaks are computed without measuring text on a renderer."""
    plt = _pyplot()

    font, line_height = 9.0, 1.9  # points; line height in units of the font size
    lines_per_block = []
    for _, words in blocks:
        lines, used = 1, 0
        for word, _ in words:
            if used and used + 1 + len(word) > chars_per_line:
                lines, used = lines + 1, 0
            used += (1 if used else 0) + len(word)
        lines_per_block.append(lines + 2)  # title and a gap
    char_w = 0.6 * font / 72  # inches, for a monospace font
    width = chars_per_line * char_w + 0.4
    height = sum(lines_per_block) * line_height * font / 72 + 0.3
    fig = plt.figure(figsize=(width, height))
    step_y = line_height * font / 72 / height
    y = 1.0 - step_y
    for (title, words), n_lines in zip(blocks, lines_per_block):
        fig.text(0.01, y, title, fontsize=font, fontweight="bold", family="monospace", va="center")
        y -= step_y
        used = 0
        for word, colour in words:
            if used and used + 1 + len(word) > chars_per_line:
                y, used = y - step_y, 0
            x = (0.2 + (used + (1 if used else 0)) * char_w) / width
            r, g, b = colour[:3]
            ink = "white" if 0.299 * r + 0.587 * g + 0.114 * b < 0.5 else "black"  # readable on dark
            fig.text(x, y, word, fontsize=font, family="monospace", va="center", color=ink,
                     bbox=dict(facecolor=colour, edgecolor="none", pad=1.0))
            used += (1 if used else 0) + len(word)
        y -= 2 * step_y
    return fig


def text_attributions(path: str | Path, tokens: Sequence[Sequence[str]],
                      attributions: Sequence[np.ndarray], titles: Sequence[str]) -> Path:
    """Each sample's words highlighted by the sign and strength of their attribution."""
    blocks = []
    for words, values, title in zip(tokens, attributions, titles):
        colours = word_colours(np.asarray(values))
        blocks.append((title, [(w, tuple(c)) for w, c in zip(words, colours)]))
    return _save(_text_figure(blocks), path)


def text_examples(path: str | Path, texts: Sequence[Sequence[str]],
                  neighbours: Sequence[Sequence[Sequence[str]]], similarities: np.ndarray,
                  neighbour_ids: np.ndarray, titles: Sequence[str], max_words: int = 60) -> Path:
    """Each review followed by its nearest training reviews (first `max_words` words each)."""
    white, grey = (1.0, 1.0, 1.0, 0.0), (0.92, 0.92, 0.92, 1.0)

    def clip(words):
        words = list(words)
        return words[:max_words] + (["..."] if len(words) > max_words else [])

    blocks = []
    for i, (words, title) in enumerate(zip(texts, titles)):
        blocks.append((title, [(w, white) for w in clip(words)]))
        for j, neighbour in enumerate(neighbours[i]):
            label = f"  nearest {j + 1}: train {neighbour_ids[i, j]} (cos {similarities[i, j]:.3f})"
            blocks.append((label, [(w, grey) for w in clip(neighbour)]))
    return _save(_text_figure(blocks), path)


# ---------------------------------------------------------------------------- an explained file


def _titles(arrays) -> list[str]:
    titles = []
    for i, sid in enumerate(arrays["sample_ids"]):
        t = int(arrays["targets"][i])
        p = float(arrays["probabilities"][i, t])
        titles.append(f"id {sid} · label {arrays['labels'][i]} · target {t} (p={p:.2f})")
    return titles


def draw(path: Path, arrays: dict, task) -> Path:
    """The picture for an .npz written by `bench explain` (the arrays as loaded)."""
    import numpy as np
    import torch

    titles = _titles(arrays)
    name = f"{arrays['model']} · {arrays['explainer']} · seed {int(arrays['seed'])}"
    if "example_ids" in arrays:
        train, _ = task.train_split()
        neighbour_ids = arrays["example_ids"]
        if task.modality == "image":
            neighbours = train[torch.as_tensor(neighbour_ids)][:, :, 0].numpy()
            return image_examples(path, arrays["inputs"][:, 0], neighbours,
                                            arrays["similarities"], neighbour_ids, titles, name)
        words = [_words(torch.as_tensor(row), task) for row in arrays["inputs"]]
        neighbours = [[_words(train[int(j)], task) for j in row] for row in neighbour_ids]
        return text_examples(path, words, neighbours, arrays["similarities"],
                                       neighbour_ids, [f"{name} · {t}" for t in titles])
    if task.modality == "image":
        return image_attributions(path, arrays["inputs"][:, 0], arrays["attributions"],
                                            titles, name)
    words, values = [], []
    for row, tokens, attribution in zip(arrays["inputs"], arrays["tokens"], arrays["attributions"]):
        keep = task.feature_mask(torch.as_tensor(row)[None])[0].numpy()
        words.append([str(t) for t in np.asarray(tokens)[keep]])
        values.append(np.asarray(attribution)[keep])
    return text_attributions(path, words, values, [f"{name} · {t}" for t in titles])


def _words(ids, task) -> list[str]:
    """The words of one id row ([CLS] and [PAD] left out)."""
    return task.tokens(ids[task.feature_mask(ids[None])[0]])
