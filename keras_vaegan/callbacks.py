"""Training callbacks: progress, TensorBoard scalars, sample pictures and meshes, NaN guard."""

import math
import os
import signal
import threading

import keras
import numpy as np
import tensorflow as tf

from keras_vaegan import mesh_summaries
from vaegan_utils import render

# The trackers already average since the last checkpoint: shown as they are.
METRIC_NAMES = ("d_loss", "g_loss", "d_acc", "d_updated", "kl_loss", "recon_loss")


def current_step(model):
    """The model's global step (survives checkpoints, unlike Keras' batch index)."""
    return int(keras.ops.convert_to_numpy(model.step.value))


class ProgressBar(keras.callbacks.Callback):
    """One Keras progress bar over the whole run (rate and ETA), across resumes and phases."""

    def __init__(self, total_steps, initial_step):
        super().__init__()
        self.progbar = keras.utils.Progbar(total_steps, stateful_metrics=METRIC_NAMES, unit_name="step")
        self.progbar.update(initial_step)

    def on_train_batch_end(self, batch, logs=None):
        values = [(name, float(value)) for name, value in (logs or {}).items()]
        self.progbar.update(current_step(self.model), values=values)


class ScalarSummaries(keras.callbacks.Callback):
    """Writes the step's metrics to TensorBoard every `every` steps, keyed by the global step."""

    def __init__(self, writer, every):
        super().__init__()
        self.writer = writer
        self.every = every

    def on_train_batch_end(self, batch, logs=None):
        step = current_step(self.model)
        if step % self.every:
            return
        with self.writer.as_default(step=step):
            for name, value in (logs or {}).items():
                tf.summary.scalar(name, float(value))


class NonFiniteLoss(RuntimeError):
    """A loss became NaN or infinite; the message names the step and the metric."""


class NaNGuard(keras.callbacks.Callback):
    """Stops training at the first non-finite metric and remembers where."""

    def __init__(self):
        super().__init__()
        self.failure = None
        self.step = None

    def on_train_batch_end(self, batch, logs=None):
        for name, value in (logs or {}).items():
            if not math.isfinite(float(value)):
                self.step = current_step(self.model)
                self.failure = f"step {self.step}: {name} is {float(value)}"
                self.model.stop_training = True
                return

    def check_weights(self):
        """Flags the step when a weight is NaN or infinite (an update can blow up while its loss is finite)."""
        if not all(np.isfinite(keras.ops.convert_to_numpy(w)).all() for w in self.model.weights):
            self.step = current_step(self.model)
            self.failure = f"step {self.step}: the weights are not finite"


class StopOnSignal(keras.callbacks.Callback):
    """While entered, SIGTERM and SIGINT ask training to stop after the current step.

    `signal_name` is then e.g. "SIGTERM"; the training loop writes a checkpoint
    and ends. Outside the main thread (where Python cannot install handlers) it
    does nothing.
    """

    SIGNALS = (signal.SIGTERM, signal.SIGINT)

    def __init__(self):
        super().__init__()
        self.signal_name = None
        self.previous = {}

    def _handle(self, number, frame):
        self.signal_name = signal.Signals(number).name

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self.previous = {number: signal.signal(number, self._handle) for number in self.SIGNALS}
        return self

    def __exit__(self, *exc):
        for number, handler in self.previous.items():
            signal.signal(number, handler)
        self.previous = {}

    def on_train_batch_end(self, batch, logs=None):
        if self.signal_name:
            self.model.stop_training = True


class FixedShapes(keras.callbacks.Callback):
    """Base of the callbacks that show, every `every` steps, the shapes of the same
    latent vectors (and, for 3D-VAE-GAN, the same photos' reconstructions) so that
    progress is visible. Subclasses implement `write(step)`.
    """

    def __init__(self, writer, every, latent, images=None):
        super().__init__()
        self.writer = writer
        self.every = every
        self.latent = latent
        self.images = images

    def on_train_batch_end(self, batch, logs=None):
        step = current_step(self.model)
        if step % self.every == 0:
            self.write(step)

    def shapes(self):
        """The generator's occupancy grids for the fixed latent vectors (numpy)."""
        return keras.ops.convert_to_numpy(self.model.generator(self.latent, training=False))

    def reconstructions(self):
        """E+G's occupancy grids for the fixed photos (numpy); call only when `images` is set."""
        return keras.ops.convert_to_numpy(self.model.reconstruct(self.images))


class SamplePictures(FixedShapes):
    """PNG grids of the fixed shapes (and photos beside their reconstructions), also to TensorBoard.

    Writes `samples.png` / `reconstructions.png` in `out_dir` and a copy per step
    under `out_dir/samples/`.
    """

    def __init__(self, out_dir, writer, every, latent, images=None, cell_size=128):
        super().__init__(writer, every, latent, images)
        self.out_dir = out_dir
        self.cell_size = cell_size  # pixels per shape

    def write(self, step):
        """Renders and saves the pictures for `step`."""
        pictures = {"samples": render.render_grid(self.shapes(), cell_size=self.cell_size)}
        if self.images is not None:
            pictures["reconstructions"] = render.side_by_side(self.images, self.reconstructions(),
                                                              cell_size=self.cell_size)
        os.makedirs(os.path.join(self.out_dir, "samples"), exist_ok=True)
        with self.writer.as_default(step=step):
            for name, picture in pictures.items():
                render.save_png(picture, os.path.join(self.out_dir, f"{name}.png"))
                render.save_png(picture, os.path.join(self.out_dir, "samples", f"{name}-{step:07d}.png"))
                tf.summary.image(name, picture[np.newaxis], max_outputs=1)


class MeshSummaries(FixedShapes):
    """The fixed shapes (and photos beside their reconstructions) as TensorBoard meshes (`mesh_summaries`)."""

    def write(self, step):
        """Writes the `samples` (and `reconstructions`) scenes for `step`."""
        shapes = self.shapes()
        resolution = shapes.shape[1]
        with self.writer.as_default(step=step):
            cells = [mesh_summaries.shape_cell(shape) for shape in shapes]
            mesh_summaries.write_scene("samples", cells, resolution, columns=4, step=step)
            if self.images is not None:
                cells = []
                for image, shape in zip(self.images, self.reconstructions()):
                    cells += [mesh_summaries.photo_cell(image, resolution), mesh_summaries.shape_cell(shape)]
                mesh_summaries.write_scene("reconstructions", cells, resolution, columns=4, step=step)
