"""bench.train_step's gate patterns agree in both frameworks; unknown bench settings are refused."""

import pytest
import torch

from bench import optimizer_step, torch_reference, train_step
from conftest import assert_refused, build_gan, random_voxels, run_cli, train_steps
from vaegan_utils.cli import parse_flags


def test_the_half_pattern_steps_keras_d_on_even_steps_only():
    model = build_gan("adam", 1e-3)
    every = train_step.follow_gate_pattern(model)
    every.assign(train_step.GATE_PATTERNS["half"])
    assert train_steps(model, random_voxels(), steps=4)["d_updated"] == [0.5]
    assert int(model.d_optimizer.iterations.numpy()) == 2 and int(model.g_optimizer.iterations.numpy()) == 4


def test_the_pytorch_reference_skips_d_backward_and_step_as_the_port_does():
    trainer = torch_reference.Trainer("gan", 32)
    voxels = (torch.rand(2, 1, 32, 32, 32) < 0.1).float()
    before = [p.detach().clone() for p in trainer.D.parameters()]
    assert trainer.step(voxels, d_steps=False)["d_updated"] is False
    assert all(p.grad is None for p in trainer.D.parameters())  # no backward pass reached D
    assert all(torch.equal(p, b) for p, b in zip(trainer.D.parameters(), before)) and not trainer.d_opt.state
    assert trainer.step(voxels, d_steps=True)["d_updated"] is True
    assert not all(torch.equal(p, b) for p, b in zip(trainer.D.parameters(), before)) and trainer.d_opt.state


@pytest.mark.parametrize("flag", ["--gate_patterns=open,sometimes", "--configs=gan_128", "--precisions=float16"])
def test_unknown_benchmark_settings_are_refused(flag, capsys):
    argv = ["bench.train_step", flag]
    code, captured = run_cli(lambda args: train_step.main(parse_flags(train_step.FLAGS, args)), train_step.FLAGS,
                             argv, capsys)
    name, value = flag.split("=")
    assert assert_refused(code, captured, argv).startswith(f"error: {name}: unknown '{value.split(',')[-1]}'")


def test_a_negative_inter_op_thread_count_is_refused(capsys):
    argv = ["bench.train_step", "--inter_op_threads=-1"]
    code, captured = run_cli(lambda args: train_step.main(parse_flags(train_step.FLAGS, args)), train_step.FLAGS,
                             argv, capsys)
    assert assert_refused(code, captured, argv).startswith("error: --inter_op_threads: -1 must be 0")


def test_an_unknown_allocator_is_refused(monkeypatch, capsys):
    monkeypatch.setenv("KERAS_VAEGAN_MALLOC", "tcmalloc")
    argv = ["bench.train_step", "--configs=gan_32"]
    code, captured = run_cli(lambda args: train_step.main(parse_flags(train_step.FLAGS, args)), train_step.FLAGS,
                             argv, capsys)
    assert assert_refused(code, captured, argv).startswith("error: KERAS_VAEGAN_MALLOC='tcmalloc': expected one of")


def test_the_optimizer_bench_refuses_an_unknown_config(capsys):
    argv = ["bench.optimizer_step", "--config=gan_128"]
    code, captured = run_cli(optimizer_step.main, optimizer_step.FLAGS, argv, capsys)
    assert assert_refused(code, captured, argv).startswith("error: --config: unknown 'gan_128'")
