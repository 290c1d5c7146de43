"""What several sources share: walking a folder, naming classes, loading meshes and voxel files."""

import functools
import os
import re

from data_tools.sources import Sample, Task, voxel_bytes

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


def mesh_task(path, root, source, class_name=None):
    """A task that voxelizes one mesh file."""
    rel = relative(path, root)
    return Task(source_id=f"{source}/{rel}", model_id=rel, class_name=class_name or class_of(path, root),
                kind="mesh", paths=(path,), estimated_bytes=voxel_bytes(64))


def voxelize_file(path, resolution, up_axis):
    """Reads a mesh (OBJ/OFF/PLY/STL) and voxelizes it, interiors filled, into a bool grid [x, y, z]."""
    from data_tools import meshes, readers

    vertices, faces = readers.read_mesh(path)
    return meshes.voxelize_mesh(vertices, faces, resolution, up_axis=up_axis)


@functools.lru_cache(maxsize=4)
def voxel_array(path):
    """The (N, R, R, R) grids of a .npy/.npy.gz file, read once per worker process."""
    from data_tools import readers

    return readers.read_voxel_array(path)


def single(voxels):
    """One sample of voxels alone."""
    return [Sample(voxels=voxels)]
