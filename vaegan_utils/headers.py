"""What a file's header claims, checked against the file's size before a reader allocates it.

open3d, NumPy and zipfile allocate what a header claims (a 190-byte PLY claiming 1e9 vertices took
23.7 GB). Each check here reads the header alone and raises BadFile naming the file and the claim
when the file cannot hold it, or when it is over a sanity cap far above the files this project reads.
"""

import os
import stat
import zipfile
import zlib

import numpy as np

from vaegan_utils.errors import BadFile

MAX_MESH_BYTES = 1 << 30
MAX_MESH_ELEMENTS = 10_000_000  # vertices (or faces) of one mesh; open3d holds 24 bytes or more per vertex
MAX_ARRAY_BYTES = 1 << 30  # an array claiming more is refused before it is read (256^3 grids are 16 MiB)
MAX_DEFLATE_RATIO = 1032  # deflate (zip, gzip, MATLAB's zlib) expands at most about 1032:1
PLY_HEADER_BYTES = 1 << 16
PLY_TYPE_BYTES = {"char": 1, "uchar": 1, "int8": 1, "uint8": 1, "short": 2, "ushort": 2, "int16": 2, "uint16": 2,
                  "int": 4, "uint": 4, "int32": 4, "uint32": 4, "float": 4, "float32": 4, "double": 8, "float64": 8}
PLY_FORMATS = ("ascii", "binary_little_endian", "binary_big_endian")


def regular_file_size(path):
    """The size of a regular file; BadFile for a missing file, a folder or a device."""
    try:
        info = os.stat(path)
    except OSError as error:
        raise BadFile(path, error.strerror or str(error)) from error
    if not stat.S_ISREG(info.st_mode):
        raise BadFile(path, "not a regular file")
    return info.st_size


def check_file_size(path, limit, kind):
    """The size of a regular file; BadFile when it is over `limit` bytes for a file of `kind`."""
    size = regular_file_size(path)
    if size > limit:
        raise BadFile(path, f"holds {size} bytes, over the {limit}-byte limit for {kind}")
    return size


def _plural(name):
    return "vertices" if name == "vertex" else f"{name}s"


# ---------------------------------------------------------------- meshes


def check_mesh(path):
    """Refuses a mesh file (.off, .obj, .ply, .stl) over MAX_MESH_BYTES, and PLY and STL headers that lie."""
    size = check_file_size(path, MAX_MESH_BYTES, "a mesh")
    extension = os.path.splitext(str(path))[1].lower()
    if extension == ".ply":
        check_ply(path, size)
    elif extension == ".stl":
        check_stl(path, size)


def _ply_count(path, name, word):
    try:
        count = int(word)
    except ValueError:
        raise BadFile(path, f"header claims {word[:40]!r} {_plural(name)}, not a count") from None
    if count < 0:
        raise BadFile(path, f"header claims {count} {_plural(name)}, a negative count")
    return count


def _ply_property_bytes(path, words):
    """Bytes a property takes at least in binary: its scalar's size, or a list's count (the list may be empty)."""
    kind = words[2] if len(words) == 5 and words[1] == "list" else words[1] if len(words) == 3 else None
    if kind not in PLY_TYPE_BYTES or (len(words) == 5 and words[3] not in PLY_TYPE_BYTES):
        raise BadFile(path, f"header line {' '.join(words)[:80]!r} is not a property of a known type")
    return PLY_TYPE_BYTES[kind]


def ply_header(path):
    """(format, [(element name, count, [minimum binary bytes of each property])], header length in bytes)."""
    with open(path, "rb") as file:
        head = file.read(PLY_HEADER_BYTES)
    end = head.find(b"end_header")
    if not head.startswith(b"ply") or end < 0:
        raise BadFile(path, f"not a PLY file ('ply' ... 'end_header' not in its first {PLY_HEADER_BYTES} bytes)")
    line_end = head.find(b"\n", end)
    length = len(head) if line_end < 0 else line_end + 1
    form, elements = None, []
    for line in head[:end].decode("ascii", "replace").splitlines()[1:]:
        words = line.split()
        if not words or words[0] in ("comment", "obj_info"):
            continue
        if words[0] == "format" and len(words) == 3 and words[1] in PLY_FORMATS:
            form = words[1]
        elif words[0] == "element" and len(words) == 3:
            elements.append((words[1], _ply_count(path, words[1], words[2]), []))
        elif words[0] == "property" and elements:
            elements[-1][2].append(_ply_property_bytes(path, words))
        else:
            raise BadFile(path, f"unexpected header line {line[:80]!r}")
    if form is None:
        raise BadFile(path, f"header has no 'format' line of {', '.join(PLY_FORMATS)}")
    return form, elements, length


