"""Photometric, smoothness, decomposition, reflection-mask and pseudo-label pieces with exact expectations."""

from __future__ import annotations

import math

import pytest
import torch

from fsmde_ros.selfsup.decomposition import (
    LOG_EPS,
    contrastive_loss,
    diffuse_regression_loss,
    log_image,
    reconstruction_loss,
    sparsity_loss,
)
from fsmde_ros.selfsup.networks import L_SOFTNESS, IntrinsicNet
from fsmde_ros.selfsup.photometric import (
    INVALID_ERROR,
    SSIM_C1,
    edge_aware_smoothness,
    masked_mean,
    masked_planarity,
    min_reprojection,
    photometric_error,
    ssim_dissimilarity,
)
from fsmde_ros.selfsup.pseudo_labels import ablate_mask, fuse_teachers, log_l1_loss
from fsmde_ros.selfsup.reflection_mask import chi2_quantile_2dof, mahalanobis_outliers, reflection_mask


def test_photometric_error_of_identical_images_is_zero():
    x = torch.rand(2, 3, 8, 10, generator=torch.Generator().manual_seed(0))
    assert float(photometric_error(x, x).abs().max()) < 1e-6


def test_ssim_and_l1_of_constant_images_match_the_formula():
    a, b = 0.6, 0.2
    x, y = torch.full((1, 3, 5, 5), a), torch.full((1, 3, 5, 5), b)
    ssim = (2 * a * b + SSIM_C1) / (a * a + b * b + SSIM_C1)  # variances are zero, the C2 factors cancel
    expected_ssim = torch.full_like(x, (1 - ssim) / 2)
    torch.testing.assert_close(ssim_dissimilarity(x, y), expected_ssim, atol=1e-4, rtol=0)
    expected = 0.85 * (1 - ssim) / 2 + 0.15 * (a - b)
    torch.testing.assert_close(photometric_error(x, y), torch.full((1, 1, 5, 5), expected), atol=1e-4, rtol=0)


def test_min_reprojection_picks_the_best_valid_source_and_automasks():
    errors = torch.tensor([[[[0.5, 0.1, 0.3]], [[0.2, 0.4, 0.9]]]])  # (1, S=2, 1, 3)
    valid = torch.tensor([[[[True, False, True]], [[True, True, False]]]])
    best, keep = min_reprojection(errors, valid)
    torch.testing.assert_close(best, torch.tensor([[[[0.2, 0.4, 0.3]]]]))
    assert keep.all()
    # nothing valid at a pixel: it does not count
    best, keep = min_reprojection(errors, torch.zeros_like(valid))
    assert float(best.max()) == INVALID_ERROR and not keep.any()
    # auto-masking: identity error below the reprojection error drops the pixel
    identity = torch.tensor([[[[0.1, 0.5, 0.5]], [[0.9, 0.9, 0.9]]]])
    _, keep = min_reprojection(errors, valid, identity)
    assert keep.tolist() == [[[[False, True, True]]]]


def test_masked_mean_of_empty_mask_is_zero():
    values = torch.ones(1, 1, 2, 2)
    assert float(masked_mean(values, torch.zeros(1, 1, 2, 2, dtype=torch.bool))) == 0.0
    assert float(masked_mean(values * 3, torch.tensor([[[[True, False], [False, False]]]]))) == 3.0


def test_edge_aware_smoothness_exact_values():
    disparity = torch.tensor([[[[1.0, 1.0, 3.0, 3.0]]]])  # mean 2 -> normalized 0.5 0.5 1.5 1.5
    flat = torch.zeros(1, 3, 1, 4)
    # one step of 1.0 among 3 horizontal differences, no vertical differences (mean over empty = nan)
    dx_only = edge_aware_smoothness(torch.cat([disparity, disparity], 2), torch.cat([flat, flat], 2))
    torch.testing.assert_close(dx_only, torch.tensor(1.0 / 3.0))
    edge = torch.tensor([0.0, 0.0, 1.0, 1.0]).expand(1, 3, 2, 4)
    weighted = edge_aware_smoothness(torch.cat([disparity, disparity], 2), edge)
    torch.testing.assert_close(weighted, torch.tensor(math.exp(-1.0) / 3.0))
    assert float(edge_aware_smoothness(torch.full((1, 1, 3, 3), 2.0), torch.rand(1, 3, 3, 3))) == 0.0


