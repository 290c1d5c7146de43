"""bench.profile_step: oneDNN's verbose lines summed by primitive, and its flags checked before any work."""

import pytest

from bench import profile_step
from conftest import assert_refused, run_cli

LINES = [  # as oneDNN 3.7 (TensorFlow) and 3.12 (PyTorch) print them, with other output between
    "onednn_verbose,v1,info,oneDNN v3.7.3 (commit N/A)\n",
    "onednn_verbose,v1,primitive,info,template:operation,engine,primitive,implementation,prop_kind,memory_descriptors,"
    "attributes,auxiliary,problem_desc,exec_time\n",
    "onednn_verbose,v1,primitive,exec,cpu,reorder,jit:uni,undef,src:f32::blocked:abcde::f0 "
    "dst:f32:p:blocked:Acdeb16a::f0,attr-scratchpad:user,,8x4x3x3x3,0.175781\n",
    "onednn_verbose,v1,primitive,exec,cpu,convolution,brg_conv_fwd:avx512_core,forward_training,src:f32 dst:f32,,"
    "alg:convolution_direct,mb32_ic1oc64_id32od16,2.5\n",
    "onednn_verbose,v1,primitive,exec,cpu,convolution,jit:avx512_core,backward_weights,src:f32,,"
    "alg:convolution_direct,mb32_ic1oc64_id32od16,4.25\n",
    "onednn_verbose,v1,primitive,exec,cpu,convolution,brg_conv_fwd:avx512_core,forward_training,src:f32 dst:f32,,"
    "alg:convolution_direct,mb32_ic64oc128_id16od8,1.5\n",
    "onednn_verbose,v1,primitive,create:cache_miss,cpu,convolution,jit:avx512_core,forward_training,src:f32,,,"
    "mb32,0.9\n",
    "unrelated output, 12\n",
]


def test_exec_lines_are_summed_by_primitive_and_propagation():
    assert profile_step.primitive_times(LINES) == {
        ("reorder", "undef", "jit:uni"): [0.175781, 1],
        ("convolution", "forward_training", "brg_conv_fwd:avx512_core"): [4.0, 2],
        ("convolution", "backward_weights", "jit:avx512_core"): [4.25, 1],
    }


@pytest.mark.parametrize("args, fragment", [
    (["--configs=gan_16"], "--configs: unknown 'gan_16'"),
    (["--precisions=float16"], "--precisions: unknown 'float16'"),
    (["--steps=0"], "--steps: 0 must be at least 1"),
])
def test_bad_flags_are_one_line(args, fragment, capsys):
    code, captured = run_cli(profile_step.main, profile_step.FLAGS, ["profile_step", *args], capsys)
    assert fragment in assert_refused(code, captured, args)
