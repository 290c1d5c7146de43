"""Coverage and MMD over training minutes of several bench.quality runs, as one PNG.

    PYTHONPATH=. python -m bench.quality_figure --out docs/gan_quality_curves.png \\
        paper=/tmp/paper/quality.json recipe=/tmp/recipe/quality.json

Each run is `label=path` of the `quality.json` that `bench.quality --work_dir` writes;
the curves are its evaluations against the held-out split. The first run's
baselines are drawn as grey lines: real training shapes scored as samples (the
ceiling) and the mean shape repeated (the floor).
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
# (metric, title, whether high is good): the legend goes to the side the curves head away from.
PANELS = (("coverage_iou", "coverage (IoU), higher is better", True), ("mmd_iou", "MMD (1 - IoU), lower is better", False))


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
        values = {name: [entry["split"][name] for entry in history] for name, _, _ in PANELS}
        baselines = {kind: {name: run["references"]["split"][kind][name] for name, _, _ in PANELS}
                     for kind, _ in REFERENCES} if "references" in run else {}
    except (OSError, ValueError, KeyError, TypeError) as error:
        fail(f"{path}: not a bench.quality quality.json ({error})")
    if not minutes:
        fail(f"{path}: no evaluation in its history")
    return label, minutes, values, baselines


def draw_panel(runs, metric, title, high_is_good, font):
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
    for index, (label, minutes, values, _) in enumerate(runs):
        color = COLORS[index % len(COLORS)]
        x = box[0] + np.asarray(minutes) / max(last, 1e-9) * (box[2] - box[0])
        y = height(values[metric])
        points = list(zip(x, y))
        if len(points) > 1:
            draw.line(points, fill=color, width=2)
        for px, py in points:
            draw.ellipse((px - 2, py - 2, px + 2, py + 2), fill=color)
        legend_top = box[3] - 4 - 12 * len(runs) if high_is_good else box[1] + 4
        draw.text((box[2] - 6 - draw.textlength(label, font=font), legend_top + 12 * index), label, fill=color,
                  font=font)
    draw.text((4, box[1]), f"{high:.3g}", fill="black", font=font)
    draw.text((4, box[3] - 10), f"{low:.3g}", fill="black", font=font)
    draw.text((box[0], box[3] + 6), "0 min", fill="black", font=font)
    end = f"{last:.0f} min of training"
    draw.text((box[2] - draw.textlength(end, font=font), box[3] + 6), end, fill="black", font=font)
    return image


def main(argv):
    args = argv[1:]
    if len(args) < 3 or args[0] != "--out":
        fail("usage: python -m bench.quality_figure --out FILE.png label=quality.json [label=quality.json ...]")
    runs = [read_run(spec) for spec in args[2:]]
    font = ImageFont.load_default()
    picture = Image.new("RGB", (PANEL[0] * len(PANELS), PANEL[1]), "white")
    for index, (metric, title, high_is_good) in enumerate(PANELS):
        picture.paste(draw_panel(runs, metric, title, high_is_good, font), (index * PANEL[0], 0))
    save_png(np.asarray(picture), args[1])
    print(f"wrote {args[1]}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
