"""TensorBoard mesh summaries: scene geometry, the callback's events, and the training flag."""

import glob
import os

import numpy as np
import pytest
import tensorflow as tf
from tensorboard.backend.event_processing import event_accumulator
from tensorboard.plugins.mesh import metadata
from tensorboard.plugins.mesh import plugin_data_pb2
from tensorboard.util import tensor_util

from conftest import box_voxels, in_process
from data_tools.synthetic import write_synthetic_dataset
from keras_vaegan import callbacks, mesh_summaries, training
from keras_vaegan.config import ConfigError, ModelConfig, TrainConfig
from vaegan_utils.mesh import occupancy_mesh, signed_volume

VERTEX = plugin_data_pb2.MeshPluginData.VERTEX
FACE = plugin_data_pb2.MeshPluginData.FACE
COLOR = plugin_data_pb2.MeshPluginData.COLOR


def face_normals(vertices, faces):
    triangles = vertices[faces]
    return np.cross(triangles[:, 1] - triangles[:, 0], triangles[:, 2] - triangles[:, 0])


def test_photo_cell_is_a_board_of_its_pixels_facing_the_front():
    image = np.zeros((64, 48, 3), np.float32)
    image[:32] = (1.0, 0.0, 0.0)  # top half red, bottom half black
    vertices, faces, colors = mesh_summaries.photo_cell(image, resolution=32)
    pixels = mesh_summaries.PHOTO_PIXELS**2
    assert vertices.shape == (pixels * 4, 3) and faces.shape == (pixels * 2, 3) and colors.shape == (pixels * 4, 3)
    assert vertices.min(axis=0).tolist() == [0, 16, 0] and vertices.max(axis=0).tolist() == [32, 16, 32]
    normals = face_normals(vertices, faces)
    assert (normals[:, 1] < 0).all() and np.allclose(normals[:, [0, 2]], 0)  # every quad faces -y
    top = vertices[:, 2] > 24
    bottom = vertices[:, 2] < 8
    assert (colors[top] == (255, 0, 0)).all() and (colors[bottom] == 0).all()


def test_shape_cell_is_the_export_mesh_in_one_colour():
    grid = box_voxels(32, (4, 6, 0), (20, 10, 12))
    vertices, faces, colors = mesh_summaries.shape_cell(grid)
    expected_vertices, expected_faces = occupancy_mesh(grid)
    np.testing.assert_array_equal(vertices, expected_vertices)
    np.testing.assert_array_equal(faces, expected_faces)
    assert (colors == mesh_summaries.SHAPE_COLOR).all()


def test_layout_places_cells_in_rows_on_tiles_and_an_empty_grid_leaves_its_tile_bare():
    box = mesh_summaries.shape_cell(box_voxels(32, (0, 0, 0), (32, 32, 32)))
    empty = mesh_summaries.shape_cell(np.zeros((32, 32, 32), np.float32))
    assert len(empty[0]) == 0
    vertices, faces, colors = mesh_summaries.layout([box, empty, box], resolution=32, columns=2)
    assert len(vertices) == len(colors) == 3 * 4 + 2 * len(box[0])
    assert len(faces) == 3 * 2 + 2 * len(box[1]) and faces.max() == len(vertices) - 1
    pitch = 32 * (1 + mesh_summaries.GAP)
    third_box = vertices[-len(box[0]):]
    np.testing.assert_allclose(third_box.min(axis=0), [0, 0, -pitch], atol=0.5)  # first column, second row
    offset = len(vertices) - len(box[0])
    assert signed_volume(vertices[offset:], faces[-len(box[1]):] - offset) > 0  # still wound outwards


def test_to_y_up_keeps_handedness_and_puts_z_up():
    axes = mesh_summaries.to_y_up(np.eye(3, dtype=np.float32))
    assert axes[2].tolist() == [0, 1, 0]  # z becomes the viewer's up
    assert np.linalg.det(axes) == pytest.approx(1)


