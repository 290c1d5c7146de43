"""The 3D report: one self-contained HTML page of rotatable shapes, with their meshes beside it.

The page embeds everything it shows (meshes as base64 arrays, photos and curves as
PNG data URLs) and draws with plain WebGL from `report_viewer.html`, so it opens
from the file system without network access. Every shape also has a still
picture (one shaded view), which the page shows instead of the canvases where
the browser has no WebGL or no JavaScript. Each shape is also written as a PLY
file under `meshes/`, through `vaegan_utils.mesh` (the project's one marching cubes).
"""

import base64
import html
import io
import json
import os

import numpy as np
from PIL import Image

from vaegan_utils import render
from vaegan_utils.files import write_bytes_atomically
from vaegan_utils.mesh import occupancy_mesh, write_ply

PAGE_NAME = "index.html"
CURVES_NAME = "curves.png"
MESH_DIR = "meshes"
CANVAS_SIZE = 180
PAIRS_PER_ROW = 3
THRESHOLD = 0.5
TEMPLATE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "report_viewer.html")


def grid_status(grid):
    """How much of a grid is occupied, in words: empty and full grids are named as such."""
    occupied = int((np.asarray(grid) > THRESHOLD).sum())
    if occupied == 0:
        return "empty: no voxel above 0.5"
    if occupied == np.asarray(grid).size:
        return "full: every voxel above 0.5"
    return f"{occupied} voxels"


def _png_data_url(rgb):
    buffer = io.BytesIO()
    Image.fromarray(np.asarray(rgb, np.uint8)).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _photo_url(image):
    return _png_data_url(np.clip(np.asarray(image) * 255, 0, 255).round())


class _Page:
    """Collects the shapes (meshes + PLY files) and the HTML of the page's sections."""

    def __init__(self, out_dir):
        self.out_dir = out_dir
        self.shapes = []
        self.parts = []

    def shape(self, grid, name, caption):
        """A rotatable canvas for `grid`; its mesh goes into the page and into meshes/<name>.ply."""
        grid = np.asarray(grid, np.float32)
        vertices, faces = occupancy_mesh(grid)
        write_ply(os.path.join(self.out_dir, MESH_DIR, f"{name}.ply"), vertices, faces)
        self.shapes.append({
            "resolution": int(grid.shape[0]),
            "vertices": base64.b64encode(vertices.astype("<f4").tobytes()).decode("ascii"),
            "faces": base64.b64encode(faces.astype("<u4").tobytes()).decode("ascii"),
        })
        label = html.escape(f"{caption} ({grid_status(grid)})")
        still = _png_data_url(render.render_voxels(grid, size=CANVAS_SIZE, threshold=THRESHOLD))
        return (
            f'<figure><canvas class="shape" data-shape="{len(self.shapes) - 1}" width="{CANVAS_SIZE}" '
            f'height="{CANVAS_SIZE}" title="drag to turn, double-click to reset"></canvas>'
            f'<img class="still" alt="{label}" src="{still}">'
            f'<figcaption><a href="{MESH_DIR}/{name}.ply">{label}</a></figcaption></figure>'
        )

    def add(self, markup):
        self.parts.append(markup)

    def note(self, message):
        self.add(f'<p class="note">{html.escape(message)}</p>')


def write_report(out_dir, title, samples, interpolation, reconstructions=None, curves=None, notes=None):
    """Writes `out_dir/index.html`, `out_dir/meshes/*.ply` and, with curves, `out_dir/curves.png`.

    samples, interpolation: grids (N, R, R, R[, 1]); reconstructions: (photos (N, S, S, 3) in
    [0, 1], grids) or None; curves: an RGB picture or None; notes: {section: message} shown in
    place of a missing section ("reconstructions", "curves"). Returns the page's path.
    """
    notes = notes or {}
    os.makedirs(os.path.join(out_dir, MESH_DIR), exist_ok=True)
    page = _Page(out_dir)
    page.add(f"<h1>{html.escape(title)}</h1>")
    page.add('<p class="hint">Drag a shape to turn it; double-click puts it back. '
             '<label><input type="checkbox" id="turn-together"> turn all shapes together</label></p>')
    page.add('<p class="note" id="no-webgl" hidden>This browser has no WebGL: each shape is shown as a still '
             'picture from one side, and cannot be turned.</p>')

    page.add("<h2>Random samples</h2>")
    page.add('<p class="hint">Shapes the generator makes from random latent vectors z.</p>')
    page.add('<div class="strip">' + "".join(
        page.shape(grid, f"sample-{i:02d}", f"sample {i}") for i, grid in enumerate(samples)) + "</div>")

    page.add("<h2>Latent interpolation</h2>")
    page.add('<p class="hint">From one random z (left) to another (right) in equal steps.</p>')
    last = max(len(interpolation) - 1, 1)
    page.add('<div class="strip">' + "".join(
        page.shape(grid, f"interpolation-{i:02d}", f"t = {i / last:.2f}") for i, grid in enumerate(interpolation))
        + "</div>")

    page.add("<h2>Photos and their reconstructions</h2>")
    if reconstructions is None:
        page.note(notes.get("reconstructions", "no photos were given"))
    else:
        cells = [
            f'<td><img class="photo" alt="photo {i}" src="{_photo_url(photo)}"></td>'
            f'<td>{page.shape(grid, f"reconstruction-{i:02d}", f"reconstruction {i}")}</td>'
            for i, (photo, grid) in enumerate(zip(*reconstructions))
        ]
        rows = ["<tr>" + "".join(cells[i : i + PAIRS_PER_ROW]) + "</tr>" for i in range(0, len(cells), PAIRS_PER_ROW)]
        page.add('<table class="pairs">' + "".join(rows) + "</table>")

    page.add("<h2>Training curves</h2>")
    if curves is None:
        page.note(notes.get("curves", "no training curves"))
    else:
        render.save_png(curves, os.path.join(out_dir, CURVES_NAME))
        page.add(f'<img class="curves" alt="training curves" src="{_png_data_url(curves)}">')

    with open(TEMPLATE, encoding="utf-8") as handle:
        template = handle.read()
    shapes_json = json.dumps(page.shapes).replace("</", "<\\/")
    markup = (template.replace("<!--TITLE-->", html.escape(title))
              .replace("<!--BODY-->", "\n".join(page.parts))
              .replace("<!--SHAPES-->", shapes_json))
    path = os.path.join(out_dir, PAGE_NAME)
    write_bytes_atomically(path, markup.encode("utf-8"))
    return path
