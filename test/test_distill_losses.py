"""Losses and teacher alignment of fsmde_ros.distill against hand-computed values."""

import math

import pytest
import torch

from fsmde_ros.distill.alignment import align_disparity, fit_scale_shift
from fsmde_ros.distill.losses import (
    bin_chamfer_loss,
    ci_kd_loss,
    depth_kd_loss,
    depth_mask,
    silog_loss,
    ssi_disparity_loss,
    teacher_bin_logits,
    view_relation_loss,
)


def _gt(seed: int = 0, shape=(2, 6, 8)) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return 1.0 + 40.0 * torch.rand(shape, generator=g)


def test_depth_mask_excludes_nan_and_out_of_range():
    d = torch.tensor([[[float("nan"), 0.4, 1.0, 80.0, 81.0]]])
    assert depth_mask(d, 0.5, 80.0).tolist() == [[[False, False, True, True, False]]]


def test_silog_of_a_constant_ratio_is_the_variance_term():
    gt = _gt()
    mask = torch.ones_like(gt, dtype=torch.bool)
    loss = silog_loss(2.0 * gt, gt, mask)
    assert float(loss) == pytest.approx(10 * math.sqrt(0.15) * math.log(2.0), rel=1e-5)
    assert float(silog_loss(2.0 * gt, gt, mask, variance_focus=1.0)) < 0.02


def test_silog_skips_images_without_ground_truth():
    gt = _gt()
    mask = torch.ones_like(gt, dtype=torch.bool)
    mask[1] = False
    pred = gt.clone()
    pred[1] *= 5.0  # image 1 has no valid pixel, so its error must not count
    assert float(silog_loss(pred, gt, mask)) < 0.02
    assert float(silog_loss(pred, gt, torch.zeros_like(mask))) == 0.0


def test_bin_chamfer_is_computed_in_log_depth():
    centres = torch.tensor([[1.0, 10.0]])
    gt = torch.tensor([[[1.0, 2.0]]])
    mask = torch.ones_like(gt, dtype=torch.bool)
    expected = (math.log(5.0) ** 2 + math.log(2.0) ** 2) / 2
    assert float(bin_chamfer_loss(centres, gt, mask)) == pytest.approx(expected, rel=1e-6)


def test_bin_chamfer_gradient_moves_centres_towards_ground_truth():
    centres = torch.tensor([[2.0, 30.0]], requires_grad=True)
    gt = torch.full((1, 3, 3), 20.0)
    bin_chamfer_loss(centres, gt, torch.ones_like(gt, dtype=torch.bool)).backward()
    assert centres.grad[0, 1] > 0  # gradient descent pulls 30 m down towards 20 m


def test_teacher_bin_logits_peak_at_the_bin_holding_the_teacher_depth():
    centres = torch.tensor([[1.0, 2.0, 4.0, 8.0]])
    teacher = torch.tensor([[[2.0, 8.0, 2.5]]])
    z = teacher_bin_logits(teacher, centres[:, None, None, :])
    assert z.shape == (1, 1, 3, 4)
    assert z.argmax(-1).tolist() == [[[1, 3, 1]]]
    # one bin spacing away costs exactly 1/2 (sigma is the mean log spacing)
    assert float(z[0, 0, 0, 0]) == pytest.approx(-0.5, rel=1e-6)


def test_ci_kd_is_zero_when_the_student_matches_the_teacher_distribution():
    centres = torch.tensor([[1.0, 3.0, 9.0, 27.0]]).expand(5, 4)
    teacher = torch.tensor([1.5, 3.0, 7.0, 20.0, 27.0])
    for temperature in (1.0, 2.0):
        log_q = torch.log_softmax(teacher_bin_logits(teacher, centres), dim=-1)
        assert float(ci_kd_loss(log_q, teacher, centres, temperature=1.0)) == pytest.approx(0.0, abs=1e-6)
        wrong = torch.log_softmax(torch.zeros(5, 4), dim=-1)
        assert float(ci_kd_loss(wrong, teacher, centres, temperature)) > 0.01


