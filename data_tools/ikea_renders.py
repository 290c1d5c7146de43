"""The IKEA experiment's training set: photo-like renders of the IKEA model library, of procedural furniture
and of labelled voxel shapes such as ModelNet10's.

    python -m data_tools.ikea_renders --input ../shared/data/ikea-sample --out DIR [--resolution 32]
        [--views_per_model 8] [--synthetic_per_class 10] [--heldout_fraction 0.15] [--backgrounds DIR]
        [--image_size 64] [--num_shards 4] [--seed 0] [--split train|heldout] [--camera_distances LOW,HIGH]
        [--framing box|square] [--scene room|plain] [--stretch 0.2] [--clutter]
        [--shapes FILE.npz ...] [--shape_classes bed,chair,...] [--views_per_shape 1]
        [--max_shapes_per_class 0] [--voxel_up_axis z] [--voxel_framing fit] [--shape_turns bed:1,chair:1,sofa:2]

Needs nothing downloaded. Every library model (20^3 in the benchmark, resampled
to --resolution) except the held-out ones is rendered --views_per_model times
from random viewpoints (orthographic, or with --camera_distances through a
pinhole camera at a random distance, like varied focal lengths) in a random
furniture colour with a random surface pattern, with colour casts, blur and
JPEG artefacts, casting a soft shadow on a backdrop: a procedural room (a wall
over a floor; --scene plain: patterned backdrops, flat colour, no shadow), or a
crop of a photo from
--backgrounds (the SUN database in the paper's setting; the IKEA experiment's
is ../shared/data/places365-rooms, read with its subfolders) or, without it, of the
natural photos that ship inside scikit-image. Each picture is cropped to a box
around the object and padded to a square with black, as a photo cropped to its
object is by the model's preprocessing (--framing square: a square around the
object, the backdrop all round). With --stretch S each render of a library
model first stretches the model along each axis by its own random factor in
[1 - S, 1 + S] and refits it to the grid as the library's models are (longest
side spanning it, centred), so the encoder sees more shapes than the library
holds. --clutter adds the hard cases of real photos: views from up to 65
degrees above, a frame that sometimes cuts into the object, and sometimes
things in front of or on it. The IKEA benchmark photos are never used.
With --shapes (a labelled .npz such as ../shared/data/modelnet10-32-train.npz)
each shape of the chosen classes (default: the benchmark's classes the file
holds, for ModelNet10 bed, chair, desk, sofa, table) is put in the library's
frame and framing (--voxel_up_axis, --voxel_framing, as `data_tools modelnet`),
turned about the up axis by --shape_turns so that each class faces the
library's way (the benchmark scores voxel by voxel), and rendered
--views_per_shape times the same way, as
modelnet/<class>/<file name>#<index>/view<v>; --heldout_fraction of each class
is held out by a hash of the seed and that id.
DIR gets train.tfrecord-* shards, classes.txt, heldout_models.txt (the library
models left out, whose photos `python -m keras_vaegan.evaluate ikea --heldout_models`
scores separately), heldout_shapes.txt (the --shapes shapes left out) and
preview.png. The output depends only
on the arguments. `--split heldout` renders the held-out library models and
shapes alone
instead (heldout.tfrecord-* shards, in a folder of their own): a validation
set for `python -m keras_vaegan.evaluate renders`, which tells whether a model
reads shapes from pictures or remembers its training pictures.
"""

import dataclasses
import glob
import itertools
import os
import re

import numpy as np
from absl import flags

from data_tools import shapes, voxel_frame
from data_tools.photos import render_photo
from data_tools.sources import stable_hash
from vaegan_utils import render
from vaegan_utils.cli import ProgressCounter, console_entry, fail, parse_flags
from vaegan_utils.files import write_bytes_atomically
from vaegan_utils.resample import resample, stretch

HELDOUT_FILE = "heldout_models.txt"
HELDOUT_SHAPES_FILE = "heldout_shapes.txt"
SPLITS = ("train", "heldout")
FRAMINGS = ("box", "square")
SCENES = ("room", "plain")
MIN_CAMERA_DISTANCE = 0.87  # grid edges: just outside the grid's corners (sqrt(3) / 2)
SKIMAGE_PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "hubble_deep_field", "immunohistochemistry", "camera",
                  "brick", "grass", "gravel")
