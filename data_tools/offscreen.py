"""Frames of open3d's headless offscreen renderer, drawn in a child process with a time limit.

A frame can hang: twice, a frame of the ShapeNet birdhouse at 128^2 kept
llvmpipe's thread at 100% CPU (once over 24 minutes, once over 6, both
stopped by hand), where the same frame usually takes a second. So frames are
drawn by one long-lived child process (`serve`), which keeps the renderer
between frames; when a frame takes more than FRAME_SECONDS, the child is
killed, a new one started and the frame asked for once more. A second failure
is a RuntimeError. The child never imports TensorFlow.
"""

import atexit
import contextlib
import gc
import os
import pickle
import select
import struct
import subprocess
import sys
import tempfile
import threading

import numpy as np

FRAME_SECONDS = 120.0  # frames here take 0.1-3 s, 12 s on a loaded machine; the renderer's start is 1 s more
_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_HEADER = struct.Struct("<Q")


def frame(vertices, colors, size, eye, up, field_of_view):
    """RGB uint8 (size, size, 3) of separate triangles over black (pure black only off the mesh).

    vertices: (3F, 3), three corners per triangle; colors: (3F, 3) in [0, 1],
    drawn as they are (unlit). The camera at `eye`, `up` its up direction,
    looks at the origin with a vertical `field_of_view` in degrees.
    """
    request = (np.asarray(vertices, np.float64), np.asarray(colors, np.float64), int(size),
               [float(v) for v in eye], [float(v) for v in up], float(field_of_view))
    return _CHILD.frame(request)


class _NoAnswer(Exception):
    """The child gave no frame: it took too long, or it ended."""


