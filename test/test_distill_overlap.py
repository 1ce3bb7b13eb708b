"""Overlap strips of adjacent cameras for view-relational distillation."""

import numpy as np
import pytest
import torch

from fsmde_ros.distill.overlap import overlap_pairs, rig_from_calibration, sample_at
from fsmde_ros.geometry import invert_transform, pixel_rays, project, transform_points
from fsmde_ros.rig import default_rig_path, load_rig


@pytest.fixture(scope="module")
def rig():
    return load_rig(default_rig_path()).resized(288, 160)


def test_every_adjacent_pair_of_the_nuscenes_rig_has_overlap_points(rig):
    pairs = overlap_pairs(rig, points_per_view=50)
    assert {(p.a, p.b) for p in pairs} == set(rig.adjacent)
    for p in pairs:
        assert 8 <= len(p.points_a) <= 50 and 8 <= len(p.points_b) <= 50


def test_overlap_points_see_the_neighbour_at_the_reference_depth(rig):
    pairs = {(p.a, p.b): p for p in overlap_pairs(rig, reference_depth=15.0)}
    p = pairs[(0, 1)]  # CAM_FRONT and CAM_FRONT_RIGHT: the right edge of the front view
    front, right = rig.cameras[0], rig.cameras[1]
    assert p.points_a[:, 0].min() > front.width / 2 and p.points_b[:, 0].max() < right.width / 2
    rays = pixel_rays(front.K, front.height, front.width)
    uv = p.points_a.astype(int)
    r = rays[uv[:, 1], uv[:, 0]].astype(np.float64)
    pts = r / np.linalg.norm(r, axis=1, keepdims=True) * 15.0
    pix, z = project(transform_points(invert_transform(right.cam2ego) @ front.cam2ego, pts), right.K)
    assert np.all(z > 0)
    assert np.all((pix[:, 0] >= 0) & (pix[:, 0] <= right.width - 1))


def test_rig_from_calibration_rebuilds_the_neighbour_ring(rig):
    rebuilt = rig_from_calibration(rig.intrinsics(), rig.extrinsics(), 160, 288)
    assert set(rebuilt.adjacent) == set(rig.adjacent)


def test_overlap_rejects_bad_parameters(rig):
    with pytest.raises(ValueError, match="points_per_view"):
        overlap_pairs(rig, points_per_view=0)
    with pytest.raises(ValueError, match="reference_depth"):
        overlap_pairs(rig, reference_depth=-1.0)


def test_sample_at_reads_pixels_exactly_and_interpolates_between_them():
    maps = torch.arange(2 * 3 * 4, dtype=torch.float32).reshape(2, 3, 4)
    points = np.array([[0, 0], [3, 2], [1.5, 1.0]], dtype=np.float32)
    out = sample_at(maps, points)
    assert out.shape == (2, 3)
    assert out[0].tolist() == pytest.approx([0.0, 11.0, 5.5])
    assert out[1].tolist() == pytest.approx([12.0, 23.0, 17.5])
