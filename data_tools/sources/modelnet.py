"""ModelNet: .off meshes, 3D ShapeNets volumetric_data .mat files (field `instance`, 30^3), .npy/.npy.gz arrays,
and labelled .npz files (`voxels`/`labels`/`class_names` or `X_train`/`y_train`).

Accepted inputs: one such file, or a folder holding them, e.g. ModelNet10/<class>/{train,test}/<class>_0001.off
or volumetric_data/<class>/30/{train,test}/<name>.mat. The class of a grid in a labelled .npz comes from its
label (see vaegan_utils.readers.read_voxel_labels); otherwise it is the nearest folder below the input that
is not train/test/30, else it comes from the file name (chair_0001.off, modelnet10-chair-32.npy.gz -> chair).
"""

from data_tools import voxel_frame
from data_tools.sources import Task, voxel_bytes
from data_tools.sources.common import ARRAY_EXTENSIONS, array_grid, class_of, mesh_task, relative, single, \
    voxelize_file, walk
from vaegan_utils.errors import BadFile, LayoutError

LAYOUTS = (
    "ModelNet10/40 meshes (<class>/{train,test}/<class>_NNNN.off)",
    "3D ShapeNets volumetric_data (<class>/30/{train,test}/*.mat, field 'instance')",
    ".npy / .npy.gz voxel arrays (N, [1,] R, R, R)",
    ".npz voxel grids with labels (voxels, labels, class_names; or X_train, y_train)",
)


def _grid_tasks(path, root, classes):
    """One task per grid of a voxel array file, of the classes given grid by grid."""
    rel = relative(path, root)
    return [Task(source_id=f"modelnet/{rel}#{i:05d}", model_id=f"{rel}#{i:05d}", class_name=name, kind="array",
                 paths=(path,), index=i, estimated_bytes=voxel_bytes(32)) for i, name in enumerate(classes)]


def _array_tasks(path, root):
    """The tasks of a .npy/.npy.gz array, counted from its header; an unreadable file becomes one task that
    fails (and is listed) when loaded."""
    from vaegan_utils import readers

    try:
        count = readers.voxel_array_count(path)
    except Exception:  # the reader's error is reported when the task runs
        return [Task(source_id=f"modelnet/{relative(path, root)}", model_id=relative(path, root),
                     class_name=class_of(path, root), kind="array", paths=(path,), estimated_bytes=voxel_bytes(32))]
    return _grid_tasks(path, root, [class_of(path, root)] * count)


def _npz_tasks(path, root):
    """The tasks of an .npz, read from its labels and its grids' header alone; grids without labels take the
    class of the file, as arrays do. An .npz whose arrays or labels are wrong stops the listing."""
    from vaegan_utils import readers

    try:
        count, labels, class_names = readers.read_voxel_labels(path)
    except BadFile as error:
        raise LayoutError(str(error)) from None
    if labels is None:
        return _grid_tasks(path, root, [class_of(path, root)] * count)
    return _grid_tasks(path, root, [class_names[label] for label in labels])


def list_tasks(settings):
    root = settings.input_path
    tasks = [mesh_task(path, root, "modelnet") for path in walk(root, (".off",))]
    for path in walk(root, (".mat",)):
        rel = relative(path, root)
        tasks.append(Task(source_id=f"modelnet/{rel}", model_id=rel, class_name=class_of(path, root),
                          kind="mat", paths=(path,), estimated_bytes=voxel_bytes(32)))
    for path in walk(root, ARRAY_EXTENSIONS):
        tasks += _array_tasks(path, root)
    for path in walk(root, (".npz",)):
        tasks += _npz_tasks(path, root)
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
        return single(readers.read_mat_voxels(path, field="instance"))  # 3D ShapeNets' framing, padded later
    grid = array_grid(path, max(task.index, 0))
    return single(voxel_frame.to_frame(grid, settings.voxel_up_axis, settings.voxel_framing))