MAX_BACKDROPS = 1800  # the 1,800 256-px Places365 rooms: 354 MB; larger photos shrink to BACKDROP_EDGE
MAX_STRETCH = 0.2  # 20^3 library models at 32^3 or more: every voxel still covers a cell centre
PREVIEW_PHOTOS = 24
BACKDROP_EDGE = 384
PHOTO_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
# Quarter turns about z that take ModelNet10's backs to the IKEA library's most common side, -x. Measured on
# modelnet10-32-train.npz and the 225 library models by the side the top quarter of a shape leans to (its
# back): ModelNet's chairs and beds towards +y (98%, 88%), sofas towards +x (87%); the library's chairs, beds
# and sofas mostly towards -x (44% of 41, 55% of 22, 43% of 21); tables and desks lean no clear way in either.
MODELNET10_TURNS = (("bed", 1), ("chair", 1), ("sofa", 2))

FLAGS = flags.FlagValues()


class ArgumentError(ValueError):
    """A bad argument, named by the command-line flag it comes from ("backgrounds", "split", "out")."""

    def __init__(self, flag, message):
        super().__init__(f"{flag}: {message}")


def is_heldout(model_id, fraction, seed):
    """Whether a library model is left out of training: a stable hash of the id and the seed."""
    return stable_hash(f"{seed}/{model_id}") % 10_000 < fraction * 10_000


def _small(rgb):
    from PIL import Image

    picture = Image.fromarray(rgb)
    picture.thumbnail((BACKDROP_EDGE, BACKDROP_EDGE))
    return np.asarray(picture.convert("RGB"))


def photo_paths(folder):
    """The photos in `folder` and its subfolders, at most MAX_BACKDROPS: sorted by name within each folder and
    taken from the folders in turn (sorted), so that every kind of room in places365-rooms/<kind>/ appears."""
    groups = []
    for parent, subfolders, names in os.walk(folder):
        subfolders.sort()
        groups.append([os.path.join(parent, n) for n in sorted(names) if n.lower().endswith(PHOTO_EXTENSIONS)])
    in_turn = [path for paths in itertools.zip_longest(*groups) for path in paths if path]
    return in_turn[:MAX_BACKDROPS]


def load_backdrops(folder=""):
    """(uint8 RGB photos to composite renders over, number of unreadable photos skipped): the photos of
    `photo_paths(folder)` or, without a folder, scikit-image's sample photos."""
    if not folder:
        import skimage.data

        photos = [getattr(skimage.data, name)() for name in SKIMAGE_PHOTOS]
        return [_small(np.repeat(p[..., None], 3, -1) if p.ndim == 2 else p[..., :3]) for p in photos], 0
    from vaegan_utils.readers import BadFile, read_image

    paths = photo_paths(folder)
    backdrops = []
    for path in paths:
        try:
            backdrops.append(_small(read_image(path)))
        except BadFile:
            continue
    if not backdrops:
        raise ArgumentError("backgrounds", f"{folder} holds no readable photos ({', '.join(PHOTO_EXTENSIONS)})")
    return backdrops, len(paths) - len(backdrops)


def _library(input_path):
    """{model_id: (class name, bool grid [x, y, z])} of the IKEA dataset at `input_path`."""
    from vaegan_utils import ikea_layout

    _, photos = ikea_layout.find_photos(input_path)
    return {model_id: (class_name, ikea_layout.read_model(path))
            for model_id, (class_name, path) in sorted(ikea_layout.model_library(input_path, photos).items())}


@dataclasses.dataclass(frozen=True)
class ShapeFiles:
    """Labelled voxel .npz files (--shapes) whose shapes are rendered beside the library, and how."""

    paths: tuple
    classes: tuple = ()  # empty: the benchmark's classes that the files hold
    views: int = 1  # renders per shape
    max_per_class: int = 0  # at most this many shapes of each class of each file, the first ones (0: all)
    up_axis: str = "z"  # as `python -m data_tools modelnet --voxel_up_axis`
    framing: str = "fit"  # as `--voxel_framing`
    turns: tuple = MODELNET10_TURNS  # (class name, quarter turns about z), as `--shape_turns`