def check_ply(path, size):
    """Refuses a PLY whose elements need more bytes than follow its header.

    Binary: each element takes at least the sum of its properties' sizes (a list at least its count).
    ASCII: each value takes at least a digit and a separator, 2 bytes.
    """
    form, elements, length = ply_header(path)
    body = size - length + (form == "ascii")  # the last value of an ASCII file may lack its separator
    needed = 0
    for name, count, sizes in elements:
        each = max(1, 2 * len(sizes) if form == "ascii" else sum(sizes))
        if count * each > body:
            raise BadFile(path, f"header claims {count} {_plural(name)}, but the file holds {size} bytes "
                                f"(at most {max(body, 0) // each} {_plural(name)})")
        if count > MAX_MESH_ELEMENTS:
            raise BadFile(path, f"header claims {count} {_plural(name)}, over the limit of {MAX_MESH_ELEMENTS}")
        needed += count * each
    if needed > body:
        claims = " and ".join(f"{count} {_plural(name)}" for name, count, _ in elements)
        raise BadFile(path, f"header claims {claims}, at least {needed} bytes of {form} data, but the file "
                            f"holds {size} bytes")


def check_stl(path, size):
    """Refuses a binary STL unless its size is 84 + 50 bytes per triangle its header claims.

    A file starting with 'solid' is ASCII STL (as open3d reads it): it claims no count.
    """
    with open(path, "rb") as file:
        head = file.read(84)
    if head.startswith(b"solid"):
        return
    if len(head) < 84:
        raise BadFile(path, f"holds {size} bytes, too short for a binary STL (84 bytes of header and count)")
    triangles = int.from_bytes(head[80:84], "little")
    if 84 + 50 * triangles != size:
        raise BadFile(path, f"header claims {triangles} triangles ({84 + 50 * triangles} bytes), but the file "
                            f"holds {size} bytes (room for {max(size - 84, 0) // 50} triangles)")


# ---------------------------------------------------------------- arrays


def check_array_bytes(path, what, shape, itemsize):
    """Refuses an array whose header claims more than MAX_ARRAY_BYTES; returns the bytes it claims."""
    claimed = int(np.prod(shape, dtype=object)) * itemsize
    if claimed > MAX_ARRAY_BYTES:
        raise BadFile(path, f"{what} claims shape {tuple(shape)} ({claimed} bytes), over the "
                            f"{MAX_ARRAY_BYTES}-byte limit")
    return claimed


def check_inflated(path, what, claimed, stored):
    """Refuses `claimed` bytes inflated from `stored` compressed bytes beyond what deflate can do."""
    if claimed > max(stored, 1) * MAX_DEFLATE_RATIO:
        raise BadFile(path, f"{what} claims {claimed} bytes from {stored} compressed bytes, more than "
                            f"{MAX_DEFLATE_RATIO}:1 (a zip bomb or a lie)")


def _npy_header(path, archive, member):
    """(shape, itemsize, header length) of an .npy member of a zip archive, reading its header alone."""
    with archive.open(member) as stream:
        try:
            version = np.lib.format.read_magic(stream)
            read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            shape, _, dtype = read(stream)
        except (ValueError, OSError, EOFError, SyntaxError) as error:
            raise BadFile(path, f"member {member.filename!r} is not a .npy array ({error})") from error
        return shape, dtype.itemsize, stream.tell()


def check_npz(path):
    """Refuses an .npz whose zip directory or member headers claim more than the archive can hold;
    returns the shape each array's header claims, by array name.

    Every member: the uncompressed size the directory claims is under MAX_ARRAY_BYTES (all members
    together too) and within deflate's ratio of its stored size, and its .npy header's shape times
    item size is what that uncompressed size leaves after the header.
    """
    regular_file_size(path)
    shapes = {}
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
            total = sum(member.file_size for member in members)
            if total > MAX_ARRAY_BYTES:
                raise BadFile(path, f"members claim {total} bytes uncompressed, over the {MAX_ARRAY_BYTES}-byte limit")
            for member in members:
                name = f"member {member.filename[:80]!r}"
                check_inflated(path, name, member.file_size, member.compress_size)
                shape, itemsize, length = _npy_header(path, archive, member)
                claimed = check_array_bytes(path, name, shape, itemsize)
                if claimed != member.file_size - length:
                    raise BadFile(path, f"{name} claims shape {tuple(shape)} ({claimed} bytes), but holds "
                                        f"{member.file_size - length} bytes of data")
                shapes[member.filename.removesuffix(".npy")] = tuple(shape)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, OSError, EOFError, ValueError,
            zlib.error) as error:
        if isinstance(error, BadFile):
            raise
        raise BadFile(path, f"not a readable .npz ({error})") from error
    return shapes
