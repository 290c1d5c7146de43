"""Coverage and MMD over training minutes of several bench.quality runs, as one PNG.

    PYTHONPATH=. python -m bench.quality_figure --out docs/gan_quality_curves.png \\
        paper=/tmp/paper/quality.json recipe=/tmp/recipe/quality.json

Each run is `label=path` of the `quality.json` that `bench.quality --work_dir` writes;
the curves are its evaluations against the held-out split, named in a legend
under the panels. The first run's baselines are drawn as grey lines: real
training shapes scored as samples (the ceiling) and the mean shape repeated
(the floor).
"""

import json
import sys

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from vaegan_utils.cli import fail
from vaegan_utils.render import save_png

PANEL = (420, 260)
MARGIN = (52, 30, 16, 34)  # left, top, right, bottom
COLORS = ((200, 60, 40), (40, 110, 200), (40, 150, 70), (150, 80, 170), (220, 140, 20))
PANELS = (("coverage_iou", "coverage (IoU), higher is better"), ("mmd_iou", "MMD (1 - IoU), lower is better"))
LEGEND_ROW = 16  # pixels per row of the legend


REFERENCES = (("ceiling", "real training shapes"), ("floor", "mean shape repeated"))


def read_run(spec):
    """(label, minutes, {metric: values}, {baseline: {metric: value}}) of one `label=path` argument.

    The baselines are empty for a quality.json written before they were kept.
    """
    label, _, path = spec.partition("=")
    if not path:
        fail(f"{spec!r}: give each run as label=path/to/quality.json")
    try:
        with open(path) as handle:
            run = json.load(handle)
        history = run["history"]
        minutes = [entry["minutes"] for entry in history]
        values = {name: [entry["split"][name] for entry in history] for name, _ in PANELS}
        baselines = {kind: {name: run["references"]["split"][kind][name] for name, _ in PANELS}
                     for kind, _ in REFERENCES} if "references" in run else {}
    except (OSError, ValueError, KeyError, TypeError) as error:
        fail(f"{path}: not a bench.quality quality.json ({error})")
    if not minutes:
        fail(f"{path}: no evaluation in its history")
    return label, minutes, values, baselines


def draw_panel(runs, metric, title, font):
    image = Image.new("RGB", PANEL, "white")
    draw = ImageDraw.Draw(image)
    left, top, right, bottom = MARGIN
    box = (left, top, PANEL[0] - right, PANEL[1] - bottom)
    draw.text((left, 8), title, fill="black", font=font)
    draw.rectangle(box, outline=(120, 120, 120))
    baselines = runs[0][3]
    every = np.concatenate([values[metric] for _, _, values, _ in runs]
                           + [[baselines[kind][metric]] for kind in baselines])
    low, high = float(every.min()), float(every.max())
    last = max(max(minutes) for _, minutes, _, _ in runs)

    def height(value):
        return box[3] - (np.asarray(value) - low) / max(high - low, 1e-9) * (box[3] - box[1])

    for kind, name in REFERENCES:
        if kind in baselines:
            y = float(height(baselines[kind][metric]))
            for x in range(box[0], box[2], 8):
                draw.line((x, y, min(x + 4, box[2]), y), fill=(150, 150, 150))
            draw.text((box[0] + 4, y + (2 if y < box[1] + 14 else -12)), f"{name} {baselines[kind][metric]:.3g}",
                      fill=(110, 110, 110), font=font)
    for index, (_, minutes, values, _) in enumerate(runs):
        color = COLORS[index % len(COLORS)]
        x = box[0] + np.asarray(minutes) / max(last, 1e-9) * (box[2] - box[0])
        y = height(values[metric])
        points = list(zip(x, y))
        if len(points) > 1:
            draw.line(points, fill=color, width=2)
        for px, py in points:
            draw.ellipse((px - 2, py - 2, px + 2, py + 2), fill=color)
    draw.text((4, box[1]), f"{high:.3g}", fill="black", font=font)
    draw.text((4, box[3] - 10), f"{low:.3g}", fill="black", font=font)
    draw.text((box[0], box[3] + 6), "0 min", fill="black", font=font)
    end = f"{last:.0f} min of training"
    draw.text((box[2] - draw.textlength(end, font=font), box[3] + 6), end, fill="black", font=font)
    return image


def draw_legend(labels, width, font):
    """The runs' labels in their colors, left to right, wrapping onto new rows, under the panels."""
    rows, x = [[]], MARGIN[0]
    for index, label in enumerate(labels):
        item = 24 + font.getlength(label) + 18  # a swatch, the label, a gap
        if rows[-1] and x + item > width:
            rows.append([])
            x = MARGIN[0]
        rows[-1].append((x, index, label))
        x += item
    image = Image.new("RGB", (width, LEGEND_ROW * len(rows) + 6), "white")
    draw = ImageDraw.Draw(image)
    for row_index, row in enumerate(rows):
        y = row_index * LEGEND_ROW + 2
        for x, index, label in row:
            color = COLORS[index % len(COLORS)]
            draw.line((x, y + 6, x + 18, y + 6), fill=color, width=2)
            draw.text((x + 24, y), label, fill=color, font=font)
    return image


def main(argv):
    args = argv[1:]
    if len(args) < 3 or args[0] != "--out":
        fail("usage: python -m bench.quality_figure --out FILE.png label=quality.json [label=quality.json ...]")
    runs = [read_run(spec) for spec in args[2:]]
    font = ImageFont.load_default()
    width = PANEL[0] * len(PANELS)
    legend = draw_legend([label for label, _, _, _ in runs], width, font)
    picture = Image.new("RGB", (width, PANEL[1] + legend.height), "white")
    for index, (metric, title) in enumerate(PANELS):
        picture.paste(draw_panel(runs, metric, title, font), (index * PANEL[0], 0))
    picture.paste(legend, (0, PANEL[1]))
    save_png(np.asarray(picture), args[1])
    print(f"wrote {args[1]}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
