"""SSI + gradient-matching loss, affine-invariant alignment, hard-pixel masks and pooled metrics."""

import pytest
import torch

from fsmde_ros.briges.losses import align_least_squares, gradient_matching_loss, ssi_gradient_loss
from fsmde_ros.briges.metrics import (
    MetricAccumulator,
    affine_aligned_depth,
    occlusion_boundary_mask,
    thin_structure_mask,
)


def test_least_squares_alignment_recovers_an_affine_map():
    pred = torch.rand(2, 6, 7, dtype=torch.float64)
    target = 3.0 * pred - 0.5
    mask = torch.ones_like(pred, dtype=torch.bool)
    torch.testing.assert_close(align_least_squares(pred, target, mask), target)


def test_alignment_of_a_constant_prediction_falls_back_to_the_mean():
    pred = torch.ones(1, 2, 2)
    target = torch.tensor([[[1.0, 2.0], [3.0, 4.0]]])
    aligned = align_least_squares(pred, target, torch.ones_like(pred, dtype=torch.bool))
    torch.testing.assert_close(aligned, torch.full_like(pred, 2.5))


def test_ssi_loss_is_zero_for_affine_predictions_and_invariant_to_scale_and_shift():
    torch.manual_seed(0)
    target = torch.rand(2, 16, 16) + 0.5
    mask = torch.rand(2, 16, 16) > 0.2
    exact = ssi_gradient_loss(0.2 * target + 4.0, target, mask)
    assert float(exact["loss"]) == pytest.approx(0.0, abs=1e-4)
    pred = torch.rand(2, 16, 16)
    a, b = ssi_gradient_loss(pred, target, mask), ssi_gradient_loss(7.0 * pred - 3.0, target, mask)
    assert float(a["loss"]) > 0.1
    torch.testing.assert_close(a["loss"], b["loss"], rtol=1e-4, atol=1e-5)
    assert set(a) == {"loss", "ssi", "gradient"}


def test_ssi_loss_ignores_invalid_and_masked_pixels():
    target = torch.rand(1, 8, 8) + 0.5
    pred = target.clone()
    pred[0, :2] = 100.0
    target_nan = target.clone()
    target_nan[0, :2] = float("nan")
    mask = torch.ones_like(target, dtype=torch.bool)
    assert float(ssi_gradient_loss(pred, target_nan, mask)["loss"]) == pytest.approx(0.0, abs=1e-4)
    mask[0, :2] = False
    assert float(ssi_gradient_loss(pred, target, mask)["loss"]) == pytest.approx(0.0, abs=1e-4)


def test_gradient_matching_by_hand():
    residual = torch.tensor([[[0.0, 1.0], [0.0, 3.0]]])
    mask = torch.ones_like(residual, dtype=torch.bool)
    # x: |1| + |3| ; y: |0| + |2| ; over 4 valid pixels, a single scale
    assert float(gradient_matching_loss(residual, mask, scales=1)) == pytest.approx(6.0 / 4.0)
    mask[0, 1, 1] = False
    assert float(gradient_matching_loss(residual, mask, scales=1)) == pytest.approx(1.0 / 3.0)


def test_loss_shape_mismatch_is_rejected():
    with pytest.raises(ValueError, match="share one"):
        ssi_gradient_loss(torch.rand(1, 4, 4), torch.rand(1, 4, 5), torch.ones(1, 4, 4, dtype=torch.bool))


def test_affine_alignment_recovers_depth_from_affine_disparity_and_depth():
    gt = torch.rand(2, 10, 12, dtype=torch.float64) * 40 + 2
    gt[0, 0, 0] = float("nan")
    d = affine_aligned_depth(5.0 / gt + 0.3, gt, "disparity", 0.5, 80.0)
    valid = torch.isfinite(gt)
    torch.testing.assert_close(d[valid], gt[valid])
    d = affine_aligned_depth(0.1 * gt - 2.0, gt, "depth", 0.5, 80.0)
    torch.testing.assert_close(d[valid], gt[valid])
    with pytest.raises(ValueError, match="output space"):
        affine_aligned_depth(gt, gt, "log", 0.5, 80.0)


def test_affine_alignment_clips_to_the_depth_range():
    gt = torch.tensor([[[1.0, 2.0, 4.0, 8.0]]], dtype=torch.float64)
    pred = torch.tensor([[[1.0, 0.5, 0.25, -5.0]]], dtype=torch.float64)
    d = affine_aligned_depth(pred, gt, "disparity", 0.5, 10.0)
    assert float(d.max()) <= 10.0 and float(d.min()) >= 0.5


def test_occlusion_boundaries_follow_depth_jumps_and_sky():
    depth = torch.full((1, 6, 8), 10.0)
    depth[0, :, 4:] = 30.0
    mask = occlusion_boundary_mask(depth, log_ratio=0.15, radius=0)
    assert mask[0, :, 3:5].all() and not mask[0, :, :3].any() and not mask[0, :, 5:].any()
    smooth = torch.linspace(10.0, 11.0, 8).expand(1, 6, 8).clone()
    assert not occlusion_boundary_mask(smooth, radius=0).any()
    smooth[0, 0, :] = float("nan")
    assert occlusion_boundary_mask(smooth, radius=0)[0, 1].all()
    assert occlusion_boundary_mask(depth, radius=1)[0, :, 2:6].all()


def test_thin_structures_are_narrow_class_regions():
    sem = torch.zeros(1, 20, 20, dtype=torch.long)
    sem[0, 2:18, 3:5] = 1  # a 2-pixel pole
    sem[0, 5:15, 10:18] = 2  # an 8-pixel block
    thin = thin_structure_mask(sem, width=4)
    assert thin[0, 2:18, 3:5].all()
    assert not thin[0, 5:15, 10:18].any()
    assert not thin[0, 10, 0:3].any()
    with pytest.raises(ValueError, match="width"):
        thin_structure_mask(sem, width=1)


def test_pooled_metrics_by_hand():
    acc = MetricAccumulator()
    gt = torch.tensor([1.0, 2.0, 4.0, 10.0])
    depth = torch.tensor([1.1, 2.0, 6.0, 10.0])
    acc.add("all", depth, gt, torch.tensor([True, True, True, False]))
    acc.add("all", torch.tensor([5.0]), torch.tensor([4.0]), torch.tensor([True]))
    result = acc.result()["all"]
    assert result["pixels"] == 4
    assert result["abs_rel"] == pytest.approx((0.1 + 0.0 + 0.5 + 0.25) / 4)
    assert result["delta1"] == pytest.approx(2 / 4)  # 6/4 and 5/4 are not below 1.25
    assert "empty" not in acc.result()
