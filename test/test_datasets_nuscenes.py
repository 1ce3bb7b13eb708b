"""nuScenes v1.0 loader on a tiny fixture written in the real on-disk layout."""

import json

import cv2
import numpy as np
import pytest

from fsmde_ros.datasets.errors import DatasetError
from fsmde_ros.datasets.nuscenes import NUSCENES_CAMERAS, NuScenesDataset
from fsmde_ros.datasets.projection import matrix_quaternion, pose_matrix, quaternion_matrix
from fsmde_ros.geometry import invert_transform, transform_points
from fsmde_ros.rig import default_rig_path, load_rig

W, H = 64, 36
T0 = 1_532_402_927_647_951  # microseconds, like nuScenes stamps


def _yaw_pose(yaw_deg, xyz):
    c, s = np.cos(np.radians(yaw_deg)), np.sin(np.radians(yaw_deg))
    T = np.eye(4)
    T[:2, :2] = [[c, -s], [s, c]]
    T[:3, 3] = xyz
    return T


def _record(T):
    return {"rotation": list(matrix_quaternion(T[:3, :3])), "translation": T[:3, 3].tolist()}


LIDAR2EGO = _yaw_pose(90.0, (0.943, 0.0, 1.841))
EGO_AT_LIDAR = [_yaw_pose(30.0, (100.0, 50.0, 0.0)), _yaw_pose(31.0, (104.0, 52.0, 0.0))]
DRIVE = 0.6  # metres the ego moves between the LiDAR stamp and the camera stamps


def write_fixture(root, point_in_front=(0.5, -0.2, 10.0)):
    """Two key frames of one scene; one LiDAR point sits 10 m in front of CAM_FRONT at its capture time."""
    rig = load_rig(default_rig_path()).resized(W, H)
    version = root / "v1.0-mini"
    version.mkdir(parents=True)
    tables = {k: [] for k in ("sample", "sample_data", "calibrated_sensor", "ego_pose", "sensor", "scene")}
    for name in (*NUSCENES_CAMERAS, "LIDAR_TOP"):
        tables["sensor"].append(
            {"token": f"s_{name}", "channel": name, "modality": "lidar" if name == "LIDAR_TOP" else "camera"}
        )
    for cam in rig.cameras:
        tables["calibrated_sensor"].append(
            {
                "token": f"cs_{cam.name}",
                "sensor_token": f"s_{cam.name}",
                **_record(cam.cam2ego),
                "camera_intrinsic": cam.K.tolist(),
            }
        )
    tables["calibrated_sensor"].append(
        {"token": "cs_LIDAR_TOP", "sensor_token": "s_LIDAR_TOP", **_record(LIDAR2EGO), "camera_intrinsic": []}
    )
    expected = []
    for k in range(2):
        sample = f"sample{k}"
        tables["sample"].append(
            {
                "token": sample,
                "timestamp": T0 + k * 500_000,
                "scene_token": "scene0",
                "prev": f"sample{k - 1}" if k else "",
                "next": "sample1" if k == 0 else "",
            }
        )
        ego_lidar = EGO_AT_LIDAR[k]
        ego_cam = ego_lidar @ _yaw_pose(0.0, (DRIVE, 0.0, 0.0))
        for pose_token, T in ((f"ep_lidar{k}", ego_lidar), (f"ep_cam{k}", ego_cam)):
            tables["ego_pose"].append({"token": pose_token, "timestamp": T0, **_record(T)})
        front = rig.cameras[0]
        p_world = transform_points(ego_cam @ front.cam2ego, np.array(point_in_front))
        behind = transform_points(ego_cam, np.array([-30.0, 0.0, 1.0]))  # seen by CAM_BACK only
        points = transform_points(invert_transform(ego_lidar @ LIDAR2EGO), np.stack([p_world, behind]))
        cloud = np.zeros((2, 5), np.float32)
        cloud[:, :3] = points
        lidar_file = f"samples/LIDAR_TOP/n015__LIDAR_TOP__{k}.pcd.bin"
        (root / lidar_file).parent.mkdir(parents=True, exist_ok=True)
        cloud.tofile(root / lidar_file)
        tables["sample_data"].append(
            {
                "token": f"sd_lidar{k}",
                "sample_token": sample,
                "ego_pose_token": f"ep_lidar{k}",
                "calibrated_sensor_token": "cs_LIDAR_TOP",
                "timestamp": T0 + k * 500_000,
                "fileformat": "pcd",
                "is_key_frame": True,
                "height": 0,
                "width": 0,
                "filename": lidar_file,
                "prev": "",
                "next": "",
            }
        )
        for j, cam in enumerate(rig.cameras):
            filename = f"samples/{cam.name}/n015__{cam.name}__{k}.jpg"
            (root / filename).parent.mkdir(parents=True, exist_ok=True)
            bgr = np.zeros((H, W, 3), np.uint8)
            bgr[..., 2] = 200  # red in BGR
            cv2.imwrite(str(root / filename), bgr)
            for key_frame in (True, False):  # a non-key sweep must be ignored
                tables["sample_data"].append(
                    {
                        "token": f"sd_{cam.name}{k}{key_frame}",
                        "sample_token": sample,
                        "ego_pose_token": f"ep_cam{k}",
                        "calibrated_sensor_token": f"cs_{cam.name}",
                        "timestamp": T0 + k * 500_000 + 10_000 * (j + 1),
                        "fileformat": "jpg",
                        "is_key_frame": key_frame,
                        "height": H,
                        "width": W,
                        "filename": filename,
                        "prev": "",
                        "next": "",
                    }
                )
        expected.append(front.K @ np.array(point_in_front) / point_in_front[2])
    tables["scene"].append(
        {
            "token": "scene0",
            "name": "scene-0061",
            "first_sample_token": "sample0",
            "last_sample_token": "sample1",
            "nbr_samples": 2,
            "description": "fixture",
        }
    )
    for name, rows in tables.items():
        (version / f"{name}.json").write_text(json.dumps(rows))
    return expected