@dataclasses.dataclass(frozen=True)
class LabelledShape:
    """A shape of a --shapes file: its id ("modelnet/<class>/<file name>#<index>", its records' source ids
    less "/view<v>"), its class and its bool grid in the project's frame and framing, turned as its class is."""

    shape_id: str
    class_name: str
    grid: np.ndarray


@dataclasses.dataclass(frozen=True)
class Written:
    """What write_ikea_renders wrote: the record count, the held-out library model ids and shape ids, the
    ids of the empty or degenerate shapes skipped and the number of unreadable backdrop photos skipped."""

    records: int
    heldout_models: list
    heldout_shapes: list
    skipped_shapes: list
    skipped_photos: int


def _file_labels(paths):
    """{path: (labels, class names)} of labelled .npz files, read from their labels and headers alone."""
    from vaegan_utils.readers import BadFile, read_voxel_labels

    labelled = {}
    for path in paths:
        try:
            _, labels, names = read_voxel_labels(path)
        except BadFile as error:
            raise ArgumentError("shapes", str(error)) from None
        if labels is None:
            raise ArgumentError("shapes", f"{path}: holds grids but no class labels (labels or y_train); each "
                                          "shape's class is needed")
        same_name = [other for other in labelled if os.path.basename(other) == os.path.basename(path)]
        if same_name:
            raise ArgumentError("shapes", f"{same_name[0]} and {path}: two files of one name, which names their "
                                          "shapes (modelnet/<class>/<file name>#<index>)")
        labelled[path] = (labels, names)
    return labelled


def _chosen_classes(file_labels, asked, benchmark_classes):
    """The classes to render: `asked`, each held by some file, or without it the benchmark's classes the
    files hold."""
    held = sorted({name for _, names in file_labels.values() for name in names})
    files = ", ".join(file_labels)
    if asked:
        missing = [name for name in asked if name not in held]
        if missing:
            raise ArgumentError("shape_classes", f"{', '.join(missing)}: not in {files}, which holds "
                                                 f"{', '.join(held)}")
        return sorted(set(asked))
    chosen = [name for name in held if name in benchmark_classes]
    if not chosen:
        raise ArgumentError("shape_classes", f"{files} holds none of the benchmark's classes "
                                             f"({', '.join(sorted(benchmark_classes))}) but {', '.join(held)}: "
                                             "name the classes to render")
    return chosen


def _checked_turns(turns, file_labels, benchmark_classes):
    """{class name: quarter turns} of `turns`; ArgumentError for a class that neither the files nor the
    benchmark hold (a misspelt name would turn nothing)."""
    known = {name for _, names in file_labels.values() for name in names} | set(benchmark_classes)
    unknown = sorted({name for name, _ in turns} - known)
    if unknown:
        raise ArgumentError("shape_turns", f"{', '.join(unknown)}: not a class of {', '.join(file_labels)} "
                                           "nor of the benchmark")
    return dict(turns)


def _picked(labels, names, classes, max_per_class):
    """Sorted indices of the grids of `classes`, the first `max_per_class` of each (0: all)."""
    picked = []
    for name in classes:
        if name in names:
            picked += np.flatnonzero(labels == names.index(name))[: max_per_class or None].tolist()
    return sorted(picked)


