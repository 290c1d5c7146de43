"""The photos and ground-truth grids of an IKEA benchmark folder, with what could not be used listed."""

import dataclasses

import numpy as np

from vaegan_utils import ikea_layout
from vaegan_utils.images import ImageError, read_rgb
from vaegan_utils.readers import BadFile


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

    Raises vaegan_utils.errors.LayoutError when `root` is not an IKEA dataset.
    """
    layout, entries = ikea_layout.find_photos(root)
    library, classes, skipped = {}, {}, []
    models = ikea_layout.model_library(root, entries)
    for done, (model_id, (class_name, path)) in enumerate(sorted(models.items()), 1):
        try:
            library[model_id] = ikea_layout.read_model(path)
            classes[model_id] = class_name
        except (BadFile, OSError) as error:
            skipped.append({"file": path, "reason": str(error).removeprefix(f"{path}: ")})
        if progress:
            progress(done, len(models) + len(entries))
    sizes = {grid.shape[0] for grid in library.values()}
    if len(sizes) > 1:
        raise BadFile(root, f"the models' grids have different sizes {sorted(sizes)}")
    photos = []
    for done, entry in enumerate(entries, len(models) + 1):
        if entry.model_id not in library:
            skipped.append({"file": entry.image_path, "reason": f"its model {entry.model_path} could not be read"})
        else:
            try:
                photos.append(IkeaPhoto(entry.image_path, entry.model_id, entry.class_name, read_rgb(entry.image_path),
                                        library[entry.model_id]))
            except ImageError as error:
                skipped.append({"file": entry.image_path, "reason": str(error).removeprefix(f"{entry.image_path}: ")})
        if progress:
            progress(done, len(models) + len(entries))
    return IkeaBenchmark(layout, photos, library, classes, set(models), skipped)
