"""Readers for the files users bring: voxel grids, meshes and photos.

Every reader raises `BadFile` (a ValueError whose message starts with the
file's path) when a file is missing, truncated or not what it claims to be.
Voxel grids come back in the project convention `[x, y, z]`, z up, front
towards -y, unless a docstring says the array is returned as stored.
"""

import gzip
import math
import os
import warnings
import zipfile
import zlib

import h5py
import numpy as np
import scipy.io
from PIL import Image, ImageOps

from vaegan_utils import headers
from vaegan_utils.errors import BadFile, first_line
from vaegan_utils.files import write_bytes_atomically
from vaegan_utils.headers import MAX_ARRAY_BYTES
from vaegan_utils.images import pixel_count_problem

MAT_VOXEL_FIELDS = ("grid", "instance", "voxel", "voxels", "volume")
_NPY_CHUNK_BYTES = 1 << 24


def _read_bytes(path):
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as error:
        raise BadFile(path, error.strerror or str(error)) from error


# ---------------------------------------------------------------- binvox


def _binvox_header(path, data):
    """Parses the text header; returns (dims, translate, scale, offset of the voxel bytes)."""
    if not data.startswith(b"#binvox"):
        raise BadFile(path, "not a binvox file (no '#binvox' header)")
    fields, offset = {}, 0
    while True:
        end = data.find(b"\n", offset)
        if end < 0:
            raise BadFile(path, "header ends before its 'data' line")
        line = data[offset:end].decode("ascii", "replace").strip()
        offset = end + 1
        words = line.split()
        if not words:
            continue
        if words[0] == "data":
            break
        fields[words[0]] = words[1:]
    version = fields.get("#binvox", ["?"])[0]
    if version != "1":
        raise BadFile(path, f"binvox version {version} is not supported (only 1)")
    try:
        dims = tuple(int(w) for w in fields["dim"])
        translate = tuple(float(w) for w in fields.get("translate", ("0", "0", "0")))
        scale = float(fields.get("scale", ("1",))[0])
    except KeyError:
        raise BadFile(path, "header has no 'dim' line") from None
    except ValueError:
        raise BadFile(path, "header has a non-numeric dim, translate or scale") from None
    if len(dims) != 3 or min(dims) < 1 or len(translate) != 3:
        raise BadFile(path, f"header dims {dims} / translate {translate} are not 3 positive sizes / 3 numbers")
    _check_binvox_claim(path, dims, len(data) - offset)
    return dims, translate, scale, offset