def read_shapes(shape_files, benchmark_classes):
    """(the LabelledShapes of the chosen classes in `shape_files.paths`, in file order, the ids of those
    skipped): each grid is put in the project's frame and framing by voxel_frame.to_frame (see
    data_tools/voxel_frame.py) and turned about z by its class's `shape_files.turns`
    (voxel_frame.turned); empty or degenerate ones are skipped, as `data_tools modelnet` skips them
    (validate.check_voxels: 13 tables and a bed of modelnet10-32-train.npz are empty)."""
    from data_tools.validate import InvalidSample, check_voxels
    from vaegan_utils.readers import BadFile, read_npz_grids

    file_labels = _file_labels(shape_files.paths)
    classes = _chosen_classes(file_labels, shape_files.classes, benchmark_classes)
    turns = _checked_turns(shape_files.turns, file_labels, benchmark_classes)
    chosen, skipped = [], []
    for path, (labels, names) in file_labels.items():
        picked = _picked(labels, names, classes, shape_files.max_per_class)
        try:
            grids = read_npz_grids(path) if picked else ()
        except BadFile as error:
            raise ArgumentError("shapes", str(error)) from None
        for index in picked:
            name = names[labels[index]]
            grid = voxel_frame.to_frame(grids[index], shape_files.up_axis, shape_files.framing)
            shape = LabelledShape(f"modelnet/{name}/{os.path.basename(path)}#{index:05d}", name,
                                  voxel_frame.turned(grid, turns.get(name, 0)))
            try:
                check_voxels(shape.grid)
                chosen.append(shape)
            except InvalidSample:
                skipped.append(shape.shape_id)
    return chosen, skipped


def heldout_shapes(labelled_shapes, fraction, seed):
    """The sorted ids of the shapes left out of training: a stable hash of the seed and the id (file name,
    index and class), as for library models; about `fraction` of each class."""
    return sorted(shape.shape_id for shape in labelled_shapes if is_heldout(shape.shape_id, fraction, seed))


def _split_has(is_held_out, split):
    """Whether a model or shape belongs to `split`: the held-out ones to "heldout", the others to "train"."""
    return is_held_out == (split == "heldout")


def _library_jobs(library, heldout, views_per_model, seed, split, stretch_range):
    """(source id, class name, grid, rng key, stretch range) of the library models' records of `split`.

    Only library models are stretched: they are coarser than the grid, so a stretch of at most MAX_STRETCH
    keeps every voxel; shapes made or stored at the grid's resolution would lose thin parts.
    """
    jobs = []
    for model_id, (class_name, grid) in library.items():
        if _split_has(model_id in heldout, split):
            jobs += [(f"ikea/models/{model_id}/view{v}", class_name, grid, (seed, 0, stable_hash(model_id), v),
                      stretch_range) for v in range(views_per_model)]
    return jobs


def _synthetic_jobs(synthetic_per_class, views_per_model, resolution, seed, split):
    """The procedural shapes' records (training only), as _library_jobs."""
    jobs = []
    for class_id, name in enumerate(shapes.CLASSES if split == "train" else ()):
        for index in range(synthetic_per_class):
            grid = shapes.make_shape(name, resolution, np.random.default_rng([seed, 1, class_id, index]))
            jobs += [(f"synthetic/{name}/{index:05d}/view{v}", name, grid, (seed, 2, class_id, index, v), 0.0)
                     for v in range(views_per_model)]
    return jobs


def _shape_jobs(labelled_shapes, heldout, views, seed, split):
    """The --shapes shapes' records of `split`, as _library_jobs (never stretched)."""
    return [(f"{shape.shape_id}/view{v}", shape.class_name, shape.grid, (seed, 3, stable_hash(shape.shape_id), v),
             0.0) for shape in labelled_shapes if _split_has(shape.shape_id in heldout, split) for v in range(views)]


def _shuffled(jobs, seed):
    """`jobs` in a seeded random order."""
    order = np.random.default_rng(seed).permutation(len(jobs))
    return [jobs[i] for i in order]


def _shape(grid, resolution, stretch_range, key):
    """The record's voxels: `grid` at `resolution`, stretched by factors in [1 - stretch_range, 1 + stretch_range]
    drawn from the job's key when stretch_range > 0."""
    if not stretch_range:
        return resample(grid, resolution)
    factors = np.random.default_rng((*key, 1)).uniform(1 - stretch_range, 1 + stretch_range, 3)
    return stretch(grid, factors, resolution)