def test_quaternion_round_trip():
    T = _yaw_pose(37.0, (1, 2, 3)) @ pose_matrix((0.9, 0.1, -0.3, 0.2), (0, 0, 0))
    np.testing.assert_allclose(quaternion_matrix(*matrix_quaternion(T[:3, :3])), T[:3, :3], atol=1e-12)
    with pytest.raises(ValueError, match="zero"):
        quaternion_matrix(0, 0, 0, 0)


def test_loader_projects_the_lidar_with_ego_motion_compensation(tmp_path):
    expected = write_fixture(tmp_path)
    ds = NuScenesDataset(tmp_path, "v1.0-mini")
    assert len(ds) == 2
    sample = ds[1]
    assert (
        sample.camera_names == NUSCENES_CAMERAS
        and sample.sequence == "scene-0061"
        and sample.frame_index == 1
    )
    assert sample.images.shape == (6, H, W, 3)
    assert abs(int(sample.images[0, 5, 5, 0]) - 200) < 8 and sample.images[0, 5, 5, 2] < 8  # RGB order
    np.testing.assert_array_equal(sample.stamps_ns, (T0 + 500_000 + 10_000 * np.arange(1, 7)) * 1000)
    front = sample.sparse_depth[0]
    u, v = np.rint(expected[1][:2]).astype(int)
    assert np.count_nonzero(np.isfinite(front)) == 1
    assert front[v, u] == pytest.approx(10.0, abs=1e-4)
    back = sample.sparse_depth[3]
    assert np.count_nonzero(np.isfinite(back)) == 1 and np.nanmax(back) == pytest.approx(30.0, abs=0.05)
    np.testing.assert_allclose(sample.ego_pose, EGO_AT_LIDAR[1], atol=1e-9)
    assert np.linalg.norm(sample.camera_ego_poses[0][:3, 3] - EGO_AT_LIDAR[1][:3, 3]) == pytest.approx(DRIVE)
    rig = load_rig(default_rig_path())
    np.testing.assert_allclose(sample.cam2ego, rig.extrinsics(), atol=1e-6)


def test_resizing_scales_intrinsics_and_reprojects(tmp_path):
    write_fixture(tmp_path)
    small = NuScenesDataset(tmp_path, "v1.0-mini", image_size=(18, 32))[0]
    full = NuScenesDataset(tmp_path, "v1.0-mini")[0]
    assert small.images.shape == (6, 18, 32, 3)
    np.testing.assert_allclose(small.K[:, 0, 0], full.K[:, 0, 0] / 2)
    assert np.nanmax(small.sparse_depth[0]) == pytest.approx(10.0, abs=1e-4)


def test_bad_datasets_are_reported(tmp_path):
    with pytest.raises(DatasetError, match="version directory not found"):
        NuScenesDataset(tmp_path, "v1.0-mini")
    write_fixture(tmp_path)
    version = tmp_path / "v1.0-mini"
    data = json.loads((version / "sample_data.json").read_text())
    (version / "sample_data.json").write_text(
        json.dumps([d for d in data if "CAM_BACK_LEFT" not in d["token"]])
    )
    with pytest.raises(DatasetError, match=r"no key-frame sample_data for \['CAM_BACK_LEFT'\]"):
        NuScenesDataset(tmp_path, "v1.0-mini")
    (version / "sample_data.json").write_text(json.dumps(data))
    (tmp_path / "samples/LIDAR_TOP/n015__LIDAR_TOP__0.pcd.bin").write_bytes(b"\0" * 12)
    with pytest.raises(DatasetError, match="not a whole number of 5-float points"):
        NuScenesDataset(tmp_path, "v1.0-mini")[0]
    (version / "ego_pose.json").unlink()
    with pytest.raises(DatasetError, match=r"ego_pose\.json: nuScenes table not found"):
        NuScenesDataset(tmp_path, "v1.0-mini")