def test_masked_planarity_vanishes_on_planes_and_matches_hand_values():
    v, u = torch.meshgrid(torch.arange(6.0), torch.arange(8.0), indexing="ij")
    everywhere = torch.ones(1, 1, 6, 8, dtype=torch.bool)
    # inverse depth of any plane is affine in the pixel coordinates: no second differences
    plane = (0.3 + 0.05 * u - 0.02 * v)[None, None]
    assert float(masked_planarity(plane, everywhere)) < 1e-6
    # a kink: d = 1 + |u - 2| on a 1 x 5 row; d* = d / mean(d) with mean 2.2; d_xx = 2 / 2.2 at u = 2 only
    row = (1.0 + (torch.arange(5.0) - 2).abs())[None, None, None]
    at_kink = torch.zeros(1, 1, 1, 5, dtype=torch.bool)
    at_kink[..., 2] = True
    # d_xx at u = 2 (mask at its centre); no rows for d_yy and d_xy (their masked means are 0)
    torch.testing.assert_close(masked_planarity(row, at_kink), torch.tensor(2.0 / 2.2))
    beside = torch.zeros_like(at_kink)
    beside[..., 3] = True
    assert float(masked_planarity(row, beside)) < 1e-6  # the second difference centred at u = 3 is 0
    assert float(masked_planarity(row, torch.zeros_like(at_kink))) == 0.0


def test_reconstruction_and_sparsity_losses():
    image = torch.full((1, 3, 2, 2), 0.5)
    log_l = torch.full_like(image, math.log(0.25))
    log_r = torch.full_like(image, math.log((0.5 + LOG_EPS) / 0.25))
    assert float(reconstruction_loss(image, log_l, log_r)) == pytest.approx(0.0, abs=1e-6)
    assert float(reconstruction_loss(image, log_l, torch.zeros_like(image))) == pytest.approx(
        math.log((0.5 + LOG_EPS) / 0.25), rel=1e-5)
    assert float(sparsity_loss(torch.tensor([1.0, -3.0]))) == 2.0


def test_diffuse_regression_is_the_mean_squared_log_error():
    diffuse = torch.tensor([[[[0.25, 0.5]]]])
    log_l = log_image(diffuse) + torch.tensor([[[[0.0, 2.0]]]])
    assert float(diffuse_regression_loss(log_l, diffuse)) == pytest.approx(2.0, rel=1e-6)  # (0 + 4) / 2
    assert float(diffuse_regression_loss(log_image(diffuse), diffuse)) == 0.0


def test_fresh_intrinsic_branch_is_the_identity_split():
    image = torch.rand(2, 3, 16, 24, generator=torch.Generator().manual_seed(0)) * 0.85 + 0.05
    with torch.no_grad():
        log_l, log_r = IntrinsicNet().eval()(image)
    assert torch.equal(log_r, torch.zeros_like(log_r))
    # log L = log I, bent below 0 by the smooth minimum: at most softplus(log 0.9 * beta) / beta away
    gap = math.log1p(math.exp(math.log(0.9 + LOG_EPS) * L_SOFTNESS)) / L_SOFTNESS
    bend = log_image(image) - log_l
    assert float(bend.min()) >= -1e-6 and float(bend.max()) <= gap + 1e-6
    assert bool((log_l <= 0).all())


def test_contrastive_loss_prefers_view_invariant_over_collapsed_diffuse():
    gen = torch.Generator().manual_seed(0)
    anchor = torch.rand(1, 3, 8, 8, generator=gen)
    valid = torch.ones(1, 1, 8, 8, dtype=torch.bool)
    matching = contrastive_loss(anchor, anchor, valid, num_negatives=8,
                                generator=torch.Generator().manual_seed(1))
    constant = torch.zeros_like(anchor)
    collapsed = contrastive_loss(constant, constant, valid, num_negatives=8,
                                 generator=torch.Generator().manual_seed(1))
    # a collapsed L cannot tell the positive from its 8 negatives: exactly log(1 + 8)
    assert float(collapsed) == pytest.approx(math.log(9.0), rel=1e-6)
    assert float(matching) < float(collapsed)


def test_chi2_quantile_and_bad_confidence():
    assert chi2_quantile_2dof(0.95) == pytest.approx(5.991464547, rel=1e-9)
    with pytest.raises(ValueError, match="confidence"):
        chi2_quantile_2dof(1.0)


