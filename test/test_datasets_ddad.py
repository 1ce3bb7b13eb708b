"""DDAD (DGP JSON) loader on a tiny fixture written in the real on-disk layout."""

import json

import cv2
import numpy as np
import pytest

from fsmde_ros.datasets.ddad import DDAD_CAMERAS, DDADDataset, parse_timestamp_ns
from fsmde_ros.datasets.errors import DatasetError
from fsmde_ros.datasets.projection import matrix_quaternion
from fsmde_ros.geometry import invert_transform, transform_points
from fsmde_ros.rig import default_rig_path, load_rig

W, H = 64, 40


def _yaw_pose(yaw_deg, xyz):
    c, s = np.cos(np.radians(yaw_deg)), np.sin(np.radians(yaw_deg))
    T = np.eye(4)
    T[:2, :2] = [[c, -s], [s, c]]
    T[:3, 3] = xyz
    return T


def _pose(T):
    w, x, y, z = matrix_quaternion(T[:3, :3])
    tx, ty, tz = T[:3, 3]
    return {"translation": {"x": tx, "y": ty, "z": tz}, "rotation": {"qx": x, "qy": y, "qz": z, "qw": w}}


LIDAR2EGO = _yaw_pose(-90.0, (1.2, 0.0, 1.9))
EGO_LIDAR = _yaw_pose(10.0, (5.0, -3.0, 0.0))
EGO_CAM = EGO_LIDAR @ _yaw_pose(0.5, (0.8, 0.05, 0.0))  # the ego moved between the two stamps


def write_fixture(root, structured=True, distortion=0.0):
    rig = load_rig(default_rig_path()).resized(W, H)
    scene_dir = root / "000150"
    (scene_dir / "calibration").mkdir(parents=True)
    names = [*DDAD_CAMERAS, "LIDAR"]
    calib = {"names": names, "intrinsics": [], "extrinsics": []}
    for cam in rig.cameras:  # the nuScenes ring stands in for DDAD's six cameras
        K = cam.K
        calib["intrinsics"].append(
            {"fx": K[0, 0], "fy": K[1, 1], "cx": K[0, 2], "cy": K[1, 2], "skew": 0.0, "k1": distortion}
        )
        calib["extrinsics"].append(_pose(cam.cam2ego))
    calib["intrinsics"].append({})
    calib["extrinsics"].append(_pose(LIDAR2EGO))
    (scene_dir / "calibration" / "c0ffee.json").write_text(json.dumps(calib))
    data, keys = [], []
    point_cam = np.array([-0.4, 0.3, 12.0])
    front = rig.cameras[0]
    p_world = transform_points(EGO_CAM @ front.cam2ego, point_cam)
    p_lidar = transform_points(invert_transform(EGO_LIDAR @ LIDAR2EGO), p_world[None])
    (scene_dir / "point_cloud" / "LIDAR").mkdir(parents=True)
    if structured:
        cloud = np.zeros(1, dtype=[("X", "<f4"), ("Y", "<f4"), ("Z", "<f4"), ("INTENSITY", "<f4")])
        cloud["X"], cloud["Y"], cloud["Z"] = p_lidar.T
    else:
        cloud = np.concatenate([np.ones((1, 1)), p_lidar], axis=1).astype(np.float32)  # INTENSITY first
    np.savez_compressed(scene_dir / "point_cloud" / "LIDAR" / "15616458249936530.npz", data=cloud)
    data.append(
        {
            "id": {"log": "log", "name": "LIDAR", "timestamp": "2019-06-27T18:17:04.993653Z", "index": "0"},
            "key": "k_lidar",
            "datum": {
                "point_cloud": {
                    "filename": "point_cloud/LIDAR/15616458249936530.npz",
                    "point_format": ["X", "Y", "Z", "INTENSITY"] if structured else [3, 0, 1, 2],
                    "pose": _pose(EGO_LIDAR @ LIDAR2EGO),
                }
            },
        }
    )
    keys.append("k_lidar")
    for j, (name, cam) in enumerate(zip(DDAD_CAMERAS, rig.cameras, strict=True)):
        filename = f"rgb/{name}/1561645824{j}.png"
        (scene_dir / filename).parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(scene_dir / filename), np.full((H, W, 3), (10, 100, 200), np.uint8))
        data.append(
            {
                "id": {"log": "log", "name": name, "timestamp": f"2019-06-27T18:17:05.0{j}0000001Z"},
                "key": f"k_{name}",
                "datum": {
                    "image": {
                        "filename": filename,
                        "height": H,
                        "width": W,
                        "channels": 3,
                        "pose": _pose(EGO_CAM @ cam.cam2ego),
                    }
                },
            }
        )
        keys.append(f"k_{name}")
    scene = {
        "name": "000150",
        "log": "log",
        "samples": [
            {
                "id": {"log": "log", "timestamp": "2019-06-27T18:17:04.993653Z", "index": "0"},
                "datumKeys": keys,
                "calibrationKey": "c0ffee",
            }
        ],
        "data": data,
    }
    (scene_dir / "scene_5f1a.json").write_text(json.dumps(scene))
    (root / "ddad.json").write_text(
        json.dumps(
            {"metadata": {"name": "DDAD"}, "scene_splits": {"1": {"filenames": ["000150/scene_5f1a.json"]}}}
        )
    )
    return front.K @ point_cam / point_cam[2]


