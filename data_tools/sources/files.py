"""Any folder of meshes (.obj, .off, .ply, .stl) or .binvox files, one sub-folder per class.

A mesh and a binvox file with the same name in one folder (chair.obj + chair.binvox or
chair.solid.binvox) are one model: voxels from the binvox, renders from the mesh. Meshes are read
with their up axis from --up_axis (z by default; y for most OBJ exports).
"""

import re

from data_tools.sources.common import MESH_EXTENSIONS, mesh_samples, mesh_task, walk
from vaegan_utils.errors import LayoutError

LAYOUTS = ("a folder of meshes (.obj, .off, .ply, .stl) and/or .binvox files, one sub-folder per class",)


def _stem(path):
    return re.sub(r"(\.solid|\.surface)?\.[^.]+$", "", path)


def list_tasks(settings):
    root = settings.input_path
    meshes = walk(root, MESH_EXTENSIONS)
    binvoxes = walk(root, (".binvox",))
    by_stem = {}
    for path in binvoxes:
        by_stem.setdefault(_stem(path), []).append(path)
    paired = set()
    tasks = []
    for path in meshes:
        candidates = sorted(by_stem.get(_stem(path), []), key=lambda p: (".surface." in p, p))
        if candidates:
            paired.add(candidates[0])
        tasks.append(mesh_task(path, root, "files", binvox=candidates[0] if candidates else "", settings=settings))
    tasks += [mesh_task(path, root, "files", settings=settings) for path in binvoxes
              if path not in paired and not any(p in paired for p in by_stem[_stem(path)])]
    if not tasks:
        raise LayoutError(f"{root}: no meshes or binvox files found; expected {LAYOUTS[0]}")
    return "files", tasks


def load(task, settings):
    return mesh_samples(task, settings, settings.up_axis)