def _check_binvox_claim(path, dims, run_bytes):
    """Refuses dims over MAX_ARRAY_BYTES voxels, or more than the runs can hold (255 voxels per 2 bytes)."""
    voxels = math.prod(dims)
    if voxels > MAX_ARRAY_BYTES:
        raise BadFile(path, f"header claims dims {dims} ({voxels} voxels), over the limit of {MAX_ARRAY_BYTES}")
    if voxels > 255 * (run_bytes // 2):
        raise BadFile(path, f"truncated: header claims dims {dims} ({voxels} voxels), but its {run_bytes} bytes of "
                            f"run-length data hold at most {255 * (run_bytes // 2)}")


def read_binvox(path):
    """A binvox v1 file as a bool grid `[x, y, z]`, z up, front towards -y.

    binvox stores run-length pairs (value, count) in x-z-y order (y runs
    fastest), that is, as the array `[x, z, y]` of binvox's own axes. In the
    ShapeNet-style files in ../shared/data/binvox the z axis is up and the
    fronts face -y, which is our convention, so only the last two axes swap
    (as binvox_rw's `fix_coords` does).
    """
    headers.check_file_size(path, 2 * MAX_ARRAY_BYTES, "a binvox file")  # 2 bytes per voxel at most
    data = _read_bytes(path)
    dims, _, _, offset = _binvox_header(path, data)
    runs = np.frombuffer(data, np.uint8, offset=offset)
    expected = math.prod(dims)
    if len(runs) % 2:
        raise BadFile(path, f"truncated run-length data (odd number of bytes: {len(runs)})")
    values, counts = runs[0::2], runs[1::2]
    if values.max(initial=0) > 1:
        raise BadFile(path, f"run-length data holds the value {values.max()} (only 0 and 1 are voxels)")
    total = int(counts.sum(dtype=np.int64))
    if total != expected:
        kind = "truncated" if total < expected else "too much"
        raise BadFile(path, f"{kind} run-length data (expected {expected} voxels, got {total})")
    stored = np.repeat(values.astype(bool), counts).reshape(dims)
    return np.ascontiguousarray(stored.transpose(0, 2, 1))


def _run_lengths(flat):
    """(value, count) byte pairs for a flat bool array, runs split at 255."""
    change = np.flatnonzero(np.diff(flat.view(np.uint8))) + 1
    starts = np.concatenate([[0], change])
    lengths = np.diff(np.concatenate([starts, [flat.size]]))
    values = flat[starts].astype(np.uint8)
    pieces = -(-lengths // 255)
    values = np.repeat(values, pieces)
    counts = np.full(values.size, 255, np.int64)
    last = np.cumsum(pieces) - 1
    counts[last] = lengths - 255 * (pieces - 1)
    return np.stack([values, counts.astype(np.uint8)], 1).tobytes()


def write_binvox(path, grid, translate=(0, 0, 0), scale=1.0):
    """Writes a grid `[x, y, z]` (anything > 0.5 is occupied) as binvox v1, atomically."""
    grid = np.asarray(grid)
    if grid.ndim != 3:
        raise ValueError(f"write_binvox needs a 3D grid, got shape {grid.shape}")
    stored = np.ascontiguousarray(grid.transpose(0, 2, 1) > 0.5)
    header = (
        "#binvox 1\n"
        f"dim {' '.join(str(d) for d in stored.shape)}\n"
        f"translate {' '.join(repr(float(t)) for t in translate)}\n"
        f"scale {float(scale)!r}\n"
        "data\n"
    ).encode("ascii")
    write_bytes_atomically(path, header + _run_lengths(stored.reshape(-1)))


# ---------------------------------------------------------------- MATLAB


def _load_mat(path):
    """The variables of a MATLAB file, v5 (scipy) or v7.3 (HDF5, axes put back in MATLAB order)."""
    if not os.path.exists(path):
        raise BadFile(path, "no such file")
    if h5py.is_hdf5(path):
        try:
            with h5py.File(path, "r") as f:
                datasets = {name: item for name, item in f.items() if isinstance(item, h5py.Dataset)}
                for name, item in datasets.items():
                    claimed = headers.check_array_bytes(path, f"variable {name!r}", item.shape, item.dtype.itemsize)
                    headers.check_inflated(path, f"variable {name!r}", claimed, item.id.get_storage_size())
                return {name: np.asarray(item).transpose() for name, item in datasets.items()}
        except (OSError, ValueError, KeyError) as error:
            if isinstance(error, BadFile):
                raise
            raise BadFile(path, f"unreadable MATLAB v7.3 (HDF5) file: {error}") from error
    size = headers.regular_file_size(path)
    try:
        for name, shape, _ in scipy.io.whosmat(path):
            headers.check_array_bytes(path, f"variable {name!r}", shape, 8)
            headers.check_inflated(path, f"variable {name!r}", math.prod(shape), size)  # 1 byte per value or more
        return scipy.io.loadmat(path)
    except (ValueError, TypeError, OSError, EOFError, KeyError, IndexError, NotImplementedError,
            zlib.error, scipy.io.matlab.MatReadError) as error:
        if isinstance(error, BadFile):
            raise
        raise BadFile(path, f"unreadable MATLAB file: {error or type(error).__name__}") from error


def read_mat_voxels(path, field=None):
    """A 3D grid or 4D stack from a MATLAB .mat file (v5 or v7.3), as stored.

    Without `field`, the first of MAT_VOXEL_FIELDS present. The array keeps
    MATLAB's axis order (v7.3 files, which h5py reads with reversed axes, are
    put back), so a v5 and a v7.3 file of the same variable read the same.
    Observed in ../shared/data/ikea-sample/Voxels/*.mat (field `grid`, uint8
    20^3): axis 0 is up (index grows upwards), so `grid.transpose(2, 1, 0)`
    stands the furniture upright in our `[x, y, z]`; the fronts of the IKEA
    models are not aligned (chairs 43, 44 face +axis 2, armchair 45 faces
    +axis 1).
    """
    variables = _load_mat(path)
    names = [n for n in variables if not n.startswith("__")]
    if field is None:
        field = next((n for n in MAT_VOXEL_FIELDS if n in variables), None)
        if field is None:
            raise BadFile(path, f"none of the fields {', '.join(MAT_VOXEL_FIELDS)}; fields present: "
                                f"{', '.join(names) or 'none'}")
    elif field not in names:
        raise BadFile(path, f"no field {field!r}; fields present: {', '.join(names) or 'none'}")
    array = np.asarray(variables[field])
    if array.ndim not in (3, 4) or array.dtype.kind not in "biuf":
        raise BadFile(path, f"field {field!r} is {array.dtype} of shape {array.shape}, not a 3D or 4D numeric array")
    return array


# ---------------------------------------------------------------- .npy / .npy.gz


def _grid_shape(path, shape):
    """(n, r) for arrays of shape (r, r, r), (n, r, r, r) or (n, 1, r, r, r)."""
    if len(shape) == 5 and shape[1] == 1:
        shape = (shape[0],) + shape[2:]
    if len(shape) == 3:
        shape = (1,) + shape
    if len(shape) != 4 or len(set(shape[1:])) != 1 or shape[0] < 0 or shape[1] < 1:
        raise BadFile(path, f"array of shape {shape} is not (r, r, r), (n, r, r, r) or (n, 1, r, r, r)")
    return shape[0], shape[1]


def _occupancy(path, values):
    """Values in [0, 1] -> bool (> 0.5); BadFile on anything else."""
    if values.dtype == bool:
        return values
    if not np.all((values >= 0) & (values <= 1)):
        bad = values[~((values >= 0) & (values <= 1))].flat[0]
        raise BadFile(path, f"holds the value {bad}, not an occupancy in [0, 1]")
    return values > 0.5


def _open_npy(path):
    """An open binary stream of the .npy bytes (decompressed for .gz)."""
    try:
        if str(path).endswith(".gz"):
            return gzip.open(path, "rb")
        return open(path, "rb")
    except OSError as error:
        raise BadFile(path, error.strerror or str(error)) from error


def _check_npy_claim(path, stream, count, resolution, itemsize):
    """Refuses a header claiming more grids than the file holds (or deflate could expand it to), or a
    result over MAX_ARRAY_BYTES, before any grid is read."""
    headers.check_array_bytes(path, "array", (count, resolution, resolution, resolution), 1)
    claimed = count * resolution**3 * itemsize
    size = headers.regular_file_size(path)
    if str(path).endswith(".gz"):
        headers.check_inflated(path, "array", claimed, size)
        return
    available = size - stream.tell()
    if claimed > available:
        raise BadFile(path, f"truncated: header claims {count} grids of {resolution}^3 ({claimed} bytes), but "
                            f"{available} bytes follow it (at most {available // (resolution**3 * itemsize)} grids)")


def _grid_header(path, stream):
    """(count, resolution, dtype, fortran order) from the header of a .npy stream of voxel grids."""
    try:
        version = np.lib.format.read_magic(stream)
        read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                       else np.lib.format.read_array_header_2_0)
        shape, fortran, dtype = read_header(stream)
    except (ValueError, OSError, EOFError, SyntaxError, zlib.error, zipfile.BadZipFile) as error:
        raise BadFile(path, f"not a .npy array ({error})") from error
    if dtype.hasobject or dtype.kind not in "biuf":
        raise BadFile(path, f"holds {dtype}, not numbers")
    return (*_grid_shape(path, shape), dtype, fortran)


def _read_grids(path, stream, count, resolution, dtype, fortran):
    """The grids following a .npy header as bool (n, r, r, r), read in chunks."""
    grid_items = resolution**3
    # Grown as the data arrives: a header claiming a huge shape allocates nothing.
    grids = [np.empty((0, resolution, resolution, resolution), bool)]
    per_chunk = max(1, _NPY_CHUNK_BYTES // (grid_items * dtype.itemsize))
    for start in range(0, count, per_chunk):
        stop = min(count, start + per_chunk)
        want = (stop - start) * grid_items * dtype.itemsize
        try:
            data = stream.read(want)
        except (OSError, EOFError, zlib.error, zipfile.BadZipFile) as error:
            raise BadFile(path, f"corrupt or truncated data ({error})") from error
        if len(data) != want:
            raise BadFile(path, f"truncated: expected {count} grids of {resolution}^3, "
                                f"data ends in grid {start + len(data) // (grid_items * dtype.itemsize)}")
        values = np.frombuffer(data, dtype).reshape(stop - start, resolution, resolution, resolution)
        grids.append(_occupancy(path, values))
    result = np.concatenate(grids)
    if fortran:
        result = result.reshape(-1).reshape(result.shape, order="F")
    return result


def read_voxel_array(path):
    """Occupancy grids from `.npy` or `.npy.gz` as bool (n, r, r, r), axes as stored.

    Accepts arrays (r, r, r), (n, r, r, r) and (n, 1, r, r, r) of bool or of
    numbers in [0, 1] (occupied: > 0.5). Reads in chunks, so only the bool
    result is held in memory in full.
    """
    with _open_npy(path) as f:
        count, resolution, dtype, fortran = _grid_header(path, f)
        _check_npy_claim(path, f, count, resolution, dtype.itemsize)
        return _read_grids(path, f, count, resolution, dtype, fortran)


def voxel_array_count(path):
    """The number of grids in a `.npy` or `.npy.gz` file, from its header alone (checked as when read)."""
    with _open_npy(path) as f:
        count, resolution, dtype, _ = _grid_header(path, f)
        _check_npy_claim(path, f, count, resolution, dtype.itemsize)
    return count


# ---------------------------------------------------------------- .npz

NPZ_ARRAYS = (("voxels", "labels"), ("X_train", "y_train"))  # grids and their labels; `class_names` optional


def _npz_arrays(path, shapes):
    """(name of the grids, name of the labels or None) in an .npz whose arrays have `shapes`."""
    for grids, labels in NPZ_ARRAYS:
        if grids in shapes:
            return grids, labels if labels in shapes else None
    raise BadFile(path, f"holds {', '.join(sorted(shapes)) or 'no arrays'}; expected voxels (with labels and "
                        f"class_names) or X_train (with y_train)")


def _npz_member(path, name):
    """One array of an .npz, read whole (labels and names: small)."""
    try:
        with np.load(path, allow_pickle=False) as archive:
            return archive[name]
    except (OSError, ValueError, EOFError, zlib.error, zipfile.BadZipFile) as error:
        raise BadFile(path, f"{name}: unreadable ({first_line(error)})") from error


def _class_indices(path, labels, class_names):
    """(labels as int64 indices, class names): integer labels index `class_names` when the file has them,
    else integer label k is named `class_<k>`; string labels are the names (sorted)."""
    if labels.dtype.kind in "US":
        names, indices = np.unique(labels.astype(str), return_inverse=True)
        return indices.astype(np.int64), [str(name) for name in names]
    if labels.dtype.kind not in "iu":
        raise BadFile(path, f"labels are {labels.dtype}, not class indices or names")
    if class_names is None:
        present, indices = np.unique(labels, return_inverse=True)
        return indices.astype(np.int64), [f"class_{k}" for k in present]
    if labels.size and not 0 <= labels.min() <= labels.max() < len(class_names):
        raise BadFile(path, f"labels run from {labels.min()} to {labels.max()}, not indices into its "
                            f"{len(class_names)} class_names")
    if len(set(class_names)) < len(class_names):
        raise BadFile(path, f"class_names repeats a name ({', '.join(class_names)})")
    return labels.astype(np.int64), class_names


def read_voxel_labels(path):
    """(count, labels int64 (n,) indexing the class names, class names) of a `.npz` of voxel grids, read
    from its labels and the grids' header alone; labels and names are None when it has no labels.

    Layouts: grids in `voxels` with labels in `labels`, or in `X_train` with `y_train`; either without
    labels is unlabelled. String labels are the names (sorted); integer labels index `class_names` when
    the file has it (ModelNet10's `voxels`/`labels`/`class_names`), else label k is named `class_<k>`.
    """
    shapes = headers.check_npz(path)
    grids, labels_name = _npz_arrays(path, shapes)
    count, _ = _grid_shape(path, shapes[grids])
    if labels_name is None:
        return count, None, None
    labels = _npz_member(path, labels_name)
    class_names = None
    if "class_names" in shapes:
        class_names = [str(name) for name in _npz_member(path, "class_names").astype(str).reshape(-1)]
    if labels.shape != (count,):
        raise BadFile(path, f"{labels_name} has shape {labels.shape}, not one label for each of its {count} grids")
    return (count, *_class_indices(path, labels, class_names))


def read_npz_grids(path):
    """The grids of a `.npz` (labelled or not) as bool (n, r, r, r), axes as stored, read in chunks."""
    grids, _ = _npz_arrays(path, headers.check_npz(path))
    try:
        with zipfile.ZipFile(path) as archive, archive.open(f"{grids}.npy") as stream:
            return _read_grids(path, stream, *_grid_header(path, stream))
    except (OSError, zipfile.BadZipFile, KeyError) as error:
        raise BadFile(path, f"{grids}: corrupt or truncated data ({first_line(error)})") from error


def read_labelled_voxels(path):
    """(grids bool (n, r, r, r), labels int64 (n,), class names) of a labelled `.npz`, axes as stored
    (layouts and class names: see read_voxel_labels)."""
    _, labels, class_names = read_voxel_labels(path)
    if labels is None:
        raise BadFile(path, "holds grids but no labels (labels or y_train)")
    return read_npz_grids(path), labels, class_names


# ---------------------------------------------------------------- meshes


def _off_lines(path):
    """(line number, words) of the non-empty lines, comments removed; and a function
    that raises BadFile about a line (calling it truncation when that line is the
    file's last and has no line end, as in a file cut short)."""
    text = _read_bytes(path).decode("utf-8", "replace")
    lines = text.splitlines()
    cut = len(lines) if text and not text.endswith(("\n", "\r")) else None

    def problem(number, message):
        prefix = "truncated, " if number == cut else ""
        raise BadFile(path, f"{prefix}line {number}: {message}")

    numbered = ((n, line.split("#", 1)[0].split()) for n, line in enumerate(lines, 1))
    return ((n, words) for n, words in numbered if words), problem


def _numbers(words, kind, count, number, problem):
    try:
        return [kind(w) for w in words[:count]]
    except ValueError:
        problem(number, f"non-numeric value in {' '.join(words)!r}")


def read_off(path):
    """An Object File Format mesh as (vertices float64 (V, 3), faces int64 (F, 3)).

    Accepts the counts on the `OFF` line (`OFF2382 2234 0`, as in raw
    ModelNet) or on the next one, comments, and extra values per line (such
    as colors). Polygons with more than 3 corners become triangle fans.
    """
    headers.check_mesh(path)
    lines, problem = _off_lines(path)
    first = next(lines, None)
    if first is None or not first[1][0].startswith("OFF"):
        raise BadFile(path, "not an OFF file (first line is not 'OFF')")
    number, words = first
    words = ([words[0][3:]] if len(words[0]) > 3 else []) + words[1:]
    if not words:
        number, words = next(lines, (number, []))
    if len(words) < 2:
        problem(number, "expected vertex and face counts")
    num_vertices, num_faces = _numbers(words, int, 2, number, problem)
    if num_vertices < 0 or num_faces < 0:
        problem(number, f"negative counts {num_vertices}, {num_faces}")
    size = headers.regular_file_size(path)
    if 2 * (num_vertices + num_faces) > size:  # every vertex and face takes a line of 2 bytes or more
        problem(number, f"claims {num_vertices} vertices and {num_faces} faces, more than its {size} bytes can hold")
    vertices = np.empty((num_vertices, 3))
    for i in range(num_vertices):
        number, words = next(lines, (None, None))
        if words is None:
            raise BadFile(path, f"truncated: {i} of {num_vertices} vertices, 0 of {num_faces} faces")
        if len(words) < 3:
            problem(number, f"a vertex needs 3 coordinates, got {' '.join(words)!r}")
        vertices[i] = _numbers(words, float, 3, number, problem)
    triangles = []
    for i in range(num_faces):
        number, words = next(lines, (None, None))
        if words is None:
            raise BadFile(path, f"truncated: {num_vertices} vertices, {i} of {num_faces} faces")
        size = _numbers(words, int, 1, number, problem)[0]
        if size < 3 or len(words) < size + 1:
            problem(number, f"not a polygon of 3 or more vertices: {' '.join(words)!r}")
        corners = _numbers(words[1:], int, size, number, problem)
        bad = [c for c in corners if not 0 <= c < num_vertices]
        if bad:
            problem(number, f"vertex index {bad[0]} out of range [0, {num_vertices})")
        triangles += [(corners[0], corners[k], corners[k + 1]) for k in range(1, size - 1)]
    return vertices, np.array(triangles, np.int64).reshape(-1, 3)


def _read_open3d_mesh(path):
    """OBJ, PLY or STL through open3d, which signals a failure only with an empty mesh.

    Vertices repeated at one position (per face in STL, per normal in OBJ) are merged.
    """
    headers.check_mesh(path)
    import open3d as o3d  # a large import (a second or more): only for a file that passed the header checks

    with o3d.utility.VerbosityContextManager(o3d.utility.VerbosityLevel.Error):
        mesh = o3d.io.read_triangle_mesh(str(path))
    mesh.remove_duplicated_vertices()  # OBJ and STL readers repeat a vertex per face or normal
    vertices = np.asarray(mesh.vertices, np.float64)
    faces = np.asarray(mesh.triangles, np.int64)
    if len(vertices) == 0:
        raise BadFile(path, "no vertices could be read (empty or unreadable mesh)")
    return vertices, faces


def _check_mesh(path, vertices, faces):
    if len(vertices) == 0 or len(faces) == 0:
        raise BadFile(path, f"empty mesh ({len(vertices)} vertices, {len(faces)} faces)")
    if not np.isfinite(vertices).all():
        raise BadFile(path, "vertices with NaN or infinite coordinates")
    if faces.min() < 0 or faces.max() >= len(vertices):
        raise BadFile(path, f"face vertex index out of range [0, {len(vertices)})")
    corners = vertices[faces]
    areas = np.linalg.norm(np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0]), axis=1)
    extent = np.ptp(vertices, axis=0).max()
    if not (areas > 1e-12 * extent**2).any():
        raise BadFile(path, f"all {len(faces)} faces are degenerate (zero area)")


