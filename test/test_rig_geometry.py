"""Rig loading, validation and pinhole geometry."""

import numpy as np
import pytest

from fsmde_ros.geometry import backproject, invert_transform, project, scale_intrinsics, transform_points
from fsmde_ros.rig import RigError, default_rig_path, load_rig, rig_from_dict


def test_default_rig_is_the_nuscenes_ring():
    rig = load_rig(default_rig_path())
    assert rig.names == ["CAM_FRONT", "CAM_FRONT_RIGHT", "CAM_BACK_RIGHT", "CAM_BACK", "CAM_BACK_LEFT",
                         "CAM_FRONT_LEFT"]
    assert rig.cameras[0].yaw_deg == pytest.approx(0.33, abs=0.1)
    assert rig.cameras[5].yaw_deg == pytest.approx(55.2, abs=0.1)
    # Six cameras around the car, each overlapping both neighbours.
    assert sorted(rig.adjacent) == [(0, 1), (0, 5), (1, 2), (2, 3), (3, 4), (4, 5)]


def test_resized_rig_scales_intrinsics():
    rig = load_rig(default_rig_path()).resized(400, 225)
    cam = rig.cameras[0]
    assert (cam.width, cam.height) == (400, 225)
    assert cam.K[0, 0] == pytest.approx(1266.417203 / 4)
    assert cam.K[0, 2] == pytest.approx((816.26702 + 0.5) / 4 - 0.5)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d.pop("cameras"), "missing key 'cameras'"),
        (lambda d: d["cameras"][0].__setitem__("K", [[0, 0, 1], [0, 1, 1], [0, 0, 1]]), "pinhole"),
        (lambda d: d["cameras"][0].__setitem__("K", [[1, 0], [0, 1]]), "expected shape"),
        (lambda d: d["cameras"][1].__setitem__("name", "CAM_FRONT"), "duplicate camera names"),
        (lambda d: d["cameras"][0]["cam2ego"][0].__setitem__(0, 5.0), "not a rigid transform"),
        (lambda d: d.__setitem__("image_width", 0), "image size must be positive"),
    ],
)
def test_bad_rig_is_rejected_with_a_named_problem(mutate, message):
    import yaml

    data = yaml.safe_load(default_rig_path().read_text())
    mutate(data)
    with pytest.raises(RigError, match=message):
        rig_from_dict(data, "bad.yaml")


def test_missing_rig_file(tmp_path):
    with pytest.raises(RigError, match="not found"):
        load_rig(tmp_path / "nope.yaml")


def test_backproject_then_project_round_trips():
    K = np.array([[100.0, 0, 31.5], [0, 100.0, 23.5], [0, 0, 1]])
    depth = np.full((48, 64), 7.0, dtype=np.float32)
    depth[0, 0] = np.nan
    pts = backproject(depth, K)
    assert pts[10, 20] == pytest.approx([(20 - 31.5) / 100 * 7, (10 - 23.5) / 100 * 7, 7.0], rel=1e-6)
    assert np.isnan(pts[0, 0]).all()
    uv, z = project(pts[1:, 1:], K)
    assert np.allclose(uv[5, 7], [8.0, 6.0], atol=1e-4)
    assert np.allclose(z, 7.0)


def test_transform_and_inverse():
    rig = load_rig(default_rig_path())
    T = rig.cameras[1].cam2ego
    p = np.array([[1.0, 2.0, 3.0]])
    assert np.allclose(transform_points(invert_transform(T), transform_points(T, p)), p)


def test_scale_intrinsics_keeps_pixel_centres_aligned():
    K = np.array([[10.0, 0, 1.5], [0, 10.0, 1.5], [0, 0, 1]])
    # A 4x4 image halved: the image centre (1.5) maps to the centre of the 2x2 image (0.5).
    assert scale_intrinsics(K, 0.5, 0.5)[0, 2] == pytest.approx(0.5)
