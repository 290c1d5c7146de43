"""Strided 3D convolutions oneDNN computes slowly, rearranged into ones it computes fast.

Profiled at 32^3, batch 32 (bench/profile_step.py), oneDNN ran two shapes of
the models' training step at a tenth of its usual rate or less:

- One channel on one side: the generator's last layer, a transposed
  convolution with one filter, took 43 ms a call (12 GFLOP/s) where D's first
  layer, the same arithmetic as a forward convolution, took 4 ms; D's first
  layer's input gradient is the same slow computation. Such a layer is
  stride^3 interleaved stride-1 convolutions, one per output phase (Shi et al.
  2016, "Is the deconvolution layer the same as a convolutional layer?"), so it
  runs as one stride-1 convolution whose output channels are the phases, with
  a kernel gathered from the strided one, then depth-to-space: 2.1-2.7x faster
  forward, float32 and bfloat16, at 32^3 and 64^3.
- One position on one side: G's first layer (from z) and D's last (to the
  logit) are matrix products over the kernel taps that meet the data, but
  their filter gradients took 21 ms and 3 ms a call at 32^3; as einsums the
  whole layer, forward and backward, takes 4.3 and 0.6 ms.

`conv3d_transpose` and `conv3d` return the rearranged computation, or None
where neither applies. The phase path's other gradients are TensorFlow's own
ops (a forward convolution and a filter gradient, both fast in oneDNN).
"""

import numpy as np
import tensorflow as tf


def padding_before(small, large, kernel_size, stride, padding):
    """Leading padding of a convolution from `large` to `small` positions (or a transposed one from `small`
    to `large`), by TensorFlow's rule."""
    if padding == "VALID":
        return 0
    return max((small - 1) * stride + kernel_size - large, 0) // 2


