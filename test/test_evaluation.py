"""Depth metrics and cross-view consistency against hand-computed values."""

import math

import numpy as np
import pytest

from fsmde_ros.evaluation import (
    METRIC_NAMES,
    CrossViewConsistency,
    EvalConfig,
    MetricAccumulator,
    cross_view_consistency,
    image_metrics,
)
from fsmde_ros.geometry import invert_transform, pixel_rays
from fsmde_ros.rig import default_rig_path, load_rig

NAN = float("nan")


def test_metrics_match_hand_computed_values():
    gt = np.array([[1.0, 2.0], [3.5, NAN]], np.float32)
    pred = np.array([[2.0, 2.0], [2.0, 7.0]], np.float32)
    m = image_metrics(pred, gt, EvalConfig(max_depth=80.0))
    # Evaluated pixels: d = (2, 2, 2), g = (1, 2, 3.5); the NaN ground truth is left out.
    assert m.num_pixels == 3 and m.coverage == 1.0 and m.scale == 1.0
    v = m.values
    assert v["abs_rel"] == pytest.approx((1 / 1 + 0 + 1.5 / 3.5) / 3)
    assert v["sq_rel"] == pytest.approx((1 / 1 + 0 + 2.25 / 3.5) / 3)
    assert v["rmse"] == pytest.approx(math.sqrt((1 + 0 + 2.25) / 3))
    assert v["rmse_log"] == pytest.approx(math.sqrt((math.log(2) ** 2 + math.log(1.75) ** 2) / 3))
    # Ratios max(d/g, g/d) = (2, 1, 1.75): below 1.25 one, below 1.5625 one, below 1.953 two.
    assert (v["a1"], v["a2"], v["a3"]) == pytest.approx((1 / 3, 1 / 3, 2 / 3))


def test_depth_cap_and_prediction_clipping():
    gt = np.array([[10.0, 90.0, 0.0005]], np.float32)
    pred = np.array([[100.0, 90.0, 1.0]], np.float32)
    m = image_metrics(pred, gt, EvalConfig(max_depth=80.0))
    # 90 m and 0.5 mm are outside (1e-3, 80); the 100 m prediction is clipped to 80.
    assert m.num_pixels == 1
    assert m.values["abs_rel"] == pytest.approx(70 / 10)
    assert m.values["rmse"] == pytest.approx(70.0)


def test_median_scaling_removes_a_global_scale():
    rng = np.random.default_rng(0)
    gt = rng.uniform(2, 25, (6, 9)).astype(np.float32)
    m = image_metrics(gt * 3.0, gt, EvalConfig(median_scaling=True))
    assert m.scale == pytest.approx(1 / 3)
    assert m.values["abs_rel"] == pytest.approx(0.0, abs=1e-6)
    assert m.values["a1"] == 1.0
    metric = image_metrics(gt * 3.0, gt, EvalConfig())
    assert metric.values["abs_rel"] == pytest.approx(2.0, rel=1e-5)


def test_non_finite_predictions_lower_coverage():
    gt = np.array([[5.0, 5.0, 5.0, 5.0]], np.float32)
    pred = np.array([[5.0, NAN, np.inf, 6.0]], np.float32)
    m = image_metrics(pred, gt, EvalConfig())
    assert m.num_pixels == 2 and m.coverage == pytest.approx(0.5)
    assert m.values["abs_rel"] == pytest.approx(0.1)


def test_accumulator_averages_frames_then_cameras():
    acc = MetricAccumulator(["A", "B"], EvalConfig())
    gt = np.full((2, 1, 2), 10.0, np.float32)
    acc.add(np.array([[[11.0, 11.0]], [[10.0, 10.0]]], np.float32), gt)  # A 0.1, B 0.0
    acc.add(np.array([[[13.0, 13.0]], [[10.0, 10.0]]], np.float32), gt)  # A 0.3, B 0.0
    gt_b_missing = gt.copy()
    gt_b_missing[1] = NAN
    acc.add(np.full((2, 1, 2), 10.0, np.float32), gt_b_missing)  # A 0.0, B has no ground truth
    res = acc.result()
    assert res["per_camera"]["A"]["abs_rel"] == pytest.approx((0.1 + 0.3 + 0.0) / 3)
    assert res["per_camera"]["A"]["frames"] == 3 and res["per_camera"]["A"]["pixels"] == 6
    assert res["per_camera"]["B"]["abs_rel"] == 0.0 and res["per_camera"]["B"]["frames"] == 2
    assert res["mean"]["abs_rel"] == pytest.approx(((0.4 / 3) + 0.0) / 2)
    assert set(res["mean"]) == set(METRIC_NAMES)
    assert res["protocol"] == {"min_depth": 1e-3, "max_depth": 80.0, "median_scaling": False}


def test_dataset_caps_and_bad_config():
    assert EvalConfig.for_dataset("DDAD").max_depth == 200.0
    assert EvalConfig.for_dataset("nuscenes").max_depth == 80.0
    assert EvalConfig.for_dataset("synthsurround", max_depth=50).max_depth == 50.0
    with pytest.raises(ValueError, match="unknown dataset 'kitti'"):
        EvalConfig.for_dataset("kitti")
    with pytest.raises(ValueError, match="min_depth < max_depth"):
        EvalConfig(max_depth=0.0)


