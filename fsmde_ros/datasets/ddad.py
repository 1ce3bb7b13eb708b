"""DDAD (TRI's DGP scene format) as ``SurroundSample``s: six cameras with LiDAR ground truth.

Reads the DGP JSON and data files directly (the ``dgp`` package needs protobuf-compiled schemas and
a pinned dependency set; the few fields used here are plain JSON). Layout::

    <root>/ddad.json                      SceneDataset: scene_splits {"0": train, "1": val, "2": test}
    <root>/<scene>/scene_<sha1>.json      Scene: samples (datum_keys, calibration_key) and data (datums)
    <root>/<scene>/calibration/<key>.json names, intrinsics (fx, fy, cx, cy, skew, k1.., p1..),
                                          extrinsics (sensor -> vehicle poses)
    <root>/<scene>/rgb/<CAMERA_xx>/<timestamp_us>.png
    <root>/<scene>/point_cloud/LIDAR/<timestamp_us>.npz    'data': X, Y, Z, ... in the LiDAR frame

Every datum carries ``pose``: the sensor's pose in the scene's world frame at its own timestamp.
Sparse depth: LiDAR points go sensor -> world with the LiDAR datum's pose and world -> camera with
the camera datum's pose, which compensates the ego motion between the two timestamps. Images with
Brown-Conrady distortion are undistorted with OpenCV (same K) so that K describes a pinhole camera.
JSON field names are accepted both as written by DGP (snake_case) and in protobuf's lowerCamelCase.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime, timezone
from pathlib import Path

import cv2
import numpy as np

from fsmde_ros.datasets.errors import DatasetError, read_json
from fsmde_ros.datasets.nuscenes import load_image_rgb
from fsmde_ros.datasets.projection import pose_matrix, sparse_depth_from_points
from fsmde_ros.datasets.sample import SurroundSample
from fsmde_ros.geometry import invert_transform, scale_intrinsics, transform_points

DDAD_CAMERAS: tuple[str, ...] = ("CAMERA_01", "CAMERA_05", "CAMERA_06", "CAMERA_07", "CAMERA_08", "CAMERA_09")
SPLIT_IDS = {"train": "0", "val": "1", "test": "2"}
_DISTORTION = ("k1", "k2", "p1", "p2", "k3", "k4", "k5", "k6")
_CHANNELS = ("X", "Y", "Z", "INTENSITY", "R", "G", "B", "RING")
"""dgp.proto.PointCloud.ChannelType names by enum number (JSON may hold either)."""


def _get(record: dict, snake: str, where: str):
    """A field by its DGP (snake_case) or protobuf JSON (lowerCamelCase) name."""
    head, *rest = snake.split("_")
    camel = head + "".join(part.title() for part in rest)
    for key in (snake, camel):
        if key in record:
            return record[key]
    raise DatasetError(f"{where}: missing field {snake!r}")


def parse_timestamp_ns(value: str | dict, where: str) -> int:
    """A google.protobuf.Timestamp in JSON (RFC 3339 string, or {seconds, nanos}) as integer nanoseconds."""
    if isinstance(value, dict):
        return int(value.get("seconds", 0)) * 1_000_000_000 + int(value.get("nanos", 0))
    try:
        text = str(value).rstrip("Z")
        whole, _, fraction = text.partition(".")
        seconds = datetime.strptime(whole, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=timezone.utc).timestamp()
        return int(seconds) * 1_000_000_000 + int((fraction or "0")[:9].ljust(9, "0"))
    except ValueError as exc:
        raise DatasetError(f"{where}: timestamp {value!r} is not RFC 3339 ({exc})") from exc


def _pose(record: dict, where: str) -> np.ndarray:
    t = record.get("translation", {})
    r = record.get("rotation", {})
    try:
        return pose_matrix(
            (r.get("qw", 0.0), r.get("qx", 0.0), r.get("qy", 0.0), r.get("qz", 0.0)),
            (t.get("x", 0.0), t.get("y", 0.0), t.get("z", 0.0)),
        )
    except ValueError as exc:
        raise DatasetError(f"{where}: bad pose ({exc})") from exc


class DDADDataset:
    """Samples of DDAD scenes in order; ``split`` (train/val/test) reads the scene list of ``ddad.json``."""

    def __init__(
        self,
        root: str | Path,
        split: str = "val",
        cameras: Sequence[str] = DDAD_CAMERAS,
        lidar: str = "LIDAR",
        image_size: tuple[int, int] | None = None,
        min_depth: float = 1.0,
        dataset_json: str = "ddad.json",
    ) -> None:
        self.root = Path(root)
        self.cameras = tuple(cameras)
        self.lidar = lidar
        self.image_size = image_size
        self.min_depth = min_depth
        if split not in SPLIT_IDS:
            raise DatasetError(f"{self.root}: unknown split {split!r}; DDAD splits are {list(SPLIT_IDS)}")
        index_path = self.root / dataset_json
        index = read_json(index_path, "DGP scene dataset JSON")
        splits = _get(index, "scene_splits", str(index_path))
        if SPLIT_IDS[split] not in splits:
            raise DatasetError(f"{index_path}: no scenes for split {split!r} (id {SPLIT_IDS[split]})")
        self._items: list[tuple[Path, dict, dict, int]] = []  # scene dir, datums by key, sample, index
        self._calibrations: dict[tuple[Path, str], dict] = {}
        for rel in _get(splits[SPLIT_IDS[split]], "filenames", str(index_path)):
            scene_path = self.root / rel
            scene = read_json(scene_path, "DGP scene JSON")
            datums = {_get(d, "key", str(scene_path)): d for d in _get(scene, "data", str(scene_path))}
            for k, sample in enumerate(_get(scene, "samples", str(scene_path))):
                self._items.append((scene_path.parent, datums, sample, k))

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[SurroundSample]:
        for i in range(len(self)):
            yield self[i]

    def _calibration(self, scene_dir: Path, key: str) -> dict[str, tuple[dict, np.ndarray]]:
        """name -> (intrinsics record, sensor -> vehicle pose) of a calibration table."""
        if (scene_dir, key) not in self._calibrations:
            path = scene_dir / "calibration" / f"{key}.json"
            table = read_json(path, "DGP calibration table")
            names = _get(table, "names", str(path))
            intrinsics = _get(table, "intrinsics", str(path))
            extrinsics = _get(table, "extrinsics", str(path))
            if not len(names) == len(intrinsics) == len(extrinsics):
                raise DatasetError(f"{path}: names, intrinsics and extrinsics differ in length")
            self._calibrations[(scene_dir, key)] = {
                n.upper(): (intr, _pose(ext, f"{path} {n}"))
                for n, intr, ext in zip(names, intrinsics, extrinsics, strict=True)
            }
        return self._calibrations[(scene_dir, key)]

    def _lidar_points(self, scene_dir: Path, cloud: dict, where: str) -> np.ndarray:
        path = scene_dir / _get(cloud, "filename", where)
        try:
            with np.load(path, allow_pickle=False) as f:
                data = f["data"]
        except FileNotFoundError as exc:
            raise DatasetError(f"{path}: point cloud not found") from exc
        except (OSError, ValueError, KeyError) as exc:
            raise DatasetError(f"{path}: not a DGP point cloud npz with a 'data' array ({exc})") from exc
        if data.dtype.fields is not None:
            if not {"X", "Y", "Z"} <= set(data.dtype.fields):
                raise DatasetError(f"{path}: structured point cloud lacks X, Y, Z fields")
            return np.stack([data["X"], data["Y"], data["Z"]], axis=-1).reshape(-1, 3).astype(np.float64)
        fmt = [
            _CHANNELS[c] if isinstance(c, int) and c < len(_CHANNELS) else str(c)
            for c in cloud.get("point_format", cloud.get("pointFormat", ["X", "Y", "Z"]))
        ]
        if data.ndim != 2 or not {"X", "Y", "Z"} <= set(fmt) or data.shape[1] < len(fmt):
            raise DatasetError(f"{path}: point cloud of shape {data.shape} does not match point_format {fmt}")
        return data[:, [fmt.index("X"), fmt.index("Y"), fmt.index("Z")]].astype(np.float64)

    def __getitem__(self, i: int) -> SurroundSample:
        scene_dir, datums, sample, index = self._items[i]
        where = f"{scene_dir} sample {index}"
        calib = self._calibration(scene_dir, _get(sample, "calibration_key", where))
        by_name = {}
        for key in _get(sample, "datum_keys", where):
            if key not in datums:
                raise DatasetError(f"{where}: datum key {key} not in the scene's data")
            by_name[_get(datums[key], "id", where)["name"].upper()] = datums[key]
        missing = [
            n for n in (*self.cameras, self.lidar) if n.upper() not in by_name or n.upper() not in calib
        ]
        if missing:
            raise DatasetError(f"{where}: no datum or calibration for {missing}")
        lidar = by_name[self.lidar.upper()]
        cloud = _get(lidar["datum"], "point_cloud", where)
        points_world = transform_points(
            _pose(cloud.get("pose", {}), where), self._lidar_points(scene_dir, cloud, where)
        )
        images, Ks, cam2egos, sparse, stamps, ego_poses = [], [], [], [], [], []
        for name in self.cameras:
            datum = by_name[name.upper()]
            image_rec = _get(datum["datum"], "image", where)
            intr, cam2ego = calib[name.upper()]
            K = np.array(
                [
                    [intr.get("fx", 0.0), intr.get("skew", 0.0), intr.get("cx", 0.0)],
                    [0.0, intr.get("fy", 0.0), intr.get("cy", 0.0)],
                    [0.0, 0.0, 1.0],
                ]
            )
            if K[0, 0] <= 0 or K[1, 1] <= 0:
                raise DatasetError(f"{scene_dir}/calibration: {name} has no positive focal lengths")
            if intr.get("fisheye", 0):
                raise DatasetError(
                    f"{scene_dir}/calibration: {name} is a fisheye camera; only pinhole is supported"
                )
            image = load_image_rgb(scene_dir / _get(image_rec, "filename", where), None)
            dist = np.array([float(intr.get(k, 0.0)) for k in _DISTORTION])
            if np.any(dist != 0):
                image = cv2.undistort(image, K, dist)
            if self.image_size is not None and image.shape[:2] != tuple(self.image_size):
                h0, w0 = image.shape[:2]
                image = np.ascontiguousarray(
                    cv2.resize(image, (self.image_size[1], self.image_size[0]), interpolation=cv2.INTER_AREA)
                )
                K = scale_intrinsics(K, image.shape[1] / w0, image.shape[0] / h0)
            cam_world = _pose(image_rec.get("pose", {}), f"{where} {name}")
            points_cam = transform_points(invert_transform(cam_world), points_world)
            images.append(image)
            Ks.append(K)
            cam2egos.append(cam2ego)
            sparse.append(
                sparse_depth_from_points(points_cam, K, image.shape[0], image.shape[1], self.min_depth)
            )
            stamps.append(parse_timestamp_ns(_get(datum, "id", where)["timestamp"], f"{where} {name}"))
            ego_poses.append(cam_world @ invert_transform(cam2ego))
        sizes = {im.shape for im in images}
        if len(sizes) != 1:
            raise DatasetError(f"{where}: camera images differ in size {sorted(sizes)}; pass image_size")
        lidar_world = _pose(cloud.get("pose", {}), where)
        return SurroundSample(
            images=np.stack(images),
            K=np.stack(Ks),
            cam2ego=np.stack(cam2egos),
            sparse_depth=np.stack(sparse),
            camera_names=self.cameras,
            stamps_ns=np.asarray(stamps, np.int64),
            ego_pose=lidar_world @ invert_transform(calib[self.lidar.upper()][1]),
            sequence=scene_dir.name,
            frame_index=index,
            camera_ego_poses=np.stack(ego_poses),
        )
