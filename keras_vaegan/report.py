"""Writes the 3D report of a trained model: python -m keras_vaegan.report --model runs/x/model.keras --out report/

One self-contained HTML page (`index.html`, opens without network access) with
rotatable random samples, a latent interpolation strip, photos beside their
reconstructions (3D-VAE-GAN) and the training curves of the run's TensorBoard logs;
the meshes are written beside it as PLY files.
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import flags  # noqa: E402

from vaegan_utils.cli import console_entry, fail, parse_flags  # noqa: E402

FLAGS = flags.FlagValues()
flags.DEFINE_string("model", None, "The .keras file written by training.", flag_values=FLAGS)
flags.DEFINE_string("out", None, "Folder for index.html, curves.png and meshes/.", flag_values=FLAGS)
flags.DEFINE_string(
    "logdir", None, "TensorBoard logs for the curves (default: logs/ beside --model).", flag_values=FLAGS,
)
flags.DEFINE_string(
    "data_dir", None, "TFRecord shards whose first photos are reconstructed (3D-VAE-GAN).", flag_values=FLAGS,
)
flags.DEFINE_list("images", [], "Photo files to reconstruct (3D-VAE-GAN), instead of or after --data_dir's.",
                  flag_values=FLAGS)
flags.DEFINE_integer("samples", 16, "Random samples shown.", flag_values=FLAGS)
flags.DEFINE_integer("interpolation_steps", 8, "Shapes in the interpolation strip, both ends included.",
                     flag_values=FLAGS)
flags.DEFINE_integer("reconstructions", 8, "Photos taken from --data_dir.", flag_values=FLAGS)
flags.DEFINE_integer("seed", 0, "Seed of the random latent vectors.", flag_values=FLAGS)


def _check_counts():
    for name, low in (("samples", 1), ("interpolation_steps", 2), ("reconstructions", 1)):
        if not low <= FLAGS[name].value <= 64:
            fail(f"--{name}: {FLAGS[name].value} is not in [{low}, 64]")
    if FLAGS.seed < 0:
        fail(f"--seed: {FLAGS.seed} must not be negative")


def _photos(model):
    """(photos at the encoder's input size, None) or (None, why there are none); a bad file ends the run."""
    import numpy as np

    from keras_vaegan import data
    from keras_vaegan.model_file import has_encoder
    from vaegan_utils.images import ImageError, load_image

    if not FLAGS.data_dir and not FLAGS.images:
        return None, "no photos given (--data_dir or --images): reconstructions skipped"
    if not has_encoder(model):
        return None, "this model has no encoder (a 3D-GAN): it cannot read photos, so reconstructions are skipped"
    size = model.image_size
    photos = []
    if FLAGS.data_dir:
        try:
            files = data.find_records(FLAGS.data_dir)
            data.check_records(files, model.resolution, need_images=True)
        except data.DataError as error:
            fail(str(error))
        dataset = data.make_dataset(files, model.resolution, 1, size, shuffle_buffer=0, repeat=False)
        photos += [np.asarray(images[0]) for images, _ in dataset.take(FLAGS.reconstructions)]
    for path in FLAGS.images:
        try:
            photos.append(load_image(path, size))
        except ImageError as error:
            fail(f"--images: {error}")
    return photos, None


def main(argv):
    parse_flags(FLAGS, argv, __doc__, required=("model", "out"))
    _check_counts()
    import numpy as np
    import tensorflow as tf

    from keras_vaegan import curves, report_page
    from keras_vaegan.model_file import ModelFileError, has_encoder, load_trained_model

    print(f"report: loading {FLAGS.model}", file=sys.stderr)
    try:
        model = load_trained_model(FLAGS.model)
    except ModelFileError as error:
        fail(str(error))
    notes = {}
    photos, notes["reconstructions"] = _photos(model)
    if photos is None and (FLAGS.images or FLAGS.data_dir):
        print(f"report: {notes['reconstructions']}", file=sys.stderr)

    print("report: generating shapes", file=sys.stderr)
    latent = model.sample_latent(FLAGS.samples + 2, tf.constant([FLAGS.seed, 1], tf.int64)).numpy()
    samples = model.generator.predict(latent[: FLAGS.samples], verbose=0)
    ends = latent[FLAGS.samples :]
    weights = np.linspace(0, 1, FLAGS.interpolation_steps, dtype=np.float32)[:, None]
    interpolation = model.generator.predict((1 - weights) * ends[0] + weights * ends[1], verbose=0)
    reconstructions = None
    if photos:
        photos = np.stack(photos)
        reconstructions = (photos, np.asarray(model.reconstruct(photos)))

    logdir = FLAGS.logdir or os.path.join(os.path.dirname(os.path.abspath(FLAGS.model)), "logs")
    print(f"report: reading the curves in {logdir}", file=sys.stderr)
    scalars = curves.read_scalars(logdir)
    if not scalars:
        notes["curves"] = f"no training logs with scalars in {logdir}"
        print(f"report: {notes['curves']}", file=sys.stderr)

    step = int(np.asarray(model.step.value))
    kind = "3D-VAE-GAN" if has_encoder(model) else "3D-GAN"
    title = f"{kind} at step {step}: {FLAGS.model}"
    print("report: writing the page and meshes", file=sys.stderr)
    try:
        path = report_page.write_report(
            FLAGS.out, title, samples, interpolation, reconstructions, curves.draw_curves(scalars), notes
        )
    except OSError as error:
        fail(f"{error.filename or FLAGS.out}: {error.strerror or error}")
    print(f"wrote {path}")
    return 0


run = console_entry(main)

if __name__ == "__main__":
    run()
