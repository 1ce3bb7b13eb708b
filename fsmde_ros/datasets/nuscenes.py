"""nuScenes (v1.0 layout) as ``SurroundSample``s: six key-frame camera images with LiDAR ground truth.

Reads the files directly (no nuscenes-devkit: it pulls in plotting and geometry packages for the four
JSON tables used here). Layout::

    <dataroot>/<version>/sample.json, sample_data.json, calibrated_sensor.json, ego_pose.json,
                         sensor.json, scene.json
    <dataroot>/samples/CAM_*/<...>.jpg
    <dataroot>/samples/LIDAR_TOP/<...>.pcd.bin    float32 x, y, z, intensity, ring per point

Sparse depth: the key-frame LiDAR sweep is moved from the LiDAR into the ego frame at the LiDAR's
timestamp, into the global frame, into the ego frame at each camera's timestamp and into the camera
(ego-motion compensation, as nuscenes-devkit's ``map_pointcloud_to_image``), then projected; points
closer than ``min_depth`` (1 m, as the devkit) are dropped and the nearest point wins a pixel.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import cv2
import numpy as np

from fsmde_ros.datasets.errors import DatasetError, read_json
from fsmde_ros.datasets.projection import pose_matrix, sparse_depth_from_points
from fsmde_ros.datasets.sample import SurroundSample
from fsmde_ros.geometry import invert_transform, scale_intrinsics, transform_points

NUSCENES_CAMERAS: tuple[str, ...] = (
    "CAM_FRONT",
    "CAM_FRONT_RIGHT",
    "CAM_BACK_RIGHT",
    "CAM_BACK",
    "CAM_BACK_LEFT",
    "CAM_FRONT_LEFT",
)
"""Rig order of the six nuScenes cameras (the order of config/rigs/nuscenes.yaml)."""

_TABLES = ("sample", "sample_data", "calibrated_sensor", "ego_pose", "sensor", "scene")
US_TO_NS = 1000


def load_image_rgb(path: Path, size: tuple[int, int] | None) -> np.ndarray:
    """An image file as uint8 RGB (H, W, 3), resized to ``size`` = (H, W) when given."""
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise DatasetError(f"{path}: image missing or unreadable")
    if size is not None and bgr.shape[:2] != tuple(size):
        bgr = cv2.resize(bgr, (size[1], size[0]), interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(bgr[..., ::-1])


def _read_table(root: Path, name: str) -> list[dict]:
    path = root / f"{name}.json"
    rows = read_json(path, "nuScenes table")
    if not isinstance(rows, list):
        raise DatasetError(f"{path}: a nuScenes table must be a JSON list of records")
    return rows


class NuScenesDataset:
    """Key frames of a nuScenes version, in scene order; ``image_size`` (H, W) resizes images and K."""

    def __init__(
        self,
        dataroot: str | Path,
        version: str = "v1.0-mini",
        cameras: Sequence[str] = NUSCENES_CAMERAS,
        lidar: str = "LIDAR_TOP",
        image_size: tuple[int, int] | None = None,
        min_depth: float = 1.0,
        scenes: Sequence[str] | None = None,
    ) -> None:
        self.root = Path(dataroot)
        self.version = version
        self.cameras = tuple(cameras)
        self.lidar = lidar
        self.image_size = image_size
        self.min_depth = min_depth
        table_root = self.root / version
        if not table_root.is_dir():
            raise DatasetError(f"{table_root}: nuScenes version directory not found")
        tables = {name: _read_table(table_root, name) for name in _TABLES}
        try:
            self._by_token = {name: {row["token"]: row for row in rows} for name, rows in tables.items()}
            channel_of = {row["token"]: row["channel"] for row in tables["sensor"]}
            sensor_of = {row["token"]: channel_of[row["sensor_token"]] for row in tables["calibrated_sensor"]}
            self._key_data: dict[tuple[str, str], dict] = {}
            for row in tables["sample_data"]:
                if row["is_key_frame"]:
                    self._key_data[(row["sample_token"], sensor_of[row["calibrated_sensor_token"]])] = row
            self._tokens: list[tuple[str, int, str]] = []
            for scene in tables["scene"]:
                if scenes is not None and scene["name"] not in scenes:
                    continue
                token, index = scene["first_sample_token"], 0
                while token:
                    self._tokens.append((scene["name"], index, token))
                    token, index = self._by_token["sample"][token]["next"], index + 1
        except KeyError as exc:
            raise DatasetError(f"{table_root}: a record lacks key or reference {exc}") from exc
        for scene_name, _, token in self._tokens:
            missing = [c for c in (*self.cameras, lidar) if (token, c) not in self._key_data]
            if missing:
                raise DatasetError(
                    f"{table_root}: sample {token} of scene {scene_name} has no key-frame "
                    f"sample_data for {missing}"
                )

    def __len__(self) -> int:
        return len(self._tokens)

    def __iter__(self) -> Iterator[SurroundSample]:
        for i in range(len(self)):
            yield self[i]

    def _ego_pose(self, record: dict) -> np.ndarray:
        pose = self._by_token["ego_pose"][record["ego_pose_token"]]
        return pose_matrix(pose["rotation"], pose["translation"])

    def _sensor_pose(self, record: dict) -> tuple[np.ndarray, dict]:
        calib = self._by_token["calibrated_sensor"][record["calibrated_sensor_token"]]
        return pose_matrix(calib["rotation"], calib["translation"]), calib

    def lidar_points(self, record: dict) -> np.ndarray:
        """(N, 3) float64 points of a LIDAR_TOP .pcd.bin file in the LiDAR frame."""
        path = self.root / record["filename"]
        if not path.is_file():
            raise DatasetError(f"{path}: LiDAR file not found")
        raw = np.fromfile(path, dtype=np.float32)
        if raw.size % 5:
            raise DatasetError(f"{path}: {raw.size} floats is not a whole number of 5-float points")
        return raw.reshape(-1, 5)[:, :3].astype(np.float64)

    def __getitem__(self, i: int) -> SurroundSample:
        scene_name, index, token = self._tokens[i]
        lidar_rec = self._key_data[(token, self.lidar)]
        lidar2ego, _ = self._sensor_pose(lidar_rec)
        ego_at_lidar = self._ego_pose(lidar_rec)
        points_global = transform_points(ego_at_lidar @ lidar2ego, self.lidar_points(lidar_rec))
        images, Ks, cam2egos, sparse, stamps, cam_poses = [], [], [], [], [], []
        for name in self.cameras:
            rec = self._key_data[(token, name)]
            image = load_image_rgb(self.root / rec["filename"], self.image_size)
            cam2ego, calib = self._sensor_pose(rec)
            K = np.asarray(calib.get("camera_intrinsic") or [], dtype=np.float64)
            if K.shape != (3, 3):
                raise DatasetError(
                    f"{self.root / self.version}/calibrated_sensor.json: {name} has no 3x3 camera_intrinsic"
                )
            h0, w0 = int(rec.get("height") or image.shape[0]), int(rec.get("width") or image.shape[1])
            K = scale_intrinsics(K, image.shape[1] / w0, image.shape[0] / h0)
            ego_at_cam = self._ego_pose(rec)
            points_cam = transform_points(invert_transform(ego_at_cam @ cam2ego), points_global)
            images.append(image)
            Ks.append(K)
            cam2egos.append(cam2ego)
            sparse.append(
                sparse_depth_from_points(points_cam, K, image.shape[0], image.shape[1], self.min_depth)
            )
            stamps.append(int(rec["timestamp"]) * US_TO_NS)
            cam_poses.append(ego_at_cam)
        sizes = {im.shape for im in images}
        if len(sizes) != 1:
            raise DatasetError(
                f"{self.root}: sample {token}: camera images differ in size {sorted(sizes)}; pass image_size"
            )
        return SurroundSample(
            images=np.stack(images),
            K=np.stack(Ks),
            cam2ego=np.stack(cam2egos),
            sparse_depth=np.stack(sparse),
            camera_names=self.cameras,
            stamps_ns=np.asarray(stamps, np.int64),
            ego_pose=ego_at_lidar,
            sequence=scene_name,
            frame_index=index,
            camera_ego_poses=np.stack(cam_poses),
        )