def _examples(jobs, classes, backdrops, resolution, image_size, progress, first_photos, render_options):
    """Serialized records; the first PREVIEW_PHOTOS photos are also appended to `first_photos`.
    `render_options` holds render_photo's camera_distances, boxed, room, clutter and photo_textures."""
    from keras_vaegan.data import encode_example

    for done, (source_id, class_name, grid, key, stretch_range) in enumerate(jobs, start=1):
        voxels = _shape(grid, resolution, stretch_range, key)
        photo = render_photo(voxels, np.random.default_rng(key), image_size, backdrops, jitter=True, **render_options)
        if len(first_photos) < PREVIEW_PHOTOS:
            first_photos.append(photo)
        yield encode_example(voxels, image=photo, class_name=class_name, class_id=classes.index(class_name),
                             source_id=source_id)
        if progress:
            progress(done, len(jobs))


def write_ikea_renders(input_path, out_dir, resolution=32, views_per_model=8, synthetic_per_class=10,
                       heldout_fraction=0.15, backgrounds="", image_size=64, num_shards=4, seed=0, progress=None,
                       split="train", camera_distances=None, framing="box", scene="room", stretch_range=0.0,
                       clutter=False, shape_files=None, photo_textures=0.0):
    """Writes the shards of `split`, classes.txt, heldout_models.txt, heldout_shapes.txt and preview.png;
    returns what it wrote (Written).

    split "train": every library model but the held-out ones, the procedural shapes and, with `shape_files`
    (ShapeFiles), every shape of theirs of the chosen classes but the held-out ones; "heldout": the
    held-out library models and shapes alone. `camera_distances` (low, high), in grid edges, switches from the
    orthographic camera to a pinhole one at a random distance in that range (`photos.render_photo`).
    `framing` "box" crops each picture to a box around the object padded to a square with black, as a
    photo cropped to its object is at test time; "square" crops a square around it over the backdrop.
    `scene` "room" makes the procedural backdrops rooms, with a shadow and a surface pattern on the object;
    "plain" keeps patterned backdrops and a flat-coloured object without a shadow.
    `stretch_range` S > 0 stretches the library model of each record along each axis by a random factor in
    [1 - S, 1 + S], then refits it to the grid (`resample.stretch`). `clutter` renders the hard cases of
    real photos (`photos.render_photo`): higher views, the frame cutting into the object, things before it.
    `photo_textures` is the share of records whose object is textured with a crop of a backdrop photo.
    """
    from data_tools.records import write_shards

    library = _library(input_path)
    heldout = sorted(m for m in library if is_heldout(m, heldout_fraction, seed))
    benchmark_classes = {name for name, _ in library.values()} | set(shapes.CLASSES)
    labelled_shapes, skipped_shapes = read_shapes(shape_files, benchmark_classes) if shape_files else ([], [])
    held_shapes = heldout_shapes(labelled_shapes, heldout_fraction, seed)
    classes = sorted(benchmark_classes | {shape.class_name for shape in labelled_shapes})
    views_per_shape = shape_files.views if shape_files else 0
    jobs = _shuffled(_library_jobs(library, set(heldout), views_per_model, seed, split, stretch_range)
                     + _synthetic_jobs(synthetic_per_class, views_per_model, resolution, seed, split)
                     + _shape_jobs(labelled_shapes, set(held_shapes), views_per_shape, seed, split), seed)
    if not jobs:
        raise ArgumentError("split", f"{split} renders no model, as none is held out (--heldout_fraction)")
    others = sorted(glob.glob(os.path.join(out_dir, "*.tfrecord-*")))
    others = [name for name in others if not os.path.basename(name).startswith(f"{split}.")]
    if others:
        raise ArgumentError("out", f"{out_dir} already holds other records ({os.path.basename(others[0])}); "
                            "give each split its own folder, so neither is overwritten nor mixed into the other")
    backdrops, skipped_photos = load_backdrops(backgrounds)
    first_photos = []
    examples = _examples(jobs, classes, backdrops, resolution, image_size, progress, first_photos,
                         {"camera_distances": camera_distances, "boxed": framing == "box", "room": scene == "room",
                          "clutter": clutter, "photo_textures": photo_textures})
    _, count = write_shards(examples, out_dir, split, num_shards)
    write_bytes_atomically(os.path.join(out_dir, "classes.txt"), _lines(classes))
    write_bytes_atomically(os.path.join(out_dir, HELDOUT_FILE), _lines(heldout))
    write_bytes_atomically(os.path.join(out_dir, HELDOUT_SHAPES_FILE), _lines(held_shapes))
    preview = [render.photo_cell(_decoded(photo), 96) for photo in first_photos]
    render.save_png(render.tile_cells(preview, 8), os.path.join(out_dir, "preview.png"))
    return Written(count, heldout, held_shapes, skipped_shapes, skipped_photos)


