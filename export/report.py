"""The export report: per file, size, parity against the Keras model and TFLite op types.

Written as `export_report.json` and `export_report.md` beside the exported files.
"""

import json
import os

import numpy as np

FP32_MAX_ABS_DIFF = 1e-5
FP16_MIN_IOU = 0.99
THRESHOLD = 0.5
JSON_NAME = "export_report.json"
MARKDOWN_NAME = "export_report.md"


def voxel_iou(expected, actual, threshold=THRESHOLD):
    """Intersection over union of the voxels above `threshold` (1.0 when both are empty)."""
    a, b = np.asarray(expected) > threshold, np.asarray(actual) > threshold
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else 1.0


def parity(expected, actual, occupancy=True):
    """Max and mean absolute difference, and for occupancy the voxel IoU at 0.5."""
    expected, actual = np.asarray(expected, np.float64), np.asarray(actual, np.float64)
    if expected.shape != actual.shape:
        raise ValueError(f"outputs differ in shape: {expected.shape} vs {actual.shape}")
    difference = np.abs(expected - actual)
    return {
        "max_abs_diff": float(difference.max()),
        "mean_abs_diff": float(difference.mean()),
        "iou": voxel_iou(expected, actual) if occupancy else None,
    }


def target(entry):
    """The issue's target for a file and whether it is met: fp32 max diff <= 1e-5, fp16 IoU >= 0.99."""
    if entry["format"] in ("saved_model", "tflite_fp32"):
        return {"what": f"max_abs_diff <= {FP32_MAX_ABS_DIFF:g}", "met": entry["max_abs_diff"] <= FP32_MAX_ABS_DIFF}
    if entry["format"] == "tflite_fp16" and entry["iou"] is not None:
        return {"what": f"iou >= {FP16_MIN_IOU}", "met": entry["iou"] >= FP16_MIN_IOU}
    return None


def _number(value, digits=3):
    return "n/a" if value is None else f"{value:.{digits}g}"


def _ops(entry):
    if not entry.get("ops"):
        return ""
    text = ", ".join(f"{name}×{op['count']}" for name, op in entry["ops"].items())
    if entry.get("float_ops") is not None:
        text += f"; in float32: {', '.join(entry['float_ops']) or 'none'}"
    text += "; XNNPACK runs the whole graph" if entry["xnnpack_whole_graph"] else "; XNNPACK runs part of the graph"
    return text


def markdown(report):
    """The report as a Markdown document with one table row per file."""
    lines = [
        f"# Export of `{report['model']}`",
        "",
        f"{report['model_type']}, {report['resolution']}^3 voxels, latent {report['latent_dim']}"
        + (f", images {report['image_size']}x{report['image_size']}" if report.get("image_size") else "")
        + f". Parity on a fixed batch of {report['parity_inputs']}.",
        f"int8 calibration: {report['calibration'] or 'no int8 files'}.",
        "",
        "| file | format | size (MB) | max abs diff | mean abs diff | IoU@0.5 | target | op types |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for entry in report["files"]:
        goal = entry.get("target")
        goal_text = "" if goal is None else f"{goal['what']}: {'met' if goal['met'] else 'NOT met'}"
        lines.append(
            f"| `{entry['file']}` | {entry['format']} | {entry['size_bytes'] / 1e6:.2f} | "
            f"{_number(entry['max_abs_diff'])} | {_number(entry['mean_abs_diff'])} | {_number(entry['iou'], 4)} | "
            f"{goal_text} | {_ops(entry)} |"
        )
    return "\n".join(lines) + "\n"


def write_report(folder, report):
    """Writes export_report.json and export_report.md into `folder` (a staging folder)."""
    with open(os.path.join(folder, JSON_NAME), "w") as handle:
        json.dump(report, handle, indent=2)
    with open(os.path.join(folder, MARKDOWN_NAME), "w") as handle:
        handle.write(markdown(report))
