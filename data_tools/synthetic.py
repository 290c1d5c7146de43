"""Writes a synthetic 3D-VAE-GAN dataset: procedural furniture and rendered photos of it.

    python -m data_tools.synthetic --out DIR [--resolution 32|64] [--shapes_per_class N]
        [--views_per_shape K] [--image_size S] [--num_shards M] [--seed S] [--variety V] [--first_shape F]

One record per (shape, view): the voxels of a data_tools.shapes shape, and a
JPEG of it in a random color from a random viewpoint over a random
procedural background. DIR gets `train.tfrecord-*` shards, `classes.txt` and
`preview.png`. The output depends only on the arguments.

Shape i of a class is the same for every count: `--first_shape F` writes
shapes F, F+1, ... of each class, so a set written after one of
`--shapes_per_class F` (same seed and variety) holds only shapes that one has
not: a held-out set. `--variety` below 1 makes the shapes of a class more alike.
"""

import os

import numpy as np
from absl import flags

from data_tools.photos import render_photo
from data_tools.shapes import CLASSES, make_shape
from vaegan_utils import render
from vaegan_utils.cli import ProgressCounter, console_entry, fail, parse_flags
from vaegan_utils.files import write_bytes_atomically

PREVIEW_PER_CLASS = 4

FLAGS = flags.FlagValues()


def check_arguments(out_dir, resolution, shapes_per_class, views_per_shape, image_size, num_shards, seed,
                    variety=1.0, first_shape=0):
    """Raises ValueError('<flag name>: what is wrong') for the first bad argument."""
    records = len(CLASSES) * shapes_per_class * views_per_shape
    checks = (
        ("out", bool(out_dir), "no output directory given"),
        ("out", not out_dir or not os.path.exists(out_dir) or os.path.isdir(out_dir), f"{out_dir} is not a directory"),
        ("resolution", resolution in (32, 64), f"{resolution} is not one of 32, 64"),
        ("shapes_per_class", 1 <= shapes_per_class <= 10_000, f"{shapes_per_class} is not in [1, 10000]"),
        ("views_per_shape", 1 <= views_per_shape <= 100, f"{views_per_shape} is not in [1, 100]"),
        ("image_size", 16 <= image_size <= 1024, f"{image_size} is not in [16, 1024]"),
        ("num_shards", 1 <= num_shards <= records, f"{num_shards} is not in [1, {records}] (the record count)"),
        ("seed", seed >= 0, f"{seed} is negative"),
        ("variety", 0 <= variety <= 1, f"{variety} is not in [0, 1]"),
        ("first_shape", 0 <= first_shape <= 1_000_000, f"{first_shape} is not in [0, 1000000]"),
    )
    for name, ok, problem in checks:
        if not ok:
            raise ValueError(f"{name}: {problem}")


def _rng(seed, class_id, index, stream):
    """Generator of one shape (stream 0) or of its view v (stream v + 1), whatever the counts."""
    return np.random.default_rng([seed, class_id, index, stream])


def _examples(resolution, shapes_per_class, views_per_shape, image_size, seed, variety, first_shape, progress):
    """Serialized records in a seeded random order, so every shard mixes all classes."""
    from keras_vaegan.data import encode_example  # TensorFlow starts only once the flags are checked

    per_index = len(CLASSES) * views_per_shape
    total = shapes_per_class * per_index
    for done, record in enumerate(np.random.default_rng(seed).permutation(total), start=1):
        index, rest = divmod(int(record), per_index)
        index += first_shape
        class_id, view = divmod(rest, views_per_shape)
        name = CLASSES[class_id]
        voxels = make_shape(name, resolution, _rng(seed, class_id, index, 0), variety)
        yield encode_example(voxels, image=render_photo(voxels, _rng(seed, class_id, index, view + 1), image_size),
                             class_name=name, class_id=class_id, source_id=f"synthetic/{name}/{index:05d}")
        if progress:
            progress(done, total)


def _preview(resolution, shapes_per_class, seed, variety, first_shape):
    """A labelled grid of the first few shapes of every class, one class per row."""
    count = min(PREVIEW_PER_CLASS, shapes_per_class)
    grids = [make_shape(name, resolution, _rng(seed, class_id, index, 0), variety)
             for class_id, name in enumerate(CLASSES) for index in range(first_shape, first_shape + count)]
    return render.render_grid(grids, columns=count, labels=[name for name in CLASSES for _ in range(count)])


def write_synthetic_dataset(out_dir, resolution=32, shapes_per_class=40, views_per_shape=2, image_size=64,
                            num_shards=4, seed=0, variety=1.0, first_shape=0, progress=None):
    """Writes the shards, classes.txt and preview.png into `out_dir`; returns the record count.

    `progress(done, total)` is called after every record when given.
    """
    from data_tools.records import write_shards  # TensorFlow starts only once the flags are checked

    check_arguments(out_dir, resolution, shapes_per_class, views_per_shape, image_size, num_shards, seed, variety,
                    first_shape)
    examples = _examples(resolution, shapes_per_class, views_per_shape, image_size, seed, variety, first_shape,
                         progress)
    _, count = write_shards(examples, out_dir, "train", num_shards)
    write_bytes_atomically(os.path.join(out_dir, "classes.txt"), "".join(f"{name}\n" for name in CLASSES).encode())
    render.save_png(_preview(resolution, shapes_per_class, seed, variety, first_shape),
                    os.path.join(out_dir, "preview.png"))
    return count


flags.DEFINE_string("out", None, "Output directory for the shards, classes.txt and preview.png.", flag_values=FLAGS)
flags.DEFINE_integer("resolution", 32, "Edge of the voxel grids: 32 or 64.", flag_values=FLAGS)
flags.DEFINE_integer("shapes_per_class", 40, "Shapes generated per class.", flag_values=FLAGS)
flags.DEFINE_integer("views_per_shape", 2, "Rendered photos (records) per shape.", flag_values=FLAGS)
flags.DEFINE_integer("image_size", 64, "Edge of the square JPEG photos in pixels.", flag_values=FLAGS)
flags.DEFINE_integer("num_shards", 4, "Number of TFRecord shards.", flag_values=FLAGS)
flags.DEFINE_integer("seed", 0, "Random seed; the same seed gives the same bytes.", flag_values=FLAGS)
flags.DEFINE_float("variety", 1.0, "In [0, 1]: below 1 the shapes of a class are more alike (0: all the same).",
                   flag_values=FLAGS)
flags.DEFINE_integer("first_shape", 0, "Index of the first shape of each class (a later index: a held-out set).",
                     flag_values=FLAGS)


def main(argv):
    parse_flags(FLAGS, argv, __doc__)
    settings = dict(out_dir=FLAGS.out, resolution=FLAGS.resolution, shapes_per_class=FLAGS.shapes_per_class,
                    views_per_shape=FLAGS.views_per_shape, image_size=FLAGS.image_size,
                    num_shards=FLAGS.num_shards, seed=FLAGS.seed, variety=FLAGS.variety,
                    first_shape=FLAGS.first_shape)
    try:
        check_arguments(**settings)
    except ValueError as error:
        fail(f"--{error}")
    count = write_synthetic_dataset(**settings, progress=ProgressCounter("synthetic", "records"))
    print(f"wrote {count} records in {FLAGS.num_shards} shards, classes.txt and preview.png to {FLAGS.out}")


run = console_entry(main)

if __name__ == "__main__":
    run()
