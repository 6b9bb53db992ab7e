"""What every figure of the report and the studies shares: the matplotlib/seaborn set-up, saving as PNG and SVG (palette
PNGs, dated-free SVGs, so reruns are byte-identical), and file names from labels."""

from __future__ import annotations

from pathlib import Path


def pyplot():
    import warnings

    import matplotlib

    # seaborn 0.13 calls matplotlib APIs that 3.11 deprecates; the figures are unaffected.
    warnings.filterwarnings("ignore", module="seaborn")

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import seaborn as sns

    sns.set_theme(style="whitegrid", context="paper")
    # SVG ids are salted with a random string unless told otherwise: keep reruns byte-identical.
    matplotlib.rcParams["svg.hashsalt"] = "explainbench"
    return plt, sns


def save(fig, folder: Path, name: str, dpi: int = 100) -> list[Path]:
    """The figure as PNG and SVG; the report embeds whichever is smaller."""
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for ext in ("png", "svg"):
        path = folder / f"{name}.{ext}"
        # SVGs embed a date unless told not to: keep reruns byte-identical.
        fig.savefig(path, dpi=dpi, bbox_inches="tight", metadata={"Date": None} if ext == "svg" else None)
        if ext == "png":
            _palette_png(path)
        out.append(path)
    import matplotlib.pyplot as plt

    plt.close(fig)
    return out


def _palette_png(path: Path) -> None:
    """Rewrite a figure's PNG with a 256-colour palette: a third of the bytes or less for plots
    (flat colours, anti-aliased edges), no visible loss; deterministic, so reruns stay identical."""
    from PIL import Image

    with Image.open(path) as image:
        rgb = image.convert("RGB")
    rgb.quantize(256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(path, optimize=True)


def slug(text: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in text).strip("_")


def errorbars(ax, frame, x: str, label: str, colour, marker="o", linestyle="-"):
    """One line of means with its 95% interval as error bars (columns mean, ci_low, ci_high)."""
    import numpy as np

    frame = frame.sort_values(x)
    yerr = np.vstack([frame["mean"] - frame["ci_low"], frame["ci_high"] - frame["mean"]])
    ax.errorbar(frame[x], frame["mean"], yerr=np.clip(yerr, 0, None), label=label, color=colour,
                marker=marker, ms=4, lw=1.5, capsize=2.5, linestyle=linestyle)
