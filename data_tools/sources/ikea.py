"""IKEA (Lim, Pirsiavash, Torralba, ICCV 2013) photos with their models' voxels, in either layout of
vaegan_utils.ikea_layout (the benchmark of ../shared/data/ikea-sample, or the 3D-GAN release).

Records keep the native grid (20^3 in the benchmark) in `native_voxels`, since the benchmark scores there.
With `--views 0` the records are the model library instead, one voxel-only record per model (225 in the
benchmark layout), for shape-only training and classification.
"""

import os

from PIL import Image

from data_tools.sources import Sample, Task, voxel_bytes
# LAYOUTS is part of every source module's interface (see data_tools.sources)
from vaegan_utils.ikea_layout import LAYOUTS, find_photos, model_library, read_model  # noqa: F401


def _task(root, photo):
    rel = os.path.relpath(photo.image_path, root).replace(os.sep, "/")
    size = os.path.getsize(photo.image_path) if os.path.exists(photo.image_path) else 0
    return Task(source_id=f"ikea/{rel}", model_id=photo.model_id, class_name=photo.class_name, kind="photo",
                paths=(photo.model_path,), image_path=photo.image_path,
                estimated_bytes=size + 2 * voxel_bytes(64))


def list_tasks(settings):
    """One task per photo; with `views` 0 one voxel-only task per model of the library instead."""
    layout, photos = find_photos(settings.input_path)
    if settings.views:
        return layout, [_task(settings.input_path, photo) for photo in photos]
    return layout, [Task(source_id=f"ikea/models/{model_id}", model_id=model_id, class_name=class_name, kind="model",
                         paths=(path,), estimated_bytes=2 * voxel_bytes(64))
                    for model_id, (class_name, path) in sorted(model_library(settings.input_path, photos).items())]


def photo_bytes(path):
    """The photo as stored when it is an RGB JPEG or PNG, else converted to an RGB JPEG."""
    from data_tools.validate import encode_jpeg
    from vaegan_utils import readers

    pixels = readers.read_image(path)  # refuses a damaged or oversized photo by name before keeping its bytes
    with Image.open(path) as picture:
        if picture.format in ("JPEG", "PNG") and picture.mode == "RGB":
            with open(path, "rb") as file:
                return file.read()
    return encode_jpeg(pixels)


def load(task, settings):
    grid = read_model(task.paths[0])
    image = photo_bytes(task.image_path) if task.kind == "photo" else b""
    return [Sample(voxels=grid, image=image, native_voxels=grid)]