def _lines(names):
    """UTF-8 bytes of `names`, one a line."""
    return "".join(f"{name}\n" for name in names).encode()


def _decoded(jpeg):
    import io

    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(jpeg)).convert("RGB"))


flags.DEFINE_string("input", None, "The IKEA dataset folder (benchmark or release layout).", flag_values=FLAGS)
flags.DEFINE_string("out", None, "Output folder for the shards, classes.txt, heldout_models.txt, "
                    "heldout_shapes.txt, preview.png.", flag_values=FLAGS)
flags.DEFINE_integer("resolution", 32, "Edge of the voxel grids: 32 or 64.", flag_values=FLAGS)
flags.DEFINE_integer("views_per_model", 8, "Renders (records) per library model and per procedural shape.",
                     flag_values=FLAGS)
flags.DEFINE_integer("synthetic_per_class", 10, "Procedural shapes per class added to the library (0: none).",
                     flag_values=FLAGS)
flags.DEFINE_float("heldout_fraction", 0.15, "Share of library models, and of each class of --shapes, never "
                   "rendered (by a hash of the seed and the id).", flag_values=FLAGS)
flags.DEFINE_string("backgrounds", "", "Folder of backdrop photos, subfolders included (at most "
                    f"{MAX_BACKDROPS}, taken from each subfolder in turn; unreadable ones skipped and counted); "
                    "default: scikit-image's sample photos. The IKEA experiment's setting: "
                    "../shared/data/places365-rooms. Half of the backdrops are procedural either way.",
                    flag_values=FLAGS)
flags.DEFINE_multi_string("shapes", [], "A labelled voxel .npz (voxels, labels, class_names as "
                          "modelnet10-32-train.npz; or X_train, y_train) whose shapes are rendered beside the "
                          "library; repeat the flag for more files.", flag_values=FLAGS)
flags.DEFINE_list("shape_classes", [], "The classes of --shapes to render; default: those of the benchmark's "
                  "classes the files hold (ModelNet10: bed, chair, desk, sofa, table). Others the files hold "
                  "(dresser, night_stand, ...) may be named: they become classes of their own in classes.txt.",
                  flag_values=FLAGS)
flags.DEFINE_integer("views_per_shape", 1, "Renders (records) per shape of --shapes.", flag_values=FLAGS)
flags.DEFINE_integer("max_shapes_per_class", 0, "Render at most the first N shapes of each class of each "
                     "--shapes file (0: all), for a quick build.", flag_values=FLAGS)
flags.DEFINE_enum("voxel_up_axis", "z", voxel_frame.UP_AXES, "--shapes: the axis the grids are stored with "
                  "up, as in `python -m data_tools modelnet` (z for modelnet10-32-train.npz).", flag_values=FLAGS)
flags.DEFINE_enum("voxel_framing", "fit", voxel_frame.FRAMINGS, "--shapes: fit refits each shape as the IKEA "
                  "library's models are (longest side spanning the grid, centred); stored keeps the file's.",
                  flag_values=FLAGS)
flags.DEFINE_list("shape_turns", [f"{name}:{count}" for name, count in MODELNET10_TURNS], "--shapes: "
                  "CLASS:N turns that class's shapes by N quarter turns about the up axis (a whole number; one "
                  "turn takes +x to +y and +y to -x), so that each class faces the IKEA library's way: the "
                  "benchmark scores voxel by voxel. The default is ModelNet10's, measured on "
                  "modelnet10-32-train.npz and the library by the side the top quarter of a shape leans to (its "
                  "back): chairs and beds towards +y (98%, 88%), sofas towards +x (87%), where the library's "
                  "chairs, beds and sofas mostly lean towards -x (44%, 55%, 43%); tables and desks lean no "
                  "clear way in either. Empty: no turns.", flag_values=FLAGS)
