"""The evaluation's pictures: a confusion matrix, and labelled rows of photos and rendered shapes."""

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from vaegan_utils.render import photo_cell, render_voxels, tile_cells

CELL = 40
TEXT = (30, 30, 30)


def confusion_picture(matrix, class_names, title):
    """A uint8 RGB picture of a confusion matrix: rows = true class, columns = predicted; each cell
    shaded by its share of the row and labelled with its count."""
    matrix = np.asarray(matrix)
    font = ImageFont.load_default()
    label_width = 8 + 7 * max(len(name) for name in class_names)
    size = len(class_names)
    top = 40 + label_width
    image = Image.new("RGB", (label_width + size * CELL + 10, top + size * CELL + 10), "white")
    draw = ImageDraw.Draw(image)
    draw.text((6, 6), title, fill=TEXT, font=font)
    draw.text((6, 20), "rows: true class, columns: predicted", fill=TEXT, font=font)
    shares = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    for i, name in enumerate(class_names):
        draw.text((4, top + i * CELL + CELL // 2 - 6), name, fill=TEXT, font=font)
        column = Image.new("RGB", (label_width, 14), "white")
        ImageDraw.Draw(column).text((2, 1), name, fill=TEXT, font=font)
        image.paste(column.rotate(90, expand=True), (label_width + i * CELL + CELL // 2 - 7, 36))
        for j in range(size):
            shade = int(255 - 200 * shares[i, j])
            box = (label_width + j * CELL, top + i * CELL, label_width + (j + 1) * CELL - 1, top + (i + 1) * CELL - 1)
            draw.rectangle(box, fill=(shade, shade, 255), outline=(200, 200, 200))
            color = "white" if shares[i, j] > 0.6 else TEXT
            draw.text((box[0] + 4, box[1] + CELL // 2 - 6), str(matrix[i, j]), fill=color, font=font)
    return np.asarray(image)


def labelled_rows(rows, cell_size=128):
    """One picture of rows of cells; each row is a list of (item, label), where an item is a photo
    (H, W, 3) or an occupancy grid (R, R, R) with R > 3, rendered at threshold 0.5."""
    cells, labels = [], []
    for row in rows:
        for item, label in row:
            item = np.asarray(item)
            is_photo = item.ndim == 3 and item.shape[-1] == 3
            cells.append(photo_cell(item, cell_size) if is_photo else render_voxels(item, size=cell_size))
            labels.append(label)
    return tile_cells(cells, len(rows[0]), labels)