def mesh_events(logdir):
    """{(summary name, component): [(step, array), ...]} of the mesh summaries under logdir."""
    accumulator = event_accumulator.EventAccumulator(logdir, size_guidance={event_accumulator.TENSORS: 0})
    accumulator.Reload()
    found = {}
    for tag in accumulator.Tags()[event_accumulator.TENSORS]:
        plugin_data = accumulator.SummaryMetadata(tag).plugin_data
        if plugin_data.plugin_name != metadata.PLUGIN_NAME:
            continue
        parsed = metadata.parse_plugin_metadata(plugin_data.content)
        found[(parsed.name, parsed.content_type)] = [
            (event.step, tensor_util.make_ndarray(event.tensor_proto)) for event in accumulator.Tensors(tag)
        ]
    return found


class FixedShapes:
    """Stands in for a model: the generator and the reconstructions are fixed boxes."""

    def __init__(self, grids):
        self.grids = grids

    def generator(self, latent, training=False):
        return self.grids[: len(latent)]

    def reconstruct(self, images):
        return self.grids[: len(images)]


def test_callback_writes_samples_and_photo_reconstruction_scenes(tmp_path):
    grids = np.stack([box_voxels(32, (2, 2, 0), (10, 10, 20)), np.zeros((32, 32, 32, 1), np.float32)])
    images = np.full((2, 32, 32, 3), 0.5, np.float32)
    writer = tf.summary.create_file_writer(str(tmp_path))
    callback = callbacks.MeshSummaries(writer, every=5, latent=np.zeros((2, 8), np.float32), images=images)
    callback.set_model(FixedShapes(grids))
    for step in (5, 10):
        callback.write(step)
    writer.flush()
    events = mesh_events(str(tmp_path))
    assert set(events) == {(name, part) for name in ("samples", "reconstructions") for part in (VERTEX, FACE, COLOR)}
    assert [step for step, _ in events[("samples", VERTEX)]] == [5, 10]
    box_vertices = len(occupancy_mesh(grids[0])[0])
    samples = events[("samples", VERTEX)][0][1]
    assert samples.shape == (1, 2 * 4 + box_vertices, 3)  # two tiles, one box, the empty grid adds nothing
    photos = events[("reconstructions", VERTEX)][0][1]
    assert photos.shape == (1, 4 * 4 + 2 * mesh_summaries.PHOTO_PIXELS**2 * 4 + box_vertices, 3)
    faces = events[("reconstructions", FACE)][0][1]
    assert faces.max() == photos.shape[1] - 1
    assert (events[("reconstructions", COLOR)][0][1] == 127).all(axis=-1).sum() == 2 * mesh_summaries.PHOTO_PIXELS**2 * 4


@pytest.fixture(scope="module")
def dataset_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("synthetic")
    write_synthetic_dataset(str(out), resolution=32, shapes_per_class=1, views_per_shape=1, image_size=32, num_shards=1)
    return str(out)


def test_training_logs_meshes_every_n_steps_and_none_when_off(tmp_path, dataset_dir):
    model_config = ModelConfig(model_type="vaegan", resolution=32, image_size=32)
    settings = dict(batch_size=2, train_steps=2, checkpoint_every=2, sample_every=2, log_every=1, picture_size=32)
    training.train(model_config, TrainConfig(mesh_summary_every=1, **settings), dataset_dir, str(tmp_path / "on"),
                   verbose=False)
    events = mesh_events(str(tmp_path / "on" / "logs"))
    assert [step for step, _ in events[("samples", VERTEX)]] == [1, 2]
    assert [step for step, _ in events[("reconstructions", VERTEX)]] == [1, 2]
    gan_config = ModelConfig(model_type="gan", resolution=32)
    settings.update(train_steps=1, checkpoint_every=1, sample_every=1)
    training.train(gan_config, TrainConfig(mesh_summary_every=0, **settings), dataset_dir, str(tmp_path / "off"),
                   verbose=False)
    assert glob.glob(str(tmp_path / "off" / "logs" / "events.*")) and mesh_events(str(tmp_path / "off" / "logs")) == {}


def test_negative_interval_is_refused_by_config_and_cli(tmp_path, capsys):
    import train

    with pytest.raises(ConfigError, match="mesh_summary_every"):
        TrainConfig(mesh_summary_every=-1).validate()
    result = in_process(train.main, train.FLAGS, capsys)(f"--data_dir={tmp_path}", f"--model_dir={tmp_path / 'r'}",
                                                         "--mesh_summary_every=-1")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("error: --mesh_summary_every:")
