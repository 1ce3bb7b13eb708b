"""Camera rigs: intrinsics, extrinsics to ``base_link`` and the ring of adjacent, overlapping views.

A rig YAML (see ``config/rigs/nuscenes.yaml``) holds ``frame_id``, ``image_width``,
``image_height`` and a list ``cameras`` of ``{name, K (3x3), cam2ego (4x4)}`` in rig order.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from fsmde_ros.conventions import VEHICLE_FRAME
from fsmde_ros.geometry import scale_intrinsics
from fsmde_ros.yaml_io import read_yaml_mapping


class RigError(ValueError):
    """A rig file or rig definition is malformed; the message names the file and the problem."""


@dataclass(frozen=True)
class Camera:
    """One pinhole camera of the rig, for images of ``width`` x ``height`` pixels."""

    name: str
    K: np.ndarray
    cam2ego: np.ndarray
    width: int
    height: int

    @property
    def yaw_deg(self) -> float:
        """Azimuth of the optical axis in ``base_link`` (0 = forward, positive = to the left)."""
        axis = self.cam2ego[:3, 2]
        return math.degrees(math.atan2(axis[1], axis[0]))

    @property
    def hfov_deg(self) -> float:
        """Horizontal field of view."""
        fx, cx = self.K[0, 0], self.K[0, 2]
        return math.degrees(math.atan2(cx + 0.5, fx) + math.atan2(self.width - cx - 0.5, fx))

    def resized(self, width: int, height: int) -> Camera:
        """The same camera for images resized to ``width`` x ``height``."""
        K = scale_intrinsics(self.K, width / self.width, height / self.height)
        return Camera(self.name, K, self.cam2ego, width, height)


@dataclass(frozen=True)
class Rig:
    """N cameras in rig order, with extrinsics into ``frame_id``."""

    cameras: tuple[Camera, ...]
    frame_id: str = VEHICLE_FRAME
    adjacent: tuple[tuple[int, int], ...] = field(default=())

    def __post_init__(self) -> None:
        if not self.adjacent:
            object.__setattr__(self, "adjacent", ring_neighbours(self.cameras))

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.cameras]

    def __len__(self) -> int:
        return len(self.cameras)

    def resized(self, width: int, height: int) -> Rig:
        """The rig for images resized to ``width`` x ``height``."""
        return Rig(tuple(c.resized(width, height) for c in self.cameras), self.frame_id, self.adjacent)

    def intrinsics(self) -> np.ndarray:
        """K of all cameras, (N, 3, 3) float64."""
        return np.stack([c.K for c in self.cameras])

    def extrinsics(self) -> np.ndarray:
        """cam2ego of all cameras, (N, 4, 4) float64."""
        return np.stack([c.cam2ego for c in self.cameras])


def ring_neighbours(cameras: tuple[Camera, ...] | list[Camera]) -> tuple[tuple[int, int], ...]:
    """Pairs (i, j) of cameras adjacent in azimuth whose horizontal fields of view overlap."""
    if len(cameras) < 2:
        return ()
    order = sorted(range(len(cameras)), key=lambda i: cameras[i].yaw_deg)
    pairs = []
    for a, b in zip(order, order[1:] + order[:1], strict=True):
        gap = (cameras[b].yaw_deg - cameras[a].yaw_deg) % 360.0
        if gap < (cameras[a].hfov_deg + cameras[b].hfov_deg) / 2.0 and a != b:
            pairs.append((min(a, b), max(a, b)))
    return tuple(dict.fromkeys(pairs))


def _matrix(value: object, shape: tuple[int, int], where: str) -> np.ndarray:
    try:
        m = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise RigError(f"{where}: not a numeric matrix ({exc})") from exc
    if m.shape != shape:
        raise RigError(f"{where}: expected shape {shape}, got {m.shape}")
    if not np.all(np.isfinite(m)):
        raise RigError(f"{where}: contains NaN or inf")
    return m


def rig_from_dict(data: dict, source: str = "<rig>") -> Rig:
    """Build and validate a rig from its YAML mapping; errors name ``source`` and the field."""
    if not isinstance(data, dict):
        raise RigError(f"{source}: a rig must be a mapping")
    try:
        width, height = int(data["image_width"]), int(data["image_height"])
        entries = data["cameras"]
    except KeyError as exc:
        raise RigError(f"{source}: missing key {exc.args[0]!r}") from exc
    if width <= 0 or height <= 0:
        raise RigError(f"{source}: image size must be positive, got {width}x{height}")
    if not isinstance(entries, list) or not entries:
        raise RigError(f"{source}: 'cameras' must be a non-empty list")
    cameras = []
    for i, entry in enumerate(entries):
        name = entry.get("name") if isinstance(entry, dict) else None
        if not name:
            raise RigError(f"{source}: camera {i} has no name")
        K = _matrix(entry.get("K"), (3, 3), f"{source}: camera {name} K")
        if K[0, 0] <= 0 or K[1, 1] <= 0 or K[2, 2] != 1.0 or K[1, 0] != 0 or K[2, 0] != 0 or K[2, 1] != 0:
            raise RigError(f"{source}: camera {name} K is not a pinhole matrix with positive focal lengths")
        T = _matrix(entry.get("cam2ego"), (4, 4), f"{source}: camera {name} cam2ego")
        R = T[:3, :3]
        if not np.allclose(R @ R.T, np.eye(3), atol=1e-3) or not np.allclose(T[3], [0, 0, 0, 1]):
            raise RigError(f"{source}: camera {name} cam2ego is not a rigid transform")
        cameras.append(Camera(str(name), K, T, width, height))
    names = [c.name for c in cameras]
    if len(set(names)) != len(names):
        raise RigError(f"{source}: duplicate camera names {names}")
    return Rig(tuple(cameras), str(data.get("frame_id", VEHICLE_FRAME)))


def load_rig(path: str | Path) -> Rig:
    """Load and validate a rig YAML file."""
    return rig_from_dict(read_yaml_mapping(path, RigError, "rig"), str(path))


def default_rig_path() -> Path:
    """The shipped default rig (the nuScenes vehicle), from the source tree or the installed share."""
    here = Path(__file__).resolve().parent.parent / "config" / "rigs" / "nuscenes.yaml"
    if here.is_file():
        return here
    from ament_index_python.packages import get_package_share_directory  # only in an installed ROS package

    return Path(get_package_share_directory("fsmde_ros")) / "config" / "rigs" / "nuscenes.yaml"
