"""IKEA (Lim, Pirsiavash, Torralba, ICCV 2013) photos with their models' voxels.

Two layouts:
  benchmark  the processed single-image benchmark (Girdhar et al. 2016, as in ../shared/data/ikea-sample):
             Images/*.jpg; Lists/Images.txt (image names); Lists/ModelID.txt (1-based line of the image's
             model in Lists/all_obj_clean.txt and Voxels/<id>.mat); Lists/all_obj_class.txt (class per
             model); Voxels/<id>.mat with field `grid`, uint8 20^3.
  release    the release of Wu et al. (3D-GAN, 2016) built on the MIT IKEA dataset: one image folder per
             class (<class>/*.png|jpg), list/<class>.txt naming the model of each image (one line per image
             in sorted file order, or `<image> <model>` pairs), and model/ (or models/) <model>.mat with
             a voxel field (`voxel`, `grid`, ...).
Records keep the native grid (20^3 in the benchmark) in `native_voxels`, since the benchmark scores there.
With `--views 0` the records are the model library instead, one voxel-only record per model (225 in the
benchmark layout), for shape-only training and classification.
"""

import io
import os

from PIL import Image

from data_tools.sources import LayoutError, Sample, Task, voxel_bytes

LAYOUTS = (
    "benchmark (Images/, Lists/Images.txt, Lists/ModelID.txt, Lists/all_obj_class.txt, Voxels/<id>.mat)",
    "release (<class>/ image folders, list/<class>.txt, model/<name>.mat)",
)
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png")


def _lines(path):
    with open(path, encoding="utf-8", errors="replace") as file:
        return [line.strip() for line in file if line.strip()]


def _task(root, image_path, mat_path, model_id, class_name):
    rel = os.path.relpath(image_path, root).replace(os.sep, "/")
    size = os.path.getsize(image_path) if os.path.exists(image_path) else 0
    return Task(source_id=f"ikea/{rel}", model_id=model_id, class_name=class_name, kind="photo",
                paths=(mat_path,), image_path=image_path, estimated_bytes=size + 2 * voxel_bytes(64))


def _benchmark_tasks(root):
    lists = os.path.join(root, "Lists")
    images = _lines(os.path.join(lists, "Images.txt"))
    model_ids = _lines(os.path.join(lists, "ModelID.txt"))
    classes = _lines(os.path.join(lists, "all_obj_class.txt"))
    if len(images) != len(model_ids):
        raise LayoutError(f"{lists}: Images.txt has {len(images)} lines but ModelID.txt {len(model_ids)}")
    tasks = []
    for name, model in zip(images, model_ids):
        if not model.isdigit() or not 1 <= int(model) <= len(classes):
            raise LayoutError(f"{os.path.join(lists, 'ModelID.txt')}: {model!r} is not a model number in "
                              f"[1, {len(classes)}] (the lines of all_obj_class.txt)")
        tasks.append(_task(root, os.path.join(root, "Images", name), os.path.join(root, "Voxels", f"{model}.mat"),
                           f"model{int(model):04d}", classes[int(model) - 1]))
    return tasks


def _release_tasks(root, model_dir):
    tasks = []
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
            tasks.append(_task(root, os.path.join(folder, image), os.path.join(model_dir, f"{model}.mat"),
                               model, class_name))
    return tasks


def list_tasks(settings):
    """One task per photo; with `views` 0 one voxel-only task per model of the library instead."""
    layout, tasks = find_photos(settings.input_path)
    if settings.views:
        return layout, tasks
    return layout, [Task(source_id=f"ikea/models/{model_id}", model_id=model_id, class_name=class_name, kind="model",
                         paths=(path,), estimated_bytes=2 * voxel_bytes(64))
                    for model_id, (class_name, path) in sorted(model_library(settings.input_path, tasks).items())]


def find_photos(root):
    """(layout name, one Task per photo: image_path, paths[0] = the model's .mat, model_id, class_name)."""
    if os.path.isfile(os.path.join(root, "Lists", "Images.txt")):
        return "benchmark", _benchmark_tasks(root)
    model_dir = next((os.path.join(root, n) for n in ("model", "models") if os.path.isdir(os.path.join(root, n))),
                     None)
    if os.path.isdir(os.path.join(root, "list")) and model_dir:
        tasks = _release_tasks(root, model_dir)
        if tasks:
            return "release", tasks
    raise LayoutError(f"{root}: not an IKEA dataset; expected the {' or the '.join(LAYOUTS)} layout")


def model_library(root, tasks):
    """{model_id: (class_name, .mat path)} of every model of the dataset: in the benchmark layout all the
    models of Lists/all_obj_class.txt (225), in the release layout those the photos name."""
    if os.path.isfile(os.path.join(root, "Lists", "all_obj_class.txt")):
        classes = _lines(os.path.join(root, "Lists", "all_obj_class.txt"))
        return {f"model{i:04d}": (name, os.path.join(root, "Voxels", f"{i}.mat")) for i, name in enumerate(classes, 1)}
    return {task.model_id: (task.class_name, task.paths[0]) for task in tasks}


def upright(grid):
    """IKEA grids keep MATLAB's order with axis 0 up; ours is [x, y, z] with z up."""
    return grid.transpose(2, 1, 0)


def photo_bytes(path):
    """The photo as stored when it is an RGB JPEG or PNG, else converted to an RGB JPEG."""
    from data_tools import readers
    from data_tools.validate import encode_jpeg

    with open(path, "rb") as file:
        data = file.read()
    try:
        with Image.open(io.BytesIO(data)) as picture:
            picture.load()
            if picture.format in ("JPEG", "PNG") and picture.mode == "RGB":
                return data
    except Exception:  # let the reader name the problem
        pass
    return encode_jpeg(readers.read_image(path))


def read_model(path):
    """The occupancy grid of one IKEA model's .mat file, bool and upright; BadFile unless it holds one
    cubic grid."""
    from data_tools import readers

    grid = readers.read_mat_voxels(path)
    if grid.ndim != 3 or len(set(grid.shape)) != 1:
        raise readers.BadFile(path, f"holds an array of shape {grid.shape}, not one cubic grid")
    return upright(grid > 0.5)


def load(task, settings):
    grid = read_model(task.paths[0])
    image = photo_bytes(task.image_path) if task.kind == "photo" else b""
    return [Sample(voxels=grid, image=image, native_voxels=grid)]
