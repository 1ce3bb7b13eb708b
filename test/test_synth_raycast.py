"""Ray-primitive intersections and the exactness of the per-view culling windows."""

import math

import numpy as np
import pytest

from fsmde_ros.geometry import pixel_rays
from fsmde_ros.rig import default_rig_path, load_rig
from fsmde_ros.synth.lidar import LidarModel, camera_segment_deg
from fsmde_ros.synth.motion import EgoMotion
from fsmde_ros.synth.raycast import (
    GROUND,
    SKY,
    PinholeView,
    intersect_box,
    intersect_cylinder,
    intersect_ellipsoid,
    trace,
)
from fsmde_ros.synth.scene import generate_scene

ORIGIN = np.zeros(3, np.float32)


def _ray(*d):
    return np.array([d], np.float32)


def test_box_cylinder_ellipsoid_hand_values():
    half = np.array([1.0, 1.0, 1.0], np.float32)
    assert intersect_box(ORIGIN, _ray(1, 0, 0), np.array([5.0, 0, 0], np.float32), half, 0.0)[
        0
    ] == pytest.approx(4.0)
    # Rotated by 45 degrees the box shows an edge to the ray: entry at 5 - sqrt(2).
    t = intersect_box(ORIGIN, _ray(1, 0, 0), np.array([5.0, 0, 0], np.float32), half, math.pi / 4)[0]
    assert t == pytest.approx(5 - math.sqrt(2), abs=1e-5)
    assert np.isinf(intersect_box(ORIGIN, _ray(-1, 0, 0), np.array([5.0, 0, 0], np.float32), half, 0.0)[0])
    base = np.array([4.0, 0.0, -1.0], np.float32)
    assert intersect_cylinder(ORIGIN, _ray(1, 0, 0), base, 0.5, 2.0)[0] == pytest.approx(3.5)
    # From above onto the top cap of a cylinder 3 m below.
    top = intersect_cylinder(ORIGIN, _ray(0, 0, -1), np.array([0.0, 0.0, -5.0], np.float32), 0.5, 2.0)[0]
    assert top == pytest.approx(3.0)
    assert np.isinf(intersect_cylinder(ORIGIN, _ray(1, 0, 0), base, 0.5, 0.5)[0])  # passes above it
    radii = np.array([2.0, 1.0, 1.0], np.float32)
    assert intersect_ellipsoid(ORIGIN, _ray(1, 0, 0), np.array([10.0, 0, 0], np.float32), radii)[
        0
    ] == pytest.approx(8.0)
    assert intersect_ellipsoid(ORIGIN, _ray(0, 1, 0), np.array([0, 10.0, 0], np.float32), radii)[
        0
    ] == pytest.approx(9.0)


class _Everything:
    """Wraps a view so that every primitive is tested against every ray (the brute-force reference)."""

    def __init__(self, view):
        self.view = view
        self.origin, self.dirs, self.max_t = view.origin, view.dirs, view.max_t

    def windows(self, lo, hi):
        h, w = self.dirs.shape[:2]
        return np.tile(np.array([0, h, 0, w]), (lo.shape[0], 1))


def _same_hits(a, b):
    np.testing.assert_array_equal(a.group, b.group)
    np.testing.assert_array_equal(a.index, b.index)
    np.testing.assert_array_equal(a.t, b.t)


def test_pinhole_windows_lose_no_hit():
    scene = generate_scene(4)
    rig = load_rig(default_rig_path()).resized(64, 36)
    groups = scene.primitives_at(0.0)
    pose = EgoMotion(0.0, -1.6, 8.0, 0.0, 0.0, 0.1, 0.0).pose(0.0)
    for camera in rig.cameras:
        cam_pose = pose @ camera.cam2ego
        dirs = (pixel_rays(camera.K, 36, 64) @ cam_pose[:3, :3].T.astype(np.float32)).astype(np.float32)
        view = PinholeView(cam_pose[:3, 3], dirs, cam_pose[:3, :3], camera.K)
        fast, slow = trace(view, groups), trace(_Everything(view), groups)
        _same_hits(fast, slow)
        assert (fast.group >= 0).mean() > 0.3 and (fast.group == GROUND).any()


def test_lidar_windows_lose_no_hit_all_around():
    scene = generate_scene(5)
    rig = load_rig(default_rig_path())
    groups = scene.primitives_at(0.0)
    pose = EgoMotion(0.0, -1.6, 8.0, 0.0, 0.03, 0.2, 1.0).pose(0.3)
    lidar = LidarModel(az_step_deg=2.0)
    for camera in rig.cameras:  # the back segment straddles +-180 degrees
        view = lidar.view(pose, *camera_segment_deg(camera))
        fast, slow = trace(view, groups), trace(_Everything(view), groups)
        _same_hits(fast, slow)
        hit = fast.group != SKY
        assert hit.mean() > 0.5
        assert np.all(fast.t[hit] <= lidar.max_range_m)
