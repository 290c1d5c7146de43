"""The report page and TensorBoard's mesh tab in a real browser (headless Chromium, software WebGL).

Each test screenshots the page, checks that the 3D canvases drew shapes (pixels of
the shape colour) and that the page logged no JavaScript error. Slow: `-m large`.
"""

import os
import socket
import subprocess
import sys
import time
import urllib.request

import numpy as np
import pytest
import tensorflow as tf

from browser import Browser, chromium_path
from conftest import box_voxels
from keras_vaegan import callbacks, report_page

pytestmark = [
    pytest.mark.large,
    pytest.mark.skipif(chromium_path() is None, reason="chromium is not installed (scripts/setup_env.sh dev)"),
]


def sphere(resolution=32, radius=10):
    axis = np.arange(resolution) + 0.5
    x, y, z = np.meshgrid(axis, axis, axis, indexing="ij")
    inside = (x - 16) ** 2 + (y - 16) ** 2 + (z - radius - 1) ** 2 < radius**2
    return inside[..., None].astype(np.float32)


def shape_pixels(picture):
    """How many pixels have the purple of the shapes (bright or shaded): blue and red well above green."""
    rgb = np.asarray(picture).astype(int)
    return int(((rgb[..., 2] - rgb[..., 1] > 50) & (rgb[..., 0] - rgb[..., 1] > 25)).sum())


def test_report_draws_every_shape_turns_on_drag_and_logs_no_error(tmp_path):
    box = box_voxels(32, (6, 10, 0), (26, 22, 8))
    empty = np.zeros_like(box)
    photos = np.random.default_rng(0).random((1, 32, 32, 3)).astype(np.float32)
    path = report_page.write_report(
        str(tmp_path / "report"), "browser test", samples=np.stack([sphere(), box, empty]),
        interpolation=np.stack([box, sphere()]), reconstructions=(photos, np.stack([sphere()])),
    )
    with Browser(tmp_path / "profile") as browser:
        browser.open(f"file://{path}", "document.body && document.body.dataset.drawn === '6'")
        rects = browser.evaluate(
            "Array.from(document.querySelectorAll('canvas.shape')).map(c => {"
            "  c.scrollIntoView(); const r = c.getBoundingClientRect();"
            "  return {x: r.x + window.scrollX, y: r.y + window.scrollY, width: r.width, height: r.height}; })"
        )
        assert len(rects) == 6
        counts = [shape_pixels(browser.screenshot(clip=rect)) for rect in rects]
        assert browser.evaluate("document.getElementById('no-webgl').hidden") is True
        assert all(count > 500 for count in counts[:2] + counts[3:]), counts
        assert counts[2] == 0, counts  # the empty grid shows only its floor outline
        first = rects[0]
        before = np.asarray(browser.screenshot(clip=first))
        browser.evaluate("window.scrollTo(0, 0)")
        top = browser.evaluate("document.querySelector('canvas.shape').getBoundingClientRect().top")
        x, y = first["x"] + first["width"] / 2, top + first["height"] / 2
        browser.call("Input.dispatchMouseEvent", type="mousePressed", x=x, y=y, button="left", buttons=1, clickCount=1)
        for step in range(1, 6):
            browser.call("Input.dispatchMouseEvent", type="mouseMoved", x=x + 12 * step, y=y + 4 * step,
                         button="left", buttons=1)
        browser.call("Input.dispatchMouseEvent", type="mouseReleased", x=x + 60, y=y + 20, button="left", buttons=1,
                     clickCount=1)
        after = np.asarray(browser.screenshot(clip=first))
        assert (np.abs(after.astype(int) - before).sum(axis=-1) > 30).sum() > 200  # the drag turned the sphere
        assert shape_pixels(after) > 500
        assert browser.errors == []


def test_report_without_webgl_shows_a_still_picture_of_every_shape(tmp_path):
    box = box_voxels(32, (6, 10, 0), (26, 22, 8))
    path = report_page.write_report(str(tmp_path / "report"), "no webgl", samples=np.stack([sphere(), box]),
                                    interpolation=np.stack([box, sphere()]))
    with Browser(tmp_path / "profile", extra_flags=("--disable-webgl", "--disable-3d-apis")) as browser:
        browser.open(f"file://{path}", "document.readyState === 'complete'")
        assert browser.evaluate("document.getElementById('no-webgl').hidden") is False
        assert browser.evaluate("Array.from(document.querySelectorAll('canvas.shape')).every("
                                "c => c.getBoundingClientRect().width === 0)")
        rects = browser.evaluate(
            "Array.from(document.querySelectorAll('img.still')).map(c => {"
            "  const r = c.getBoundingClientRect();"
            "  return {x: r.x + window.scrollX, y: r.y + window.scrollY, width: r.width, height: r.height}; })"
        )
        assert len(rects) == 4 and all(rect["width"] > 100 for rect in rects)
        pictures = [np.asarray(browser.screenshot(clip=rect)).astype(int) for rect in rects]
        counts = [int((picture[..., 2] - picture[..., 0] > 60).sum()) for picture in pictures]  # the stills' blue
        assert min(counts) > 500, counts
        assert browser.errors == []


class FixedShapes:
    """Stands in for a trained model: its generator and reconstructions are a sphere and a box."""

    grids = np.stack([sphere(), box_voxels(32, (6, 10, 0), (26, 22, 8))])

    def generator(self, latent, training=False):
        return self.grids[np.arange(len(latent)) % 2]

    def reconstruct(self, images):
        return self.grids[np.arange(len(images)) % 2]


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def tensorboard(tmp_path):
    """A TensorBoard serving a tiny run's logs (scalars and the mesh callback's scenes); yields its URL."""
    logdir = tmp_path / "logs"
    writer = tf.summary.create_file_writer(str(logdir))
    meshes = callbacks.MeshSummaries(writer, every=1, latent=np.zeros((4, 8), np.float32),
                                     images=np.full((2, 32, 32, 3), 0.6, np.float32))
    meshes.set_model(FixedShapes())
    for step in (1, 2):
        meshes.write(step)
        with writer.as_default(step=step):
            tf.summary.scalar("d_loss", 1.0 / step)
    writer.flush()
    port = free_port()
    server = subprocess.Popen(
        [os.path.join(os.path.dirname(sys.executable), "tensorboard"), "--logdir", str(logdir),
         "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"{url}/data/plugins_listing", timeout=5) as reply:
                    if b'"mesh"' in reply.read():
                        break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise
            time.sleep(1)
        yield url
    finally:
        server.kill()
        server.wait(timeout=30)


def test_tensorboard_mesh_tab_draws_the_logged_shapes(tensorboard, tmp_path):
    with Browser(tmp_path / "profile") as browser:
        browser.open(f"{tensorboard}/#mesh", "document.readyState === 'complete'")
        deadline = time.monotonic() + 180
        drawn = 0
        while drawn < 5000 and time.monotonic() < deadline:
            time.sleep(3)
            picture = browser.screenshot()
            drawn = shape_pixels(np.asarray(picture)[80:])  # below TensorBoard's orange header
        picture.save(tmp_path / "tensorboard.png")
        assert drawn >= 5000, f"the mesh tab drew {drawn} shape pixels (screenshot: {tmp_path / 'tensorboard.png'})"
        assert browser.errors == []
