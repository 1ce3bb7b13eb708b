"""BriGeS loss (SSI + gradient matching), hard-pixel masks and the affine-invariant evaluator."""

import numpy as np
import pytest
import torch

from fsmde_ros.briges.losses import briges_loss, gradient_matching_loss, normalise_median_mad
from fsmde_ros.briges.metrics import (
    AffineInvariantEvaluator,
    headline,
    occlusion_boundary_mask,
    thin_structure_mask,
)
from fsmde_ros.evaluation import EvalConfig


def test_loss_is_zero_for_affine_disparity_and_invariant_to_scale_and_shift():
    torch.manual_seed(0)
    depth = torch.rand(2, 16, 16) * 30 + 2
    mask = torch.rand(2, 16, 16) > 0.2
    exact = briges_loss(0.2 / depth + 4.0, depth, mask)
    assert float(exact["loss"]) == pytest.approx(0.0, abs=1e-4)
    pred = torch.rand(2, 16, 16)
    a, b = briges_loss(pred, depth, mask), briges_loss(7.0 * pred + 3.0, depth, mask)
    assert float(a["ssi"]) > 0.1 and float(a["gradient"]) > 0.1
    torch.testing.assert_close(a["loss"], b["loss"], rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(a["loss"], a["ssi"] + 0.5 * a["gradient"])


def test_loss_ignores_nan_and_masked_pixels():
    depth = torch.rand(1, 8, 8) * 10 + 1
    pred = 1.0 / depth
    pred[0, :2] = 100.0
    depth_nan = depth.clone()
    depth_nan[0, :2] = float("nan")
    mask = torch.ones_like(depth, dtype=torch.bool)
    assert float(briges_loss(pred, depth_nan, mask)["loss"]) == pytest.approx(0.0, abs=1e-4)
    mask[0, :2] = False
    assert float(briges_loss(pred, depth, mask)["loss"]) == pytest.approx(0.0, abs=1e-4)


def test_normalisation_by_median_and_mean_absolute_deviation():
    x = torch.tensor([[[1.0, 2.0, 6.0, 100.0]]])
    mask = torch.tensor([[[True, True, True, False]]])
    # median 2, mean |x - 2| = (1 + 0 + 4) / 3
    expected = torch.tensor([[[-1.0, 0.0, 4.0, 0.0]]]) / (5.0 / 3.0)
    torch.testing.assert_close(normalise_median_mad(x, mask), expected)


def test_gradient_matching_by_hand():
    residual = torch.tensor([[[0.0, 1.0], [0.0, 3.0]]])
    mask = torch.ones_like(residual, dtype=torch.bool)
    # x: |1| + |3|, y: |0| + |2|, over 4 valid pixels, one scale
    assert float(gradient_matching_loss(residual, mask, scales=1)) == pytest.approx(6.0 / 4.0)
    mask[0, 1, 1] = False
    assert float(gradient_matching_loss(residual, mask, scales=1)) == pytest.approx(1.0 / 3.0)


def test_loss_shape_mismatch_is_rejected():
    with pytest.raises(ValueError, match="share one"):
        briges_loss(torch.rand(1, 4, 4), torch.rand(1, 4, 5), torch.ones(1, 4, 4, dtype=torch.bool))


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


def _scene():
    depth = torch.full((2, 20, 20), 20.0)
    depth[:, 5:15, 8:12] = 5.0  # a near box: boundaries on its sides
    depth[:, :3] = float("nan")  # sky
    semantic = torch.zeros(2, 20, 20, dtype=torch.long)
    semantic[:, 5:15, 8:12] = 1
    semantic[:, 3:20, 2:4] = 2  # a 2-pixel pole
    return depth, semantic


def test_evaluator_scores_an_affine_disparity_as_perfect_on_every_subset():
    depth, semantic = _scene()
    ev = AffineInvariantEvaluator(("a", "b"), EvalConfig(max_depth=80.0), thin_width=4)
    ev.add(3.0 / depth.nan_to_num(1e3) + 0.2, depth, semantic)
    h = headline(ev.result())
    for subset in ("all", "boundary", "thin"):
        assert h[f"{subset}_abs_rel"] == pytest.approx(0.0, abs=1e-5)
        assert h[f"{subset}_a1"] == pytest.approx(1.0)
    per_camera = {name: r["per_camera"]["a"]["pixels"] for name, r in ev.result().items()}
    assert 0 < per_camera["boundary"] < per_camera["all"]


def test_evaluator_errors_on_boundaries_show_in_the_boundary_subset():
    depth, semantic = _scene()
    disparity = 1.0 / depth.nan_to_num(1e3)
    blurred = disparity.clone()
    blurred[:, 5:15, 7] = blurred[:, 5:15, 12] = 0.5 * (1 / 5 + 1 / 20)  # the box edges smeared
    ev = AffineInvariantEvaluator(("a", "b"), EvalConfig(max_depth=80.0), thin_width=4)
    ev.add(blurred, depth, semantic)
    h = headline(ev.result())
    assert h["boundary_abs_rel"] > 1.5 * h["all_abs_rel"] > 0
    with pytest.raises(ValueError, match="share one"):
        ev.add(blurred[:, :10], depth, semantic)


def test_headline_of_an_empty_subset_is_nan():
    ev = AffineInvariantEvaluator(("a",), EvalConfig(max_depth=80.0))
    depth = torch.full((1, 8, 8), 10.0)
    ev.add(torch.full((1, 8, 8), 0.1), depth, torch.zeros(1, 8, 8, dtype=torch.long))
    h = headline(ev.result())
    assert np.isnan(h["thin_abs_rel"]) and np.isnan(h["boundary_a1"])
