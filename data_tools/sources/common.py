"""What several sources share: walking a folder, naming classes, loading meshes and voxel files."""

import functools
import math
import os
import re

import numpy as np

from data_tools.sources import Sample, Task, stable_hash, voxel_bytes

MESH_EXTENSIONS = (".obj", ".off", ".ply", ".stl")
ARRAY_EXTENSIONS = (".npy", ".npy.gz")
GENERIC_FOLDERS = {"train", "test", "val", "valid", "models", "volumetric_data"}


def walk(root, extensions):
    """Sorted paths under `root` (or `root` itself) whose lower-cased names end with one of `extensions`."""
    if os.path.isfile(root):
        return [root] if root.lower().endswith(extensions) else []
    found = []
    for folder, subfolders, files in os.walk(root):
        subfolders[:] = sorted(name for name in subfolders if not name.startswith("."))
        found += [os.path.join(folder, name) for name in files if name.lower().endswith(extensions)]
    return sorted(found)


def relative(path, root):
    """`path` relative to the input root, with '/' separators (the stable part of a source id)."""
    base = root if os.path.isdir(root) else os.path.dirname(root)
    return os.path.relpath(path, base).replace(os.sep, "/")


def class_from_name(file_name):
    """ModelNet-style file names: 'chair_0001.off' -> 'chair', 'modelnet10-chair-32.npy.gz' -> 'chair'."""
    stem = re.sub(r"(\.npy\.gz|\.[^.]+)$", "", os.path.basename(file_name).lower())
    stem = re.sub(r"_\d+$", "", stem)
    tokens = [t for t in re.split(r"[-_ ]+", stem) if t and not t.isdigit() and not t.startswith("modelnet")]
    return "_".join(tokens) or "unknown"


def class_of(path, root):
    """The class of a file: its nearest enclosing folder below `root` that is not a split or size folder,
    else a name derived from the file name."""
    parts = relative(path, root).split("/")[:-1]
    for part in reversed(parts):
        if part.lower() not in GENERIC_FOLDERS and not part.isdigit():
            return part
    return class_from_name(path)


def mesh_task(path, root, source, class_name=None, binvox="", settings=None, model_id=None):
    """A task for one mesh file (voxelized, or voxels from `binvox` when given; rendered when
    settings.views > 0), or for a binvox file alone (`path` = the .binvox)."""
    rel = relative(path, root)
    renders = path.lower().endswith(MESH_EXTENSIONS) and settings is not None and settings.views > 0
    estimate = voxel_bytes(settings.resolution if settings else 64)
    if renders:
        estimate = settings.views * (estimate + settings.image_size**2 // 4)
    return Task(source_id=f"{source}/{model_id or rel}", model_id=model_id or rel, class_name=class_name or class_of(path, root),
                kind="mesh" if path.lower().endswith(MESH_EXTENSIONS) else "binvox",
                paths=(path, binvox) if binvox else (path,), estimated_bytes=estimate)


def voxelize_file(path, resolution, up_axis):
    """Reads a mesh (OBJ/OFF/PLY/STL) and voxelizes it, interiors filled, into a bool grid [x, y, z]."""
    from data_tools import meshes
    from vaegan_utils import readers

    vertices, faces = readers.read_mesh(path)
    return meshes.voxelize_mesh(vertices, faces, resolution, up_axis=up_axis)


def binvox_solid(path):
    """A binvox grid with its interior filled (surface voxelizations such as *.surface.binvox)."""
    from scipy import ndimage

    from vaegan_utils import readers

    return ndimage.binary_fill_holes(readers.read_binvox(path))


@functools.lru_cache(maxsize=4)
def background_files(folder):
    """The background photos of a folder (sorted, recursive)."""
    return tuple(walk(folder, (".jpg", ".jpeg", ".png"))) if folder else ()


def render_seed(settings, task):
    """The seed of a model's renders: the same model gets the same pictures in any run or order."""
    return stable_hash(f"render:{settings.seed}:{task.source_id}") % 2**32


def mesh_samples(task, settings, up_axis):
    """Voxels of a mesh task (from its binvox when it has one, else voxelized) and, with --views > 0,
    that many renders of the mesh over random crops of the background photos."""
    from data_tools import meshes
    from data_tools.validate import encode_jpeg
    from vaegan_utils import readers

    if task.kind == "binvox":
        return [Sample(voxels=binvox_solid(task.paths[0]))]
    if len(task.paths) > 1 and settings.views <= 0:
        return [Sample(voxels=binvox_solid(task.paths[1]))]
    vertices, faces = readers.read_mesh(task.paths[0])
    if len(task.paths) > 1:
        voxels = binvox_solid(task.paths[1])
    else:
        voxels = meshes.voxelize_mesh(vertices, faces, settings.resolution, up_axis=up_axis)
    if settings.views <= 0:
        return [Sample(voxels=voxels)]
    images = meshes.render_views(vertices, faces, views=settings.views, image_size=settings.image_size,
                                 seed=render_seed(settings, task),
                                 backgrounds=list(background_files(settings.backgrounds)) or None, up_axis=up_axis)
    return [Sample(voxels=voxels, image=encode_jpeg(image), view=view) for view, image in enumerate(images)]


@functools.lru_cache(maxsize=4)
def _packed_grids(path):
    """The grids of a .npy, .npy.gz or .npz file at one bit per voxel, read once per worker process (a
    file of 3,991 grids of 32^3 is held in 16 MiB, not 130)."""
    from vaegan_utils import readers

    grids = readers.read_npz_grids(path) if path.lower().endswith(".npz") else readers.read_voxel_array(path)
    return np.packbits(grids.reshape(len(grids), -1), axis=1), grids.shape[1:]


def array_grid(path, index):
    """Grid `index` of a .npy, .npy.gz or .npz file as bool (r, r, r), axes as stored."""
    packed, shape = _packed_grids(path)
    return np.unpackbits(packed[index], count=math.prod(shape)).reshape(shape).astype(bool)


def single(voxels):
    """One sample of voxels alone."""
    return [Sample(voxels=voxels)]