flags.DEFINE_integer("image_size", 64, "Edge of the square JPEG photos in pixels.", flag_values=FLAGS)
flags.DEFINE_integer("num_shards", 4, "Number of TFRecord shards.", flag_values=FLAGS)
flags.DEFINE_integer("seed", 0, "Random seed; the same seed gives the same bytes.", flag_values=FLAGS)
flags.DEFINE_list("camera_distances", [], "LOW,HIGH: a pinhole camera at a random distance in this range of "
                  "grid edges from the shape's centre (1.2,5 is about a 35-150 mm lens on a full frame); "
                  "default: orthographic.", flag_values=FLAGS)
flags.DEFINE_enum("framing", "box", FRAMINGS, "box: each picture cropped to a box around the object and "
                  "padded to a square with black, as photos cropped to their object are at test time; "
                  "square: a square around the object over the backdrop.", flag_values=FLAGS)
flags.DEFINE_enum("scene", "room", SCENES, "room: procedural backdrops are rooms (a wall over a floor), and the "
                  "object casts a soft shadow and gets a surface pattern; plain: patterned backdrops, flat colour.",
                  flag_values=FLAGS)
flags.DEFINE_float("stretch", 0.0, f"Stretch each render's library model along each axis by a random factor "
                   f"in [1 - S, 1 + S] (at most {MAX_STRETCH}), refitted to the grid; 0: off.", flag_values=FLAGS)
flags.DEFINE_bool("clutter", False, "Render the hard cases of real photos: views from up to 65 degrees above, "
                  "the frame sometimes cutting into the object, sometimes things in front of or on it.",
                  flag_values=FLAGS)
flags.DEFINE_float("photo_textures", 0.0, "Share of the renders whose object is textured with a close crop "
                   "of a --backgrounds photo (a procedural colour pattern without them) under its own shading, "
                   "instead of one furniture colour; 0: none.", flag_values=FLAGS)
flags.DEFINE_enum("split", "train", SPLITS, "train: the training set; heldout: renders of the held-out library "
                  "models and --shapes alone (a validation set for `keras_vaegan.evaluate renders`).",
                  flag_values=FLAGS)


def _check_flags():
    """Ends the run on the first bad flag; returns --camera_distances as (low, high), or None."""
    checks = (
        ("input", FLAGS.input and os.path.isdir(FLAGS.input), f"{FLAGS.input} is not a folder"),
        ("out", not os.path.exists(FLAGS.out) or os.path.isdir(FLAGS.out), f"{FLAGS.out} is not a folder"),
        ("resolution", FLAGS.resolution in (32, 64), f"{FLAGS.resolution} is not one of 32, 64"),
        ("views_per_model", 1 <= FLAGS.views_per_model <= 100, f"{FLAGS.views_per_model} is not in [1, 100]"),
        ("synthetic_per_class", 0 <= FLAGS.synthetic_per_class <= 10_000,
         f"{FLAGS.synthetic_per_class} is not in [0, 10000]"),
        ("heldout_fraction", 0 <= FLAGS.heldout_fraction < 1, f"{FLAGS.heldout_fraction} is not in [0, 1)"),
        ("backgrounds", not FLAGS.backgrounds or os.path.isdir(FLAGS.backgrounds), f"{FLAGS.backgrounds} is not a folder"),
        ("image_size", 16 <= FLAGS.image_size <= 1024, f"{FLAGS.image_size} is not in [16, 1024]"),
        ("num_shards", 1 <= FLAGS.num_shards <= 1000, f"{FLAGS.num_shards} is not in [1, 1000]"),
        ("seed", FLAGS.seed >= 0, f"{FLAGS.seed} is negative"),
        ("photo_textures", 0 <= FLAGS.photo_textures <= 1, f"{FLAGS.photo_textures} is not in [0, 1]"),
        ("stretch", 0 <= FLAGS.stretch <= MAX_STRETCH, f"{FLAGS.stretch} is not in [0, {MAX_STRETCH}]"),
        ("views_per_shape", 1 <= FLAGS.views_per_shape <= 100, f"{FLAGS.views_per_shape} is not in [1, 100]"),
        ("max_shapes_per_class", FLAGS.max_shapes_per_class >= 0, f"{FLAGS.max_shapes_per_class} is negative"),
        ("shape_classes", FLAGS.shapes or not FLAGS.shape_classes, "names classes of --shapes, which is not given"),
        ("shape_turns", FLAGS.shapes or not FLAGS["shape_turns"].present,
         "turns classes of --shapes, which is not given"),
    )
    for name, ok, problem in checks:
        if not ok:
            fail(f"--{name}: {problem}")
    return _camera_distances(FLAGS.camera_distances)


