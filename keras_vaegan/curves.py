"""Training curves from a run's TensorBoard logs, drawn as one PNG with Pillow."""

import os

import numpy as np
from PIL import Image, ImageDraw, ImageFont
from tensorboard.backend.event_processing import event_accumulator
from tensorboard.util import tensor_util

PANEL = (320, 200)
MARGIN = (56, 28, 12, 30)  # left, top, right, bottom: room for the axis labels
COLUMNS = 3
LINE_COLOR = (40, 110, 200)
AXIS_COLOR = (120, 120, 120)
TEXT_COLOR = (30, 30, 30)


def read_scalars(logdir):
    """{tag: (steps, values)} of the scalar summaries under `logdir` (empty when there are none).

    TensorFlow 2 writes scalars as tensors tagged with the scalars plugin; both kinds are read.
    """
    if not os.path.isdir(logdir):
        return {}
    accumulator = event_accumulator.EventAccumulator(
        logdir, size_guidance={event_accumulator.TENSORS: 0, event_accumulator.SCALARS: 0}
    )
    accumulator.Reload()
    tags = accumulator.Tags()
    curves = {}
    for tag in tags[event_accumulator.SCALARS]:
        events = accumulator.Scalars(tag)
        curves[tag] = ([e.step for e in events], [e.value for e in events])
    for tag in tags[event_accumulator.TENSORS]:
        if accumulator.SummaryMetadata(tag).plugin_data.plugin_name != "scalars":
            continue
        events = accumulator.Tensors(tag)
        curves[tag] = ([e.step for e in events], [float(tensor_util.make_ndarray(e.tensor_proto)) for e in events])
    return {tag: curves[tag] for tag in sorted(curves)}


def _number(value):
    return f"{value:.3g}"


def _panel(tag, steps, values, font):
    width, height = PANEL
    left, top, right, bottom = MARGIN
    image = Image.new("RGB", PANEL, "white")
    draw = ImageDraw.Draw(image)
    draw.text((left, 6), tag, fill=TEXT_COLOR, font=font)
    box = (left, top, width - right, height - bottom)
    draw.rectangle(box, outline=AXIS_COLOR)
    steps, values = np.asarray(steps, np.float64), np.asarray(values, np.float64)
    finite = np.isfinite(values)
    steps, values = steps[finite], values[finite]
    if len(values) == 0:
        draw.text((left + 8, top + 8), "no finite values", fill=TEXT_COLOR, font=font)
        return image
    low, high = values.min(), values.max()
    first, last = steps.min(), steps.max()
    x = box[0] + (steps - first) / max(last - first, 1e-12) * (box[2] - box[0])
    y = box[3] - (values - low) / max(high - low, 1e-12) * (box[3] - box[1])
    if len(values) == 1:
        draw.ellipse((x[0] - 2, y[0] - 2, x[0] + 2, y[0] + 2), fill=LINE_COLOR)
    else:
        order = np.argsort(steps, kind="stable")
        draw.line(list(zip(x[order], y[order])), fill=LINE_COLOR, width=2)
    draw.text((4, box[1]), _number(high), fill=TEXT_COLOR, font=font)
    draw.text((4, box[3] - 10), _number(low), fill=TEXT_COLOR, font=font)
    draw.text((box[0], box[3] + 4), f"step {int(first)}", fill=TEXT_COLOR, font=font)
    last_label = f"{int(last)}"
    draw.text((box[2] - draw.textlength(last_label, font=font), box[3] + 4), last_label, fill=TEXT_COLOR, font=font)
    return image


def draw_curves(curves):
    """An RGB uint8 picture with one panel per curve (values against steps), or None for no curves."""
    if not curves:
        return None
    font = ImageFont.load_default()
    rows = -(-len(curves) // COLUMNS)
    columns = min(COLUMNS, len(curves))
    picture = Image.new("RGB", (columns * PANEL[0], rows * PANEL[1]), "white")
    for index, (tag, (steps, values)) in enumerate(curves.items()):
        row, column = divmod(index, COLUMNS)
        picture.paste(_panel(tag, steps, values, font), (column * PANEL[0], row * PANEL[1]))
    return np.asarray(picture)
