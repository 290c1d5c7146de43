"""ShapeNetCore v1 and v2 folders, synset ids mapped to class names.

  v2  <synset>/<model>/models/model_normalized.obj, with model_normalized.solid.binvox and
      model_normalized.surface.binvox when the voxelizations were downloaded too
  v1  <synset>/<model>/model.obj (and model.binvox when present)
The input is the folder of synsets, or one synset folder. Voxels come from the solid binvox, else
the surface binvox with its interior filled, else the mesh voxelized with open3d. ShapeNet meshes
are y up. With --views > 0 each model is also rendered from random viewpoints over --backgrounds.
"""

import os
import re

from data_tools.sources.common import mesh_samples, mesh_task
from data_tools.sources.synsets import class_name
from vaegan_utils.errors import LayoutError

LAYOUTS = (
    "ShapeNetCore v2 (<synset>/<model>/models/model_normalized.obj [+ model_normalized.solid.binvox])",
    "ShapeNetCore v1 (<synset>/<model>/model.obj [+ model.binvox])",
)
VERSIONS = {
    "v2": ("models/model_normalized.obj", ("models/model_normalized.solid.binvox",
                                           "models/model_normalized.surface.binvox")),
    "v1": ("model.obj", ("model.binvox",)),
}


def _synset_folders(root):
    if re.fullmatch(r"\d{8}", os.path.basename(os.path.normpath(root))):
        return [root]
    return [os.path.join(root, name) for name in sorted(os.listdir(root)) if re.fullmatch(r"\d{8}", name)
            and os.path.isdir(os.path.join(root, name))]


def list_tasks(settings):
    root = settings.input_path
    tasks, versions = [], set()
    for synset_folder in _synset_folders(root) if os.path.isdir(root) else []:
        synset = os.path.basename(os.path.normpath(synset_folder))
        for model in sorted(os.listdir(synset_folder)):
            folder = os.path.join(synset_folder, model)
            for version, (mesh, binvoxes) in VERSIONS.items():
                mesh_path = os.path.join(folder, mesh)
                binvox = next((os.path.join(folder, b) for b in binvoxes if os.path.exists(os.path.join(folder, b))),
                              "")
                if not os.path.exists(mesh_path) and not binvox:
                    continue
                versions.add(version)
                tasks.append(mesh_task(mesh_path if os.path.exists(mesh_path) else binvox, root, "shapenet",
                                       class_name=class_name(synset), binvox=binvox if os.path.exists(mesh_path)
                                       else "", settings=settings, model_id=f"{synset}/{model}"))
                break
    if not tasks:
        raise LayoutError(f"{root}: no ShapeNetCore models found; expected {' or '.join(LAYOUTS)}")
    return "ShapeNetCore " + "+".join(sorted(versions)), tasks


def load(task, settings):
    return mesh_samples(task, settings, up_axis="y")
