"""Edge inference with a TFLite file and ai-edge-litert alone (this process never imports TensorFlow).

  python -m export.infer --model reconstruct_fp32.tflite --image photo.jpg --out out/
  python -m export.infer --model reconstruct_fp32.tflite --image photos/ --out out/
  python -m export.infer --model generator_fp32.tflite --sample 4 --seed 0 [--latent_std 0.33] --out out/

For every photo (or sample) writes `<name>.npy` (occupancy probabilities, float32
(R, R, R), [x, y, z] with z up), `<name>.ply` (marching-cubes mesh at --threshold,
outward normals) and `<name>.png` (the photo beside the shape, or the shape).
Files are written under a temporary name and renamed when all are done.
"""

import os

import numpy as np
from absl import flags

from export.edge import EdgeModel, EdgeModelError
from vaegan_utils.cli import ProgressCounter, console_entry, fail, parse_flags
from vaegan_utils.files import staged_folder
from vaegan_utils.folders import unwritable_reason
from vaegan_utils.images import ImageError, load_image
from vaegan_utils.mesh import occupancy_mesh, write_ply
from vaegan_utils.render import render_voxels, save_png, side_by_side

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff")

FLAGS = flags.FlagValues()
flags.DEFINE_string("model", None, "A .tflite file of `python -m export`: reconstruct_* for --image, "
                    "generator_* for --sample.", flag_values=FLAGS)
flags.DEFINE_string("image", None, "A photo, or a folder of photos (jpg, png, ...).", flag_values=FLAGS)
flags.DEFINE_integer("sample", 0, "Shapes to generate from prior z (with a generator file).", lower_bound=0,
                     flag_values=FLAGS)
flags.DEFINE_integer("seed", 0, "Seed of the prior z of --sample.", lower_bound=0, flag_values=FLAGS)
flags.DEFINE_enum("latent_prior", "normal", ["normal", "uniform"],
                  "Prior of z for --sample: the model's training prior (3D-VAE-GAN: normal).", flag_values=FLAGS)
flags.DEFINE_float("latent_std", 1.0, "Deviation of the normal prior for --sample: the model's training one "
                   "(latent_std in export_report.json; configs/gan_32.flags trains with 0.33).", lower_bound=1e-6,
                   flag_values=FLAGS)
flags.DEFINE_string("out", None, "Output folder (created if missing).", flag_values=FLAGS)
flags.DEFINE_float("threshold", 0.5, "Occupancy level of the mesh and the picture.", flag_values=FLAGS)
flags.DEFINE_integer("threads", 2, "Interpreter threads.", lower_bound=1, flag_values=FLAGS)
flags.DEFINE_integer("render_size", 256, "Edge of the rendered shape in the PNG, in pixels.", lower_bound=32,
                     flag_values=FLAGS)

NEEDED_KIND = {"image": "reconstruct", "sample": "generator"}


def image_paths(path):
    """The photo itself, or the photos in a folder (sorted); fails on an empty folder or clashing names."""
    if not os.path.isdir(path):
        return [path]
    paths = sorted(os.path.join(path, n) for n in os.listdir(path) if n.lower().endswith(IMAGE_EXTENSIONS))
    if not paths:
        fail(f"{path}: holds no photos ({', '.join(IMAGE_EXTENSIONS)})")
    stems = [os.path.splitext(os.path.basename(p))[0] for p in paths]
    clash = next((s for s in stems if stems.count(s) > 1), None)
    if clash:
        fail(f"{path}: several photos are named {clash}.*, whose outputs would overwrite each other")
    return paths


def check_kind(model, mode):
    if model.kind != NEEDED_KIND[mode]:
        option = "--image" if mode == "image" else "--sample"
        article = "an" if model.kind[0] in "aeiou" else "a"
        fail(f"{model.path}: is {article} {model.kind} file; {option} needs a {NEEDED_KIND[mode]}_*.tflite file "
             "of `python -m export`")


def write_outputs(folder, name, occupancy, picture):
    """`name`.npy, .ply and .png in `folder`."""
    np.save(os.path.join(folder, f"{name}.npy"), occupancy.astype(np.float32))
    write_ply(os.path.join(folder, f"{name}.ply"), *occupancy_mesh(occupancy, FLAGS.threshold))
    save_png(picture, os.path.join(folder, f"{name}.png"))


def read_photos(model, paths):
    """The photos as the model's input (n, S, S, 3); fails on the first one that cannot be used."""
    size = model.input_shape[0]
    progress = ProgressCounter("reading", "photos")
    pixels = []
    for i, path in enumerate(paths):
        try:
            pixels.append(load_image(path, size))
        except ImageError as error:
            fail(str(error))
        progress(i + 1, len(paths))
    return pixels


def reconstruct(model, paths, pixels, staging):
    progress = ProgressCounter("inference", "photos")
    for i, (path, image) in enumerate(zip(paths, pixels)):
        occupancy = model.run(image)["occupancy"]
        picture = side_by_side([image], [occupancy > FLAGS.threshold], cell_size=FLAGS.render_size)
        write_outputs(staging, os.path.splitext(os.path.basename(path))[0], occupancy, picture)
        progress(i + 1, len(paths))
    return len(paths)


def sample(model, staging):
    rng = np.random.default_rng(FLAGS.seed)
    shape = (FLAGS.sample,) + model.input_shape
    latents = rng.random(shape) if FLAGS.latent_prior == "uniform" else FLAGS.latent_std * rng.standard_normal(shape)
    progress = ProgressCounter("inference", "shapes")
    for i, z in enumerate(latents):
        occupancy = model.run(z)["occupancy"]
        picture = render_voxels(occupancy, size=FLAGS.render_size, threshold=FLAGS.threshold)
        write_outputs(staging, f"sample_seed{FLAGS.seed}_{i:03d}", occupancy, picture)
        progress(i + 1, FLAGS.sample)
    return FLAGS.sample


def main(argv):
    parse_flags(FLAGS, argv, __doc__, required=("model", "out"))
    if bool(FLAGS.image) == bool(FLAGS.sample):
        fail("give either --image (a photo or a folder) or --sample N")
    mode = "image" if FLAGS.image else "sample"
    if not 0 < FLAGS.threshold < 1:
        fail(f"--threshold: {FLAGS.threshold} is not in (0, 1)")
    try:
        model = EdgeModel(FLAGS.model, num_threads=FLAGS.threads)
    except EdgeModelError as error:
        fail(str(error))
    check_kind(model, mode)
    problem = unwritable_reason(FLAGS.out)
    if problem:
        fail(f"{FLAGS.out}: cannot be written ({problem})")
    if mode == "image":
        paths = image_paths(FLAGS.image)
        pixels = read_photos(model, paths)
    out = os.path.abspath(FLAGS.out)
    try:
        with staged_folder(out) as staging:
            count = reconstruct(model, paths, pixels, staging) if mode == "image" else sample(model, staging)
    except OSError as error:
        fail(f"{error.filename or out}: cannot be written ({error.strerror or error})")
    print(f"wrote {count} x (.npy, .ply, .png) to {out}")
    return 0


run = console_entry(main)

if __name__ == "__main__":
    run()