class _Child:
    """The parent's side: one child at a time, started when first needed, shared by threads under a lock."""

    def __init__(self):
        self._lock = threading.Lock()
        self._process, self._owner = None, None  # the child, and the pid of the process that started it
        atexit.register(self.stop)

    @property
    def pid(self):
        return self._process.pid if self._process is not None else None

    def frame(self, request):
        with self._lock:
            failures = []
            for _ in range(2):
                try:
                    return self._ask(request)
                except _NoAnswer as error:
                    failures.append(str(error))
                    self.stop()
            raise RuntimeError(f"open3d's offscreen renderer gave no frame of {request[2]}^2 twice "
                               f"({'; then '.join(failures)})")

    def stop(self):
        if self._process is not None and self._owner == os.getpid():  # a forked copy leaves its parent's child be
            self._process.kill()
            self._process.wait()
            for pipe in (self._process.stdin, self._process.stdout):
                pipe.close()
            self._process = None

    def _ask(self, request):
        if self._process is None or self._owner != os.getpid():
            self._start()
        try:
            _write_message(self._process.stdin, request)
        except BrokenPipeError:
            raise _NoAnswer(f"the renderer's process had ended (exit code {self._process.wait()})") from None
        if not select.select([self._process.stdout], [], [], FRAME_SECONDS)[0]:
            raise _NoAnswer(f"no frame after {FRAME_SECONDS:g} s")
        answer = _read_message(self._process.stdout)
        if answer is None:
            raise _NoAnswer(f"the renderer's process ended (exit code {self._process.wait()})")
        status, value = answer
        if status == "error":
            raise RuntimeError(value)
        return value

    def _start(self):
        path = os.environ.get("PYTHONPATH")
        environment = dict(os.environ, PYTHONPATH=os.pathsep.join([_ROOT] + ([path] if path else [])))
        self._process = subprocess.Popen(
            [sys.executable, "-c", "from data_tools.offscreen import serve; serve()"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=environment)
        self._owner = os.getpid()


_CHILD = _Child()


def _write_message(stream, value):
    payload = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(_HEADER.pack(len(payload)) + payload)
    stream.flush()


def _read_message(stream):
    """The next value, or None when the stream ends before a whole message."""
    header = stream.read(_HEADER.size)
    if len(header) < _HEADER.size:
        return None
    length = _HEADER.unpack(header)[0]
    payload = stream.read(length)
    return pickle.loads(payload) if len(payload) == length else None


def serve():
    """The child's loop: a frame for each request on stdin, answered on stdout, until stdin ends."""
    answers = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # what the C++ code prints goes to stderr, never into the answers
    requests = sys.stdin.buffer
    renderer = _Renderer()
    while (request := _read_message(requests)) is not None:
        try:
            answer = ("frame", renderer.render(*request))
        except Exception as error:  # the parent raises it: the child stays up for the next frame
            answer = ("error", f"open3d's offscreen renderer failed: {error}")
        _write_message(answers, answer)


class _Renderer:
    """One open3d OffscreenRenderer, reused across frames and rebuilt for a new size.

    Measured on this machine (2 cores shared with other jobs, Mesa llvmpipe
    through Filament's Vulkan backend, headless): creating it takes 0.3-0.6 s
    and its first frame 0.3-0.6 s. A view (then a color and a depth frame) of
    the real meshes took 0.1-0.3 s of CPU time, but 0.35-3 s for ModelNet
    chair_0001 (thin tubes of sliver triangles; 12 s of wall time with the
    machine loaded); a depth frame costs as much as a color frame, so views
    now take one frame. What is needed to make it work and fast here: the
    unlit shader with our own shading baked into vertex colors (`defaultLit`
    frames took 5-15 s, and a second lit frame ran for over 5 minutes), the
    skybox off (2-20 s per frame with it), and post-processing, shadows and
    ambient occlusion off (which also makes frames repeatable). Filament
    aborts the process at exit when two renderers are alive, so the old one is
    dropped before a new size is made. With TensorFlow imported first, the
    first frame crashed the process (Mesa's lavapipe bound to TensorFlow's
    LLVM), which the child, importing no TensorFlow, avoids. Frame times used
    to vary widely between runs (one run of tests/test_meshes.py took 144 s,
    the next 17 s): open3d filled the texture coordinates of a mesh without
    any from whatever memory held, and llvmpipe shaded some of those frames
    for seconds to minutes; every vertex now has its own (`render`).
    """

    def __init__(self):
        self._size, self._renderer = None, None

    def render(self, vertices, colors, size, eye, up, field_of_view):
        import open3d as o3d
        from open3d.visualization import rendering

        mesh = o3d.geometry.TriangleMesh(o3d.utility.Vector3dVector(vertices),
                                         o3d.utility.Vector3iVector(np.arange(len(vertices), dtype=np.int32)
                                                                    .reshape(-1, 3)))
        mesh.vertex_colors = o3d.utility.Vector3dVector(colors)
        # Without texture coordinates open3d uploads uninitialized ones, and llvmpipe took 5-150 s over some
        # frames instead of 0.01 s (which ones depended on what memory held). Every vertex gets its own:
        # equal ones let open3d merge the corners neighbouring triangles share and blend their colors.
        mesh.triangle_uvs = o3d.utility.Vector2dVector(
            np.stack([np.arange(len(vertices)) / len(vertices), np.zeros(len(vertices))], axis=1))
        renderer = self._get(size)
        material = rendering.MaterialRecord()
        material.shader = "defaultUnlit"
        renderer.scene.add_geometry("mesh", mesh, material)
        try:
            renderer.setup_camera(field_of_view, [0.0, 0.0, 0.0], eye, up)
            return np.asarray(renderer.render_to_image())
        finally:
            renderer.scene.clear_geometry()

    def _get(self, size):
        if self._size == size:
            return self._renderer
        from open3d.visualization import rendering

        if self._renderer is not None:
            self._renderer, self._size = None, None
            gc.collect()
        with _silenced_output() as captured:
            try:
                renderer = rendering.OffscreenRenderer(size, size)
            except Exception as error:
                raise RuntimeError(f"could not start: {error}; "
                                   f"its output: {captured.read()[-500:]}") from error
        view = renderer.scene.view
        view.set_post_processing(False)
        view.set_antialiasing(False)
        view.set_shadowing(False, rendering.View.ShadowType.PCF)
        view.set_ambient_occlusion(False)
        renderer.scene.show_skybox(False)
        renderer.scene.set_background([0.0, 0.0, 0.0, 1.0])
        self._renderer, self._size = renderer, size
        return renderer


@contextlib.contextmanager
def _silenced_output():
    """Sends what C++ code writes to stdout and stderr into a temporary file (yielded, for errors)."""
    with tempfile.TemporaryFile("w+") as captured:
        sys.stdout.flush()
        sys.stderr.flush()
        saved = [os.dup(1), os.dup(2)]
        try:
            os.dup2(captured.fileno(), 1)
            os.dup2(captured.fileno(), 2)
            yield captured
        finally:
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)
            captured.seek(0)