def phase_taps(kernel_size, stride, before):
    """(selection, lowest offset) of one axis of a transposed convolution with leading padding `before`:
    output stride * m + t is the sum over (i, a) with selection[i, t, a] = 1 of kernel tap a times input
    m + lowest offset + i."""
    entries = []
    for phase in range(stride):
        carry, first_tap = divmod(phase + before, stride)
        for tap in range(first_tap, kernel_size, stride):
            entries.append((carry - (tap - first_tap) // stride, phase, tap))
    lowest = min(offset for offset, _, _ in entries)
    selection = np.zeros((max(offset for offset, _, _ in entries) - lowest + 1, stride, kernel_size), np.float32)
    for offset, phase, tap in entries:
        selection[offset - lowest, phase, tap] = 1.0
    return selection, lowest


def phase_plan(small_spatial, large_spatial, kernel_size, strides, padding):
    """[(selection, (padding before, padding after))] per axis of a transposed convolution from
    `small_spatial` to `large_spatial` by phases, or None when the output is not whole phase blocks."""
    plan = []
    for small, large, kernel, stride in zip(small_spatial, large_spatial, kernel_size, strides):
        if large % stride:
            return None
        selection, lowest = phase_taps(kernel, stride, padding_before(small, large, kernel, stride, padding))
        after = large // stride + lowest + len(selection) - 1 - small
        if lowest > 0 or after < 0:
            return None
        plan.append((selection, (-lowest, after)))
    return plan


def transposed_conv_by_phases(inputs, kernel, plan):
    """tf.nn.conv3d_transpose of NDHWC `inputs` with `kernel` (kd, kh, kw, filters, channels) as `phase_plan`
    planned it: one stride-1 convolution with the phases as output channels, then depth-to-space."""
    selections = [tf.constant(selection, kernel.dtype) for selection, _ in plan]
    phase_kernel = tf.einsum("ipa,jqb,krd,abdfc->ijkcpqrf", *selections, kernel)
    strides = [selection.shape[1] for selection, _ in plan]
    filters = kernel.shape[3]
    phase_kernel = tf.reshape(phase_kernel, [*phase_kernel.shape[:4], int(np.prod(strides)) * filters])
    if all(before == after == len(selection) // 2 and len(selection) % 2 for selection, (before, after) in plan):
        phases = tf.nn.conv3d(inputs, phase_kernel, [1] * 5, "SAME")
    else:
        pads = [[0, 0], *(pads for _, pads in plan), [0, 0]]
        phases = tf.nn.conv3d(tf.pad(inputs, pads), phase_kernel, [1] * 5, "VALID")
    batch, blocks = tf.shape(phases)[0], phases.shape[1:4]
    phases = tf.reshape(phases, [batch, *blocks, *strides, filters])
    phases = tf.transpose(phases, [0, 1, 4, 2, 5, 3, 6, 7])
    return tf.reshape(phases, [batch, *(block * stride for block, stride in zip(blocks, strides)), filters])


def used_taps(large_spatial, kernel_size, strides, padding):
    """Per axis, the slice of kernel taps that meet a single position on the other side of a convolution
    from (or transposed one to) `large_spatial`, or None when some position meets no tap."""
    taps = []
    for large, kernel, stride in zip(large_spatial, kernel_size, strides):
        before = padding_before(1, large, kernel, stride, padding)
        if before + large > kernel:
            return None
        taps.append(slice(before, before + large))
    return tuple(taps)


def _filter_gradient(inputs, kernel, upstream, strides, padding):
    """The gradient of kernel in tf.nn.conv3d(inputs, kernel) given the outputs' gradient `upstream`."""
    return tf.raw_ops.Conv3DBackpropFilterV2(
        input=inputs, filter_sizes=tf.shape(kernel), out_backprop=upstream, strides=strides, padding=padding)


def conv3d_transpose(inputs, kernel, output_spatial, strides, padding):
    """tf.nn.conv3d_transpose (NDHWC, kernel (kd, kh, kw, filters, channels), padding "SAME" or "VALID")
    from a single input position or to a single filter, rearranged; None for other layers."""
    input_spatial = inputs.shape[1:4]
    if None in (*input_spatial, *output_spatial):
        return None
    if tuple(input_spatial) == (1, 1, 1):
        taps = used_taps(output_spatial, kernel.shape[:3], strides, padding)
        if taps is not None:
            return tf.einsum("bc,dhwfc->bdhwf", tf.reshape(inputs, [-1, kernel.shape[4]]), kernel[taps])
    if kernel.shape[3] != 1:
        return None
    plan = phase_plan(input_spatial, output_spatial, kernel.shape[:3], strides, padding)
    if plan is None:
        return None
    full_strides = [1, *strides, 1]

    @tf.custom_gradient
    def transposed(inputs, kernel):
        def gradient(upstream):
            return (tf.nn.conv3d(upstream, kernel, full_strides, padding),
                    _filter_gradient(upstream, kernel, inputs, full_strides, padding))

        return transposed_conv_by_phases(inputs, kernel, plan), gradient

    return transposed(inputs, kernel)


def conv3d(inputs, kernel, output_spatial, strides, padding):
    """tf.nn.conv3d (NDHWC, kernel (kd, kh, kw, channels, filters)) to a single output position, or from a
    single channel with its input gradient by phases; None for other layers."""
    input_spatial = inputs.shape[1:4]
    if None in (*input_spatial, *output_spatial):
        return None
    if tuple(output_spatial) == (1, 1, 1):
        taps = used_taps(input_spatial, kernel.shape[:3], strides, padding)
        if taps is not None:
            return tf.einsum("bdhwc,dhwcf->bf", inputs, kernel[taps])[:, None, None, None, :]
    if kernel.shape[3] != 1:
        return None
    plan = phase_plan(output_spatial, input_spatial, kernel.shape[:3], strides, padding)
    if plan is None:
        return None
    full_strides = [1, *strides, 1]

    @tf.custom_gradient
    def convolution(inputs, kernel):
        def gradient(upstream):
            return (transposed_conv_by_phases(upstream, kernel, plan),
                    _filter_gradient(inputs, kernel, upstream, full_strides, padding))

        return tf.nn.conv3d(inputs, kernel, full_strides, padding), gradient

    return convolution(inputs, kernel)
