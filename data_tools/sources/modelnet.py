"""ModelNet: .off meshes, 3D ShapeNets volumetric_data .mat files (field `instance`, 30^3), .npy/.npy.gz arrays.

Accepted inputs: one such file, or a folder holding them, e.g. ModelNet10/<class>/{train,test}/<class>_0001.off
or volumetric_data/<class>/30/{train,test}/<name>.mat. The class is the nearest folder below the input that
is not train/test/30, else it comes from the file name (chair_0001.off, modelnet10-chair-32.npy.gz -> chair).
"""

from data_tools.sources import Task, voxel_bytes
from vaegan_utils.errors import LayoutError
from data_tools.sources.common import ARRAY_EXTENSIONS, class_of, mesh_task, relative, single, voxel_array, \
    voxelize_file, walk

LAYOUTS = (
    "ModelNet10/40 meshes (<class>/{train,test}/<class>_NNNN.off)",
    "3D ShapeNets volumetric_data (<class>/30/{train,test}/*.mat, field 'instance')",
    ".npy / .npy.gz voxel arrays (N, [1,] R, R, R)",
)


def _array_tasks(path, root):
    """One task per grid; an unreadable file becomes one task that fails (and is listed) when loaded."""
    rel = relative(path, root)
    try:
        indices = range(len(voxel_array(path)))
    except Exception:  # the reader's error is reported when the task runs
        indices = [-1]
    return [Task(source_id=f"modelnet/{rel}#{i:05d}", model_id=f"{rel}#{i:05d}", class_name=class_of(path, root),
                 kind="array", paths=(path,), index=i, estimated_bytes=voxel_bytes(32)) for i in indices]


def list_tasks(settings):
    root = settings.input_path
    tasks = [mesh_task(path, root, "modelnet") for path in walk(root, (".off",))]
    for path in walk(root, (".mat",)):
        rel = relative(path, root)
        tasks.append(Task(source_id=f"modelnet/{rel}", model_id=rel, class_name=class_of(path, root),
                          kind="mat", paths=(path,), estimated_bytes=voxel_bytes(32)))
    for path in walk(root, ARRAY_EXTENSIONS):
        tasks += _array_tasks(path, root)
    if not tasks:
        raise LayoutError(f"{root}: no ModelNet files found; expected {'; or '.join(LAYOUTS)}")
    kinds = {"mesh": "off meshes", "mat": "volumetric_data .mat", "array": "voxel arrays"}
    return ", ".join(kinds[k] for k in kinds if any(t.kind == k for t in tasks)), tasks


def load(task, settings):
    from vaegan_utils import readers

    path = task.paths[0]
    if task.kind == "mesh":
        return single(voxelize_file(path, settings.resolution, up_axis="z"))  # ModelNet meshes stand on z
    if task.kind == "mat":
        return single(readers.read_mat_voxels(path, field="instance"))
    return single(voxel_array(path)[max(task.index, 0)])
