"""Math of the hybrid bin head and the student's outputs."""

import dataclasses
import math

import pytest
import torch

from fsmde_ros.model import DeployStudent, ModelConfig, build_student, load_profile
from fsmde_ros.model.bins import (
    bin_centres_from_logits,
    confidence_from_log_probabilities,
    depth_from_probabilities,
)


def tiny_config(**overrides) -> ModelConfig:
    return dataclasses.replace(load_profile("tiny"), **overrides)


@pytest.mark.parametrize("scale", [0.0, 1.0, 50.0, 1e4])
def test_centres_strictly_increasing_and_inside_range(scale):
    logits = torch.randn(5, 16, generator=torch.Generator().manual_seed(1)) * scale
    centres = bin_centres_from_logits(logits, 0.5, 80.0)
    assert centres.shape == (5, 16)
    assert torch.all(centres[:, 1:] > centres[:, :-1])
    assert torch.all(centres > 0.5) and torch.all(centres < 80.0)


def test_uniform_logits_give_log_spaced_centres():
    centres = bin_centres_from_logits(torch.zeros(1, 4), 1.0, 16.0)[0]
    # log-width log(16)/4 = log 2 per bin; centres at the midpoints 2**0.5, 2**1.5, ...
    assert torch.allclose(centres, torch.tensor([2**0.5, 2**1.5, 2**2.5, 2**3.5]), rtol=1e-5)


def test_depth_is_probability_weighted_sum_of_centres():
    gen = torch.Generator().manual_seed(2)
    probs = torch.softmax(torch.randn(3, 4, 5, 6, generator=gen), dim=-1)
    centres = torch.sort(torch.rand(3, 6, generator=gen) * 10 + 1, dim=-1).values
    depth = depth_from_probabilities(probs, centres)
    expected = (probs * centres[:, None, None, :]).sum(-1)
    assert depth.shape == (3, 4, 5)
    assert torch.allclose(depth, expected, rtol=1e-6)


def test_confidence_is_one_minus_normalised_entropy():
    one_hot = torch.full((1, 1, 1, 8), -1e4)
    one_hot[..., 3] = 0.0
    uniform = torch.zeros(1, 1, 1, 8)
    two = torch.full((1, 1, 1, 8), -1e4)
    two[..., :2] = 0.0
    conf = [confidence_from_log_probabilities(torch.log_softmax(z, -1)).item()
            for z in (one_hot, uniform, two)]
    assert conf[0] == pytest.approx(1.0)
    assert conf[1] == pytest.approx(0.0, abs=1e-6)
    assert conf[2] == pytest.approx(1.0 - math.log(2) / math.log(8), rel=1e-5)


def test_student_outputs_are_consistent():
    config = tiny_config()
    net = build_student(config, seed=0).eval()
    images = torch.rand(4, 3, config.input_height, config.input_width)
    out = net(images)
    assert out.depth.shape == (4, 64, 96)
    assert out.probabilities.shape == (4, 64, 96, 8)
    assert out.bin_centres.shape == (4, 8)
    assert out.features.shape == (4, config.decoder_channels[-1], 32, 48)
    assert torch.allclose(out.probabilities.sum(-1), torch.ones(4, 64, 96), atol=1e-5)
    assert torch.allclose(out.probabilities, out.log_probabilities.exp())
    assert torch.all(out.bin_centres[:, 1:] > out.bin_centres[:, :-1])
    assert torch.all((out.bin_centres > 0.5) & (out.bin_centres < 80.0))
    assert torch.allclose(out.depth, (out.probabilities * out.bin_centres[:, None, None]).sum(-1), rtol=1e-5)
    lowest, highest = out.bin_centres[:, :1, None], out.bin_centres[:, -1:, None]
    assert torch.all((out.depth >= lowest) & (out.depth <= highest))
    assert torch.all((out.confidence >= 0) & (out.confidence <= 1))


def test_student_is_differentiable_through_every_output():
    net = build_student(tiny_config(), seed=0).train()
    out = net(torch.rand(2, 3, 64, 96))
    (out.depth.mean() + out.features.mean() + out.confidence.mean()).backward()
    assert all(p.grad is not None for p in net.parameters())


def test_deploy_wrapper_normalises_uint8_inside_the_graph():
    config = tiny_config()
    net = build_student(config, seed=0).eval()
    images = torch.randint(0, 256, (2, 64, 96, 3), dtype=torch.uint8)
    depth, confidence, probs, centres = DeployStudent(net)(images)
    reference = net(images.permute(0, 3, 1, 2).float() / 255.0)
    assert torch.allclose(depth, reference.depth)
    assert torch.allclose(confidence, reference.confidence)
    assert probs.shape == (2, 64, 96, 8) and centres.shape == (2, 8)


def test_shipped_profiles_match_the_agreed_sizes():
    cpu, gpu = load_profile("cpu"), load_profile("gpu")
    assert cpu.input_shape == (6, 160, 288, 3)
    assert gpu.input_shape == (6, 384, 640, 3)
    assert (cpu.min_depth, cpu.max_depth) == (0.5, 80.0)