def test_mahalanobis_flags_planted_outliers_of_a_correlated_cloud():
    gen = torch.Generator().manual_seed(0)
    z = torch.randn(2000, 2, generator=gen)
    cloud = torch.stack([z[:, 0], 0.9 * z[:, 0] + 0.3 * z[:, 1]], dim=1)  # strongly correlated
    planted = torch.tensor([[2.0, -1.0], [1.0, -1.5], [-1.0, 1.5]])  # small norm, against the correlation
    fit = mahalanobis_outliers(torch.cat([cloud, planted]), confidence=0.999)
    assert fit.outlier[-3:].all()
    assert int(fit.outlier[:-3].sum()) < 10  # ~0.1% of the inliers exceed the 99.9% quantile
    assert float(fit.d2[-3:].min()) > chi2_quantile_2dof(0.999)
    torch.testing.assert_close(fit.cov, torch.tensor([[1.0, 0.9], [0.9, 0.9]], dtype=torch.float64),
                               atol=0.08, rtol=0)


def test_mahalanobis_rejects_wrong_feature_shape():
    with pytest.raises(ValueError, match=r"\(M, 2\)"):
        mahalanobis_outliers(torch.zeros(5, 3))


def test_reflection_mask_flags_pixels_with_large_rgb_but_small_diffuse_error():
    gen = torch.Generator().manual_seed(0)
    base = torch.rand(1, 1, 32, 32, generator=gen) * 0.1 + 0.05
    rgb = base * torch.exp(0.1 * torch.randn(1, 1, 32, 32, generator=gen))
    diffuse = base * 0.8 * torch.exp(0.1 * torch.randn(1, 1, 32, 32, generator=gen))
    truth = torch.zeros(1, 1, 32, 32, dtype=torch.bool)
    truth[..., 4:8, 10:20] = True  # a reflective window: RGB error 6x, diffuse unchanged
    rgb = torch.where(truth, rgb * 6.0, rgb)
    # pixels bad in both (e.g. occlusion) are not reflective
    both = torch.zeros_like(truth)
    both[..., 20:22, 3:9] = True
    rgb, diffuse = torch.where(both, rgb * 6.0, rgb), torch.where(both, diffuse * 6.0, diffuse)
    valid = torch.ones_like(truth)
    valid[..., 0, :] = False
    mask = reflection_mask(rgb, diffuse, valid, confidence=0.99)
    assert mask[truth].all()
    assert not mask[both].any() and not mask[~valid].any()
    assert int((mask & ~truth).sum()) <= 10


def test_reflection_mask_rejects_shape_mismatch():
    with pytest.raises(ValueError, match="shapes differ"):
        reflection_mask(torch.zeros(1, 1, 4, 4), torch.zeros(1, 1, 4, 5),
                        torch.ones(1, 1, 4, 4, dtype=torch.bool))


def test_fuse_teachers_picks_per_pixel_and_log_l1():
    a, b = torch.full((1, 1, 2, 2), 2.0), torch.full((1, 1, 2, 2), 8.0)
    mask = torch.tensor([[[[True, False], [False, True]]]])
    torch.testing.assert_close(fuse_teachers(a, b, mask), torch.tensor([[[[8.0, 2.0], [2.0, 8.0]]]]))
    label = torch.tensor([[[[4.0, float("nan")], [4.0, 4.0]]]])
    assert float(log_l1_loss(torch.full((1, 1, 2, 2), 2.0), label)) == pytest.approx(math.log(2.0))
    with pytest.raises(ValueError, match="mask must be bool"):
        fuse_teachers(a, b, mask.float())
    with pytest.raises(ValueError, match="shapes differ"):
        fuse_teachers(a, b[..., :1], mask)


def test_control_masks_keep_the_count_per_image_or_cover_everything():
    mask = torch.zeros(2, 1, 4, 6, dtype=torch.bool)
    mask[0, 0, :2, :3] = True  # 6 pixels in a block
    mask[1, 0, 3, 5] = True  # 1 pixel
    shuffled = ablate_mask(mask, "shuffled", torch.Generator().manual_seed(0))
    assert shuffled.shape == mask.shape and shuffled.dtype == torch.bool
    assert [int(shuffled[b].sum()) for b in range(2)] == [6, 1]
    assert not torch.equal(shuffled[0], mask[0])  # moved (6 of 24 pixels staying in place is unlikely)
    assert bool(ablate_mask(mask, "everywhere").all())
    with pytest.raises(ValueError, match="control mask must be one of"):
        ablate_mask(mask, "random")
