"""What every evaluation task writes: metrics.json, a Markdown table and PNG figures."""

import json
import os

from vaegan_utils.files import write_bytes_atomically
from vaegan_utils.render import save_png

METRICS = "metrics.json"
TABLE = "table.md"


def write_results(folder, metrics, table, figures):
    """metrics.json (indented JSON), table.md and `figures` in `folder`; a figure is {file name: uint8
    picture, or a function that writes the file at the path it is given}. Returns the file names written."""
    write_bytes_atomically(os.path.join(folder, METRICS), (json.dumps(metrics, indent=2) + "\n").encode())
    write_bytes_atomically(os.path.join(folder, TABLE), (table.rstrip() + "\n").encode())
    for name, picture in figures.items():
        path = os.path.join(folder, name)
        if callable(picture):
            picture(path)
        else:
            save_png(picture, path)
    return [METRICS, TABLE, *figures]
