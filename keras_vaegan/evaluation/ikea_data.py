"""The photos and ground-truth grids of an IKEA benchmark folder, with what could not be used listed."""

import dataclasses

import numpy as np

from data_tools.readers import BadFile
from data_tools.sources import ikea as ikea_source
from vaegan_utils.images import ImageError, read_rgb


@dataclasses.dataclass
class IkeaPhoto:
    image_path: str
    model_id: str
    class_name: str
    pixels: np.ndarray  # uint8 (H, W, 3), as stored
    truth: np.ndarray  # bool (R, R, R), [x, y, z] with z up


@dataclasses.dataclass
class IkeaBenchmark:
    layout: str
    photos: list
    library: dict  # model_id -> bool grid, every readable model of the dataset
    library_classes: dict  # model_id -> class name
    model_ids: set  # every model the dataset lists, readable or not
    skipped: list  # {"file", "reason"} of photos and models left out


def load_benchmark(root, progress=None):
    """Every photo of the IKEA dataset at `root` with its model's grid; photos whose image or model file
    is missing or unreadable, and unreadable library models, are left out and listed in `skipped`.

    Raises data_tools.sources.LayoutError when `root` is not an IKEA dataset.
    """
    layout, tasks = ikea_source.find_photos(root)
    library, classes, skipped = {}, {}, []
    models = ikea_source.model_library(root, tasks)
    for done, (model_id, (class_name, path)) in enumerate(sorted(models.items()), 1):
        try:
            library[model_id] = ikea_source.read_model(path)
            classes[model_id] = class_name
        except (BadFile, OSError) as error:
            skipped.append({"file": path, "reason": str(error).removeprefix(f"{path}: ")})
        if progress:
            progress(done, len(models) + len(tasks))
    sizes = {grid.shape[0] for grid in library.values()}
    if len(sizes) > 1:
        raise BadFile(root, f"the models' grids have different sizes {sorted(sizes)}")
    photos = []
    for done, task in enumerate(tasks, len(models) + 1):
        if task.model_id not in library:
            skipped.append({"file": task.image_path, "reason": f"its model {task.paths[0]} could not be read"})
        else:
            try:
                photos.append(IkeaPhoto(task.image_path, task.model_id, task.class_name, read_rgb(task.image_path),
                                        library[task.model_id]))
            except ImageError as error:
                skipped.append({"file": task.image_path, "reason": str(error).removeprefix(f"{task.image_path}: ")})
        if progress:
            progress(done, len(models) + len(tasks))
    return IkeaBenchmark(layout, photos, library, classes, set(models), skipped)