def test_ci_kd_does_not_move_the_bin_centres():
    centres = torch.tensor([[1.0, 3.0, 9.0, 27.0]], requires_grad=True)
    logits = torch.zeros(3, 4, requires_grad=True)
    loss = ci_kd_loss(torch.log_softmax(logits, -1), torch.tensor([2.0, 5.0, 20.0]), centres.expand(3, 4))
    loss.backward()
    assert centres.grad is None or float(centres.grad.abs().sum()) == 0.0
    assert float(logits.grad.abs().sum()) > 0


def test_view_relations_ignore_a_common_scale_and_see_a_relative_one():
    g = torch.Generator().manual_seed(1)
    ta, tb = torch.randn(2, 7, generator=g), torch.randn(2, 5, generator=g)
    va, vb = torch.ones(2, 7, dtype=torch.bool), torch.ones(2, 5, dtype=torch.bool)
    assert float(view_relation_loss(ta + 0.7, tb + 0.7, ta, tb, va, vb)) == pytest.approx(0.0, abs=1e-7)
    # view a is twice too far relative to view b: every cross-view relation is off by log 2
    expected = math.log(2.0) - 0.05  # Smooth-L1 with beta 0.1
    assert float(view_relation_loss(ta + math.log(2.0), tb, ta, tb, va, vb)) == pytest.approx(
        expected, rel=1e-5
    )
    vb[:] = False
    assert float(view_relation_loss(ta + 1.0, tb, ta, tb, va, vb)) == 0.0


def test_ssi_loss_is_blind_to_scale_and_shift_of_disparity():
    gt = _gt(2)
    mask = torch.ones_like(gt, dtype=torch.bool)
    assert float(ssi_disparity_loss(3.0 / gt + 0.2, gt, mask)) == pytest.approx(0.0, abs=1e-5)
    assert float(ssi_disparity_loss(gt, gt, mask)) > 0.5  # depth instead of disparity is wrong


def test_depth_kd_is_silog_against_the_teacher():
    gt = _gt(3)
    mask = torch.ones_like(gt, dtype=torch.bool)
    assert float(depth_kd_loss(gt * 1.5, gt, mask)) == pytest.approx(float(silog_loss(gt * 1.5, gt, mask)))


@pytest.mark.parametrize("mode", ["median", "lstsq"])
def test_alignment_recovers_metric_depth_from_scaled_disparity(mode):
    gt = _gt(4)
    disparity = 0.37 / gt
    mask = torch.ones_like(gt, dtype=torch.bool)
    depth = align_disparity(disparity, gt, mask, mode, 0.5, 80.0)
    torch.testing.assert_close(depth, gt, rtol=1e-4, atol=1e-4)


def test_least_squares_alignment_also_removes_a_shift():
    gt = _gt(5)
    disparity = (1.0 / gt - 0.01) * 4.0
    mask = torch.zeros_like(gt, dtype=torch.bool)
    mask[:, ::2, ::3] = True  # sparse reference, as from LiDAR
    scale, shift = fit_scale_shift(disparity, gt, mask, "lstsq")
    torch.testing.assert_close(scale, torch.full((2,), 0.25), rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(shift, torch.full((2,), 0.01), rtol=1e-4, atol=1e-6)
    depth = align_disparity(disparity, gt, mask, "lstsq", 0.5, 80.0)
    torch.testing.assert_close(depth, gt, rtol=1e-3, atol=1e-3)


def test_alignment_without_reference_is_identity_and_clamped():
    disparity = torch.tensor([[[0.0, 0.5, 4.0]]])
    mask = torch.zeros_like(disparity, dtype=torch.bool)
    depth = align_disparity(disparity, torch.ones_like(disparity), mask, "lstsq", 0.5, 80.0)
    assert depth.tolist() == [[[80.0, 2.0, 0.5]]]


def test_alignment_rejects_bad_mode_and_shapes():
    d = torch.ones(1, 2, 2)
    with pytest.raises(ValueError, match="alignment mode"):
        fit_scale_shift(d, d, d > 0, "mean")
    with pytest.raises(ValueError, match="shapes differ"):
        fit_scale_shift(d, torch.ones(1, 2, 3), d > 0, "median")