def read_mesh(path):
    """A triangle mesh from .off, .obj, .ply or .stl as (vertices (V, 3) float64, faces (F, 3) int64).

    OBJ files whose material library is missing read fine (materials are
    ignored). Empty meshes, NaN/inf coordinates and meshes whose faces all
    have zero area raise BadFile. Axes are as stored (see meshes.voxelize_mesh).
    """
    extension = os.path.splitext(str(path))[1].lower()
    if extension == ".off":
        vertices, faces = read_off(path)
    elif extension in (".obj", ".ply", ".stl"):
        vertices, faces = _read_open3d_mesh(path)
    else:
        raise BadFile(path, f"unknown mesh format {extension or '(no extension)'!r} (expected .off, .obj, .ply, .stl)")
    _check_mesh(path, vertices, faces)
    return vertices, faces


# ---------------------------------------------------------------- images


def _to_rgb(image):
    """Any Pillow mode -> RGB; transparency is composited over white."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I;16N"):
        image = Image.fromarray((np.asarray(image, np.uint16) >> 8).astype(np.uint8))
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return image.convert("RGB")


def read_image(path):
    """A photo as uint8 (h, w, 3) RGB, turned by its EXIF orientation.

    Grayscale, palette, CMYK and 16-bit images are converted; transparent ones
    are composited over white. Truncated or corrupt files raise BadFile.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                problem = pixel_count_problem(*image.size)
                if problem:
                    raise BadFile(path, problem)
                image.load()
                image = ImageOps.exif_transpose(image)
                return np.asarray(_to_rgb(image), np.uint8)
    except FileNotFoundError:
        raise BadFile(path, "no such file") from None
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as error:
        if isinstance(error, BadFile):
            raise
        raise BadFile(path, f"unreadable image: {error}") from error