def _camera_distances(values):
    """The (low, high) of --camera_distances, or None (orthographic) without it."""
    if not values:
        return None
    try:
        low, high = (float(v) for v in values)
    except ValueError:
        fail(f"--camera_distances: {','.join(values)} is not two numbers LOW,HIGH")
    if not MIN_CAMERA_DISTANCE < low <= high:
        fail(f"--camera_distances: {low},{high} needs {MIN_CAMERA_DISTANCE} < LOW <= HIGH (grid edges; the "
             "camera must be outside the grid)")
    return low, high


def _shape_turns(values):
    """--shape_turns as ((class name, quarter turns), ...); ends the run on an entry that is not CLASS:N with
    a whole number N, or on a class named twice."""
    turns = {}
    for value in values:
        name, _, count = value.partition(":")
        if not name or not re.fullmatch(r"-?[0-9]+", count):
            fail(f"--shape_turns: {value} is not CLASS:N with a whole number N of quarter turns (e.g. chair:1)")
        if name in turns:
            fail(f"--shape_turns: {name} is named twice")
        turns[name] = int(count)
    return tuple(turns.items())


def main(argv):
    parse_flags(FLAGS, argv, __doc__, required=("input", "out"))
    camera_distances = _check_flags()
    from vaegan_utils.errors import LayoutError
    from vaegan_utils.readers import BadFile

    shape_files = ShapeFiles(tuple(FLAGS.shapes), tuple(FLAGS.shape_classes), FLAGS.views_per_shape,
                             FLAGS.max_shapes_per_class, FLAGS.voxel_up_axis, FLAGS.voxel_framing,
                             _shape_turns(FLAGS.shape_turns))
    try:
        written = write_ikea_renders(
            FLAGS.input, FLAGS.out, FLAGS.resolution, FLAGS.views_per_model, FLAGS.synthetic_per_class,
            FLAGS.heldout_fraction, FLAGS.backgrounds, FLAGS.image_size, FLAGS.num_shards, FLAGS.seed,
            ProgressCounter("ikea renders", "records"), FLAGS.split, camera_distances,
            framing=FLAGS.framing, scene=FLAGS.scene, stretch_range=FLAGS.stretch, clutter=FLAGS.clutter,
            photo_textures=FLAGS.photo_textures, shape_files=shape_files if FLAGS.shapes else None,
        )
    except ArgumentError as error:
        fail(f"--{error}")
    except (LayoutError, BadFile, ValueError) as error:
        fail(f"--input: {error}")
    print(_summary(written))


def _summary(written):
    """The run's last line: what was written where, and how many backdrop photos were skipped."""
    what = "held out" if FLAGS.split == "train" else "rendered"
    held = f"{len(written.heldout_models)} library models {what} ({HELDOUT_FILE})"
    if FLAGS.shapes:
        held += (f", {len(written.heldout_shapes)} --shapes shapes {what} ({HELDOUT_SHAPES_FILE}), "
                 f"{len(written.skipped_shapes)} empty or degenerate ones skipped")
    return (f"wrote {written.records} {FLAGS.split} records in {FLAGS.num_shards} shards ({held}), classes.txt and "
            f"preview.png to {FLAGS.out}; {written.skipped_photos} unreadable backdrop photos skipped")


run = console_entry(main)

if __name__ == "__main__":
    run()
