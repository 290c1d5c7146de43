"""Whether an output folder can be created or written, checked before any work (no TensorFlow)."""

import os


def unwritable_reason(folder):
    """None when `folder` exists as a writable folder or can be created; else why not."""
    folder = os.path.abspath(folder)
    if os.path.exists(folder) and not os.path.isdir(folder):
        return "exists and is not a folder"
    ancestor = folder
    while not os.path.exists(ancestor):
        ancestor = os.path.dirname(ancestor)
    if not os.path.isdir(ancestor):
        return f"{ancestor} is not a folder"
    if not os.access(ancestor, os.W_OK | os.X_OK):
        return f"{ancestor} is not writable"
    return None
