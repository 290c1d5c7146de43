"""data_tools.offscreen: frames from the child process, its reuse, and a child that hangs or fails."""

import os
import signal

import numpy as np
import pytest

from data_tools import offscreen

# Two triangles of a square facing the camera on -y, red and green.
SQUARE = np.array([[-0.4, 0, -0.4], [0.4, 0, -0.4], [0.4, 0, 0.4],
                   [-0.4, 0, -0.4], [0.4, 0, 0.4], [-0.4, 0, 0.4]], np.float64)
COLORS = np.repeat([[0.8, 0.1, 0.1], [0.1, 0.8, 0.1]], 3, axis=0)


def square(size=32):
    return offscreen.frame(SQUARE, COLORS, size, (0.0, -3.0, 0.0), (0.0, 0.0, 1.0), 30.0)


def test_a_frame_shows_the_triangles_over_black():
    image = square()
    assert image.shape == (32, 32, 3) and image.dtype == np.uint8
    assert not image[0, 0].any()  # black off the mesh
    red, green = image[..., 0] > 150, image[..., 1] > 150
    assert red.sum() > 50 and green.sum() > 50 and not (red & green).any()
    # Flat colours: the triangles share two corners, and no pixel blends them across the shared edge.
    assert {tuple(int(v) for v in pixel) for pixel in image[image.max(axis=-1) > 0]} == {(204, 26, 26), (26, 204, 26)}


def test_one_child_draws_every_size_and_repeats_its_frames():
    first = square(32)
    child = offscreen._CHILD.pid
    assert square(24).shape == (24, 24, 3)
    assert square(32).tobytes() == first.tobytes()
    assert offscreen._CHILD.pid == child


def test_a_hung_child_is_replaced_and_the_frame_asked_again(monkeypatch):
    expected = square()
    hung = offscreen._CHILD.pid
    os.kill(hung, signal.SIGSTOP)  # a frame that never ends, as llvmpipe's spinning thread did
    monkeypatch.setattr(offscreen, "FRAME_SECONDS", 10.0)
    assert square().tobytes() == expected.tobytes()
    assert offscreen._CHILD.pid not in (None, hung)
    with pytest.raises(ProcessLookupError):
        os.kill(hung, 0)  # killed and reaped


def test_no_frame_twice_is_an_error_naming_the_time_limit(monkeypatch):
    monkeypatch.setattr(offscreen, "FRAME_SECONDS", 0.0)
    with pytest.raises(RuntimeError, match=r"gave no frame of 32\^2 twice \(no frame after 0 s; then no frame"):
        square()
    monkeypatch.undo()
    assert square().shape == (32, 32, 3)  # the next call starts a working child


def test_a_frame_the_renderer_refuses_is_an_error_and_the_child_stays():
    square()
    child = offscreen._CHILD.pid
    with pytest.raises(RuntimeError, match="offscreen renderer failed"):
        offscreen.frame(SQUARE[:, :2], COLORS, 32, (0.0, -3.0, 0.0), (0.0, 0.0, 1.0), 30.0)
    assert offscreen._CHILD.pid == child


def test_a_forked_process_starts_its_own_child_and_leaves_its_parents_be():
    expected = square()
    parent_child = offscreen._CHILD.pid
    reader, writer = os.pipe()
    pid = os.fork()
    if pid == 0:  # the forked copy: a frame from its own child, then its exit stops that child only
        try:
            same = square().tobytes() == expected.tobytes()
            os.write(writer, b"1" if same and offscreen._CHILD.pid != parent_child else b"0")
            offscreen._CHILD.stop()
        finally:
            os._exit(0)
    os.waitpid(pid, 0)
    assert os.read(reader, 1) == b"1"
    assert offscreen._CHILD.pid == parent_child and square().tobytes() == expected.tobytes()