def test_shape_mismatch_is_rejected():
    with pytest.raises(ValueError, match="must be the same"):
        image_metrics(np.ones((2, 3)), np.ones((3, 2)), EvalConfig())
    with pytest.raises(ValueError, match=r"must both be \(2, H, W\)"):
        MetricAccumulator(["A", "B"], EvalConfig()).add(np.ones((3, 2, 2)), np.ones((3, 2, 2)))


def _stereo_pair():
    """Two identical cameras (fx = 10, 8 x 4 pixels); camera 1 sits 1 m to the right of camera 0."""
    K = np.array([[10.0, 0, 3.5], [0, 10.0, 1.5], [0, 0, 1]])
    right = np.eye(4)
    right[0, 3] = 1.0
    return np.stack([K, K]), np.stack([np.eye(4), right])


def test_consistency_hand_computed_on_a_fronto_parallel_wall():
    K, cam2ego = _stereo_pair()
    # Both see a wall at 10 m: a pixel of camera 0 lands one column to the left in camera 1.
    depth = np.full((2, 4, 8), 10.0, np.float32)
    res = cross_view_consistency(depth, K, cam2ego, [(0, 1)])
    assert res.pairs[(0, 1)].count == 7 * 4 and res.pairs[(1, 0)].count == 7 * 4
    assert res.abs_rel == 0.0 and res.count == 56
    # Camera 1 claims 11 m. 0->1: z = 10 against 11, r = 1/11. 1->0: the point at 11 m lands
    # 10/11 px to the right (rounded to one column), z = 11 against 10, r = 0.1.
    depth[1] = 11.0
    res = cross_view_consistency(depth, K, cam2ego, [(0, 1)])
    assert res.pairs[(0, 1)].abs_rel == pytest.approx(1 / 11)
    assert res.pairs[(1, 0)].abs_rel == pytest.approx(0.1)
    assert res.pairs[(1, 0)].count == 28
    assert res.abs_rel == pytest.approx((1 / 11 + 0.1) / 2)
    assert res.median_abs_rel == pytest.approx((1 / 11 + 0.1) / 2)
    assert res.as_dict(["L", "R"])["pairs"]["L->R"]["count"] == 28


def test_consistency_ignores_invalid_and_out_of_range_depth():
    K, cam2ego = _stereo_pair()
    depth = np.full((2, 4, 8), 10.0, np.float32)
    depth[0, :, 4:] = NAN
    depth[1, 0, :] = 500.0
    res = cross_view_consistency(depth, K, cam2ego, [(0, 1)], max_depth=80.0)
    # 0->1: columns 1..3 valid in camera 0, rows 1..3 valid in camera 1: 9 pixels.
    assert res.pairs[(0, 1)].count == 9
    assert res.abs_rel == 0.0


def _brute_force(depth, K, cam2ego, pairs, lo, hi):
    errors = []
    _, h, w = depth.shape
    for a, b in pairs:
        for i, j in ((a, b), (b, a)):
            pts = pixel_rays(K[i], h, w).reshape(-1, 3).astype(np.float64) * depth[i].reshape(-1, 1)
            ok = (depth[i].reshape(-1) >= lo) & (depth[i].reshape(-1) <= hi)
            T = invert_transform(cam2ego[j]) @ cam2ego[i]
            p = pts[ok] @ T[:3, :3].T + T[:3, 3]
            p = p[p[:, 2] > 1e-6]
            u = np.rint(K[j][0, 0] * p[:, 0] / p[:, 2] + K[j][0, 2])
            v = np.rint(K[j][1, 1] * p[:, 1] / p[:, 2] + K[j][1, 2])
            inside = (u >= 0) & (u < w) & (v >= 0) & (v < h)
            dj = depth[j][v[inside].astype(int), u[inside].astype(int)]
            z = p[inside, 2]
            valid = (dj >= lo) & (dj <= hi)
            errors.append(np.abs(z[valid] - dj[valid]) / dj[valid])
    return np.concatenate(errors)


def test_pruned_overlap_bands_lose_no_pixel_on_the_nuscenes_rig():
    rig = load_rig(default_rig_path()).resized(80, 45)
    rng = np.random.default_rng(1)
    depth = rng.uniform(0.5, 80.0, (6, 45, 80)).astype(np.float32)
    depth[rng.random(depth.shape) < 0.1] = NAN
    checker = CrossViewConsistency(rig.intrinsics(), rig.extrinsics(), rig.adjacent, 45, 80, 0.5, 80.0)
    res = checker(depth)
    expected = _brute_force(depth, rig.intrinsics(), rig.extrinsics(), rig.adjacent, 0.5, 80.0)
    assert res.count == expected.size > 0
    assert res.abs_rel == pytest.approx(float(np.mean(expected)), rel=1e-4)
    # The bands are narrow: far fewer pixels than the whole images are examined.
    assert sum(ix.size for ix in checker.overlap_indices().values()) < 0.6 * 12 * 45 * 80


def test_consistency_rejects_bad_input():
    K, cam2ego = _stereo_pair()
    with pytest.raises(ValueError, match="pair"):
        CrossViewConsistency(K, cam2ego, [(0, 2)], 4, 8)
    with pytest.raises(ValueError, match=r"must be \(2, 4, 8\)"):
        CrossViewConsistency(K, cam2ego, [(0, 1)], 4, 8)(np.ones((2, 4, 9)))
    with pytest.raises(ValueError, match="K"):
        CrossViewConsistency(K[:1], cam2ego, [(0, 1)], 4, 8)
