"""Speed and size of the data_tools conversion and of reading its records, against plain baselines.

    PYTHONPATH=. python -m bench.data_pipeline            # 10-25 minutes on 2 shared cores (renders dominate)
    PYTHONPATH=. python -m bench.data_pipeline --quick    # fewer samples and steps

Measures, in one run:
  convert voxels   the ModelNet chair array (../shared/data) through `python -m data_tools modelnet`'s
                   pipeline (Beam DirectRunner, 2 worker processes, start-up included) against a plain
                   single-process loop doing the same per-sample work (validate, encode, write one file)
  convert renders  copies of the real ShapeNet OBJ with --views renders each (128 px) over the IKEA
                   photos as backgrounds, against a plain loop calling the same voxelizer and renderer
  read             tf.data samples/s of converted IKEA records (real photos) at 32^3 and 64^3, batch 32,
                   through keras_vaegan.data.make_dataset (decode, unpack, batch), against the rate a
                   real 3D-VAE-GAN train step at 32^3 (batch 32, 64x64 photos) consumes samples
  size             bytes per record against the raw float32 grid at 64^3
Prints a table and `RATIO <name> <value>` lines: for speed, baseline time / our time (above 1: we are
faster); `read_vs_train_step_32` = read rate / train-step consumption rate (goal >= 10);
`record_size_vs_raw_64` = raw float32 bytes / record bytes (goal >= 8).
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import shutil  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

from absl import app, flags  # noqa: E402

from vaegan_utils.cli import parse_flags  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.path.join(ROOT, "..", "shared", "data")
CHAIRS = os.path.join(SHARED, "modelnet10-chair-32.npy.gz")
IKEA = os.path.join(SHARED, "ikea-sample")
MESHES = os.path.join(SHARED, "meshes")
RUNNER = ("DirectRunner", 2, "multi_processing", "")

FLAGS = flags.FLAGS
flags.DEFINE_bool("quick", False, "Fewer samples, batches and steps.")
flags.DEFINE_integer("views", 2, "Renders per mesh in the rendering conversion.")
flags.DEFINE_integer("mesh_copies", 2, "Copies of the real ShapeNet OBJ in the rendering conversion.")


def timed(function, *args, **kwargs):
    start = time.perf_counter()
    result = function(*args, **kwargs)
    return result, time.perf_counter() - start


def convert(source, input_path, out_dir, **options):
    from data_tools.convert import convert as run
    from data_tools.sources import Settings

    settings = Settings(source=source, input_path=input_path, out_dir=out_dir, **options)
    found, _ = run(settings, RUNNER)
    return found


def plain_voxel_loop(out_path, limit):
    """The baseline: the same per-sample work as the pipeline, in one process, into one file."""
    import tensorflow as tf

    from data_tools import validate
    from keras_vaegan.data import encode_example
    from vaegan_utils import readers
    from vaegan_utils.resample import to_resolution

    grids = readers.read_voxel_array(CHAIRS)[:limit]
    count = 0
    with tf.io.TFRecordWriter(out_path) as writer:
        for index, grid in enumerate(grids):
            try:
                validate.check_voxels(grid)
            except validate.InvalidSample:
                continue
            voxels = to_resolution(grid, 32)
            writer.write(encode_example(voxels, class_name="chair", class_id=0, source_id=f"chair#{index}"))
            count += 1
    return count


def plain_render_loop(paths, views, backgrounds, out_path):
    import tensorflow as tf

    from data_tools import meshes, validate
    from keras_vaegan.data import encode_example
    from vaegan_utils import readers

    count = 0
    with tf.io.TFRecordWriter(out_path) as writer:
        for number, path in enumerate(paths):
            vertices, faces = readers.read_mesh(path)
            voxels = meshes.voxelize_mesh(vertices, faces, 32, up_axis="y")
            images = meshes.render_views(vertices, faces, views=views, image_size=128, seed=number,
                                         backgrounds=backgrounds, up_axis="y")
            for image in images:
                writer.write(encode_example(voxels, image=validate.encode_jpeg(image), class_name="x", class_id=0))
                count += 1
    return count


def mesh_folder(root, copies):
    """`copies` copies of the real ShapeNet OBJ (624 faces, y up) in one class folder."""
    folder = os.path.join(root, "birdhouse")
    os.makedirs(folder)
    paths = []
    for copy in range(copies):
        paths.append(os.path.join(folder, f"{copy}_model_normalized.obj"))
        shutil.copy(os.path.join(MESHES, "shapenet-model_normalized.obj"), paths[-1])
    return paths


def read_rate(out_dir, resolution, batches):
    from keras_vaegan.data import find_records, make_dataset

    files = [f for split in ("train", "val", "test") for f in find_records(os.path.join(out_dir, split))]
    dataset = make_dataset(files, resolution, 32, image_size=64, shuffle_buffer=256, seed=0, repeat=True)
    iterator = iter(dataset)
    for _ in range(3):
        next(iterator)
    start = time.perf_counter()
    for _ in range(batches):
        next(iterator)
    return batches * 32 / (time.perf_counter() - start)


def train_step_rate(steps):
    """Samples/s a real 3D-VAE-GAN train step (32^3, batch 32, 64x64 photos, float32) consumes,
    built as bench/train_step.py builds it (the one_device strategy, D always updated), on in-memory data."""
    import numpy as np
    import tensorflow as tf

    from keras_vaegan.config import ModelConfig, TrainConfig
    from keras_vaegan.distribute import make_strategy
    from keras_vaegan.models import build_model

    model_config = ModelConfig(model_type="vaegan", resolution=32, image_size=64).validate()
    train_config = TrainConfig(batch_size=32, d_accuracy_threshold=1.0, latent_prior="normal").validate()
    with make_strategy("one_device").scope():
        model = build_model(model_config, train_config)
    rng = np.random.default_rng(0)
    voxels = (rng.random((64, 32, 32, 32, 1)) < 0.1).astype("float32")
    images = rng.random((64, 64, 64, 3), dtype="float32")
    dataset = tf.data.Dataset.from_tensor_slices((images, voxels)).batch(32).cache().repeat().prefetch(2)
    model.fit(dataset, steps_per_epoch=2, epochs=1, verbose=0)
    start = time.perf_counter()
    model.fit(dataset, steps_per_epoch=steps, epochs=1, verbose=0)
    return steps * 32 / (time.perf_counter() - start)


def main(argv):
    del argv
    import numpy as np

    from keras_vaegan.data import encode_example

    limit = 200 if FLAGS.quick else 890
    batches = 20 if FLAGS.quick else 60
    steps = 3 if FLAGS.quick else 6
    rows, ratios = [], []
    work = tempfile.mkdtemp(prefix="bench-data-")
    try:
        # Voxels only.
        chairs = CHAIRS
        if FLAGS.quick:
            import gzip

            from vaegan_utils import readers
            chairs = os.path.join(work, "chairs.npy.gz")
            with gzip.open(chairs, "wb") as file:
                np.save(file, readers.read_voxel_array(CHAIRS)[:limit])
        found, ours = timed(convert, "modelnet", chairs, os.path.join(work, "chairs"))
        count, base = timed(plain_voxel_loop, os.path.join(work, "plain.tfrecord"), limit)
        assert count == found["records"], (count, found["records"])
        rows.append(("convert voxels (ModelNet chairs)", f"{count} records", f"{count / ours:.1f}",
                     f"{count / base:.1f}"))
        ratios.append(("convert_voxels_vs_plain_loop", base / ours))

        # With renders.
        from data_tools import meshes
        if hasattr(meshes, "render_views"):
            paths = mesh_folder(os.path.join(work, "meshes"), FLAGS.mesh_copies)
            backgrounds = os.path.join(IKEA, "Images")
            found, ours = timed(convert, "files", os.path.join(work, "meshes"), os.path.join(work, "renders"),
                                views=FLAGS.views, image_size=128, backgrounds=backgrounds, val_fraction=0,
                                test_fraction=0, up_axis="y")
            photos = sorted(os.path.join(backgrounds, n) for n in os.listdir(backgrounds))
            count, base = timed(plain_render_loop, paths, FLAGS.views, photos, os.path.join(work, "plain-r.tfrecord"))
            rows.append((f"convert + {FLAGS.views} renders/mesh (128 px)", f"{found['records']} records",
                         f"{found['records'] / ours:.1f}", f"{count / base:.1f}"))
            ratios.append(("convert_renders_vs_plain_loop", base / ours))
        else:
            rows.append(("convert + renders", "skipped: data_tools.meshes.render_views is missing", "", ""))

        # Reading, and what training consumes.
        rates = {}
        for resolution in (32, 64):
            out = os.path.join(work, f"ikea{resolution}")
            found = convert("ikea", IKEA, out, resolution=resolution)
            rates[resolution] = read_rate(out, resolution, batches)
            record_bytes = sum(s["bytes"] for split in found["shards"].values() for s in split) / found["records"]
            rows.append((f"read IKEA records {resolution}^3 + photo, batch 32", f"{record_bytes:.0f} B/record",
                         f"{rates[resolution]:.0f}", ""))
        consumed = train_step_rate(steps)
        rows.append(("train step 3D-VAE-GAN 32^3 batch 32 (consumes)", "", "", f"{consumed:.1f}"))
        ratios.append(("read_vs_train_step_32", rates[32] / consumed))

        raw = 64**3 * 4
        voxels_only = len(encode_example(np.ones((64, 64, 64), bool), class_name="chair", source_id="x" * 40))
        rows.append(("record size 64^3, voxels only", f"{voxels_only} B", "", f"raw float32 {raw} B"))
        rows.append(("record size 64^3 + IKEA photo (mean)", f"{record_bytes:.0f} B", "", f"raw float32 {raw} B"))
        ratios.append(("record_size_vs_raw_64", raw / record_bytes))
    finally:
        shutil.rmtree(work, ignore_errors=True)

    print(f"\n{'measurement':52s} {'what':28s} {'ours/s':>10s} {'baseline/s':>22s}")
    for name, what, ours_rate, base_rate in rows:
        print(f"{name:52s} {what:28s} {ours_rate:>10s} {base_rate:>22s}")
    print()
    for name, value in ratios:
        print(f"RATIO {name} {value:.2f}")


if __name__ == "__main__":
    app.run(main, flags_parser=lambda argv: parse_flags(FLAGS, argv))