@pytest.mark.parametrize("structured", [True, False])
def test_loader_projects_lidar_with_ego_motion_compensation(tmp_path, structured):
    pixel = write_fixture(tmp_path, structured)
    ds = DDADDataset(tmp_path, "val")
    assert len(ds) == 1
    sample = ds[0]
    assert sample.camera_names == DDAD_CAMERAS and sample.sequence == "000150"
    assert sample.images.shape == (6, H, W, 3) and tuple(sample.images[0, 3, 3]) == (200, 100, 10)
    u, v = np.rint(pixel[:2]).astype(int)
    assert np.count_nonzero(np.isfinite(sample.sparse_depth)) == 1
    assert sample.sparse_depth[0, v, u] == pytest.approx(12.0, abs=1e-4)
    np.testing.assert_allclose(sample.ego_pose, EGO_LIDAR, atol=1e-9)
    np.testing.assert_allclose(sample.camera_ego_poses[2], EGO_CAM, atol=1e-6)
    assert sample.stamps_ns[1] - sample.stamps_ns[0] == 10_000_000
    assert sample.stamps_ns[0] == parse_timestamp_ns("2019-06-27T18:17:05.000000001Z", "t")


def test_distorted_images_are_undistorted_and_resizing_scales_k(tmp_path):
    write_fixture(tmp_path, distortion=-0.05)
    sample = DDADDataset(tmp_path, "val", image_size=(20, 32))[0]
    assert sample.images.shape == (6, 20, 32, 3)
    assert sample.K[0, 0, 0] == pytest.approx(load_rig(default_rig_path()).resized(32, 20).cameras[0].K[0, 0])
    assert np.nanmax(sample.sparse_depth[0]) == pytest.approx(12.0, abs=1e-4)


def test_timestamps_and_bad_inputs(tmp_path):
    assert parse_timestamp_ns({"seconds": 3, "nanos": 5}, "t") == 3_000_000_005
    with pytest.raises(DatasetError, match="not RFC 3339"):
        parse_timestamp_ns("yesterday", "t")
    with pytest.raises(DatasetError, match="unknown split 'dev'"):
        DDADDataset(tmp_path, "dev")
    with pytest.raises(DatasetError, match="DGP scene dataset JSON not found"):
        DDADDataset(tmp_path, "val")
    write_fixture(tmp_path)
    with pytest.raises(DatasetError, match="no scenes for split 'train'"):
        DDADDataset(tmp_path, "train")
    with pytest.raises(DatasetError, match=r"no datum or calibration for \['CAMERA_02'\]"):
        DDADDataset(tmp_path, "val", cameras=("CAMERA_01", "CAMERA_02"))[0]
    (tmp_path / "000150" / "point_cloud" / "LIDAR" / "15616458249936530.npz").write_bytes(b"junk")
    with pytest.raises(DatasetError, match="not a DGP point cloud npz"):
        DDADDataset(tmp_path, "val")[0]
