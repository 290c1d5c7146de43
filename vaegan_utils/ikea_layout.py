"""The folder layouts of the IKEA dataset (Lim, Pirsiavash, Torralba, ICCV 2013): which photo shows which
model, and the models' voxel grids. data_tools turns them into records; the IKEA evaluation scores photos
against the grids.

Two layouts:
  benchmark  the processed single-image benchmark (Girdhar et al. 2016, as in ../shared/data/ikea-sample):
             Images/*.jpg; Lists/Images.txt (image names); Lists/ModelID.txt (1-based line of the image's
             model in Lists/all_obj_clean.txt and Voxels/<id>.mat); Lists/all_obj_class.txt (class per
             model); Voxels/<id>.mat with field `grid`, uint8 20^3.
  release    the release of Wu et al. (3D-GAN, 2016) built on the MIT IKEA dataset: one image folder per
             class (<class>/*.png|jpg), list/<class>.txt naming the model of each image (one line per image
             in sorted file order, or `<image> <model>` pairs), and model/ (or models/) <model>.mat with
             a voxel field (`voxel`, `grid`, ...).
"""

import dataclasses
import os

from vaegan_utils.errors import LayoutError

LAYOUTS = (
    "benchmark (Images/, Lists/Images.txt, Lists/ModelID.txt, Lists/all_obj_class.txt, Voxels/<id>.mat)",
    "release (<class>/ image folders, list/<class>.txt, model/<name>.mat)",
)
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png")


@dataclasses.dataclass(frozen=True)
class Photo:
    """One photo of the dataset and the model it shows."""

    image_path: str
    model_path: str  # the model's .mat file
    model_id: str
    class_name: str


def _lines(path):
    with open(path, encoding="utf-8", errors="replace") as file:
        return [line.strip() for line in file if line.strip()]


def _benchmark_photos(root):
    lists = os.path.join(root, "Lists")
    images = _lines(os.path.join(lists, "Images.txt"))
    model_ids = _lines(os.path.join(lists, "ModelID.txt"))
    classes = _lines(os.path.join(lists, "all_obj_class.txt"))
    if len(images) != len(model_ids):
        raise LayoutError(f"{lists}: Images.txt has {len(images)} lines but ModelID.txt {len(model_ids)}")
    photos = []
    for name, model in zip(images, model_ids):
        if not model.isdigit() or not 1 <= int(model) <= len(classes):
            raise LayoutError(f"{os.path.join(lists, 'ModelID.txt')}: {model!r} is not a model number in "
                              f"[1, {len(classes)}] (the lines of all_obj_class.txt)")
        photos.append(Photo(os.path.join(root, "Images", name), os.path.join(root, "Voxels", f"{model}.mat"),
                            f"model{int(model):04d}", classes[int(model) - 1]))
    return photos


def _release_photos(root, model_dir):
    photos = []
    for list_name in sorted(os.listdir(os.path.join(root, "list"))):
        class_name, extension = os.path.splitext(list_name)
        folder = os.path.join(root, class_name)
        if extension != ".txt" or not os.path.isdir(folder):
            continue
        images = sorted(n for n in os.listdir(folder) if n.lower().endswith(IMAGE_EXTENSIONS))
        entries = _lines(os.path.join(root, "list", list_name))
        pairs = [entry.split() for entry in entries]
        if all(len(pair) == 2 for pair in pairs):
            named = [(image, model) for image, model in pairs]
        elif len(entries) == len(images):
            named = list(zip(images, entries))
        else:
            raise LayoutError(f"{os.path.join(root, 'list', list_name)}: {len(entries)} models for "
                              f"{len(images)} images in {folder}")
        for image, model in named:
            model = os.path.splitext(model)[0]
            photos.append(Photo(os.path.join(folder, image), os.path.join(model_dir, f"{model}.mat"), model,
                                class_name))
    return photos


def find_photos(root):
    """(layout name, one Photo per photo); LayoutError when `root` is in neither layout."""
    if os.path.isfile(os.path.join(root, "Lists", "Images.txt")):
        return "benchmark", _benchmark_photos(root)
    model_dir = next((os.path.join(root, n) for n in ("model", "models") if os.path.isdir(os.path.join(root, n))),
                     None)
    if os.path.isdir(os.path.join(root, "list")) and model_dir:
        photos = _release_photos(root, model_dir)
        if photos:
            return "release", photos
    raise LayoutError(f"{root}: not an IKEA dataset; expected the {' or the '.join(LAYOUTS)} layout")


def model_library(root, photos):
    """{model_id: (class_name, .mat path)} of every model of the dataset: in the benchmark layout all the
    models of Lists/all_obj_class.txt (225), in the release layout those the photos name."""
    if os.path.isfile(os.path.join(root, "Lists", "all_obj_class.txt")):
        classes = _lines(os.path.join(root, "Lists", "all_obj_class.txt"))
        return {f"model{i:04d}": (name, os.path.join(root, "Voxels", f"{i}.mat")) for i, name in enumerate(classes, 1)}
    return {photo.model_id: (photo.class_name, photo.model_path) for photo in photos}


def upright(grid):
    """IKEA grids keep MATLAB's order with axis 0 up; ours is [x, y, z] with z up."""
    return grid.transpose(2, 1, 0)


def read_model(path):
    """The occupancy grid of one IKEA model's .mat file, bool and upright; BadFile unless it holds one
    cubic grid."""
    from vaegan_utils import readers

    grid = readers.read_mat_voxels(path)
    if grid.ndim != 3 or len(set(grid.shape)) != 1:
        raise readers.BadFile(path, f"holds an array of shape {grid.shape}, not one cubic grid")
    return upright(grid > 0.5)
