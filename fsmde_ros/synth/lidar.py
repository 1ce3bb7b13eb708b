"""A simulated roof-mounted 32-beam spinning LiDAR (nuScenes-like) and its projection into cameras."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from fsmde_ros.datasets.projection import sparse_depth_from_points
from fsmde_ros.geometry import invert_transform, transform_points
from fsmde_ros.rig import Camera
from fsmde_ros.synth.raycast import SKY, SpinningView, trace
from fsmde_ros.synth.scene import REFLECTIVE_MATERIALS, Primitives


@dataclass(frozen=True)
class LidarModel:
    """Beam layout and return model; defaults follow the Velodyne HDL-32E of nuScenes (LIDAR_TOP)."""

    mount: tuple[float, float, float] = (0.943, 0.0, 1.841)  # sensor origin in base_link
    elevations_deg: tuple[float, ...] = field(
        default_factory=lambda: tuple(float(e) for e in np.linspace(-30.67, 10.67, 32))
    )
    az_step_deg: float = 1 / 3
    max_range_m: float = 80.0
    min_range_m: float = 1.0
    dropout: float = 0.03  # share of returns lost at random
    glass_dropout: float = 0.5  # share of returns lost on glass (specular: the beam is deflected)
    range_noise_m: float = 0.02  # standard deviation of the range error

    def view(self, ego_pose: np.ndarray, az_from_deg: float, az_to_deg: float) -> SpinningView:
        """The beams of one azimuth segment (degrees in base_link, from < to) at ``ego_pose``."""
        heading = math.atan2(ego_pose[1, 0], ego_pose[0, 0])
        elevations = np.radians(np.asarray(self.elevations_deg))
        step = math.radians(self.az_step_deg)
        az = np.arange(math.radians(az_from_deg), math.radians(az_to_deg), step)
        el = elevations[:, None]
        world_az = np.broadcast_to(heading + az[None, :], (len(elevations), len(az)))
        dirs = np.stack(
            [
                np.cos(el) * np.cos(world_az),
                np.cos(el) * np.sin(world_az),
                np.broadcast_to(np.sin(el), world_az.shape),
            ],
            axis=-1,
        ).astype(np.float32)
        origin = transform_points(ego_pose, np.asarray(self.mount, np.float64))
        return SpinningView(origin, dirs, elevations, float(az[0]), step, heading, self.max_range_m)


def camera_segment_deg(camera: Camera, margin_deg: float = 8.0) -> tuple[float, float]:
    """Azimuth range (base_link, degrees) of the LiDAR beams that can land in ``camera``."""
    half = camera.hfov_deg / 2 + margin_deg
    return camera.yaw_deg - half, camera.yaw_deg + half


def lidar_points(
    lidar: LidarModel,
    groups: tuple[Primitives, ...],
    ego_pose: np.ndarray,
    segment: tuple[float, float],
    rng: np.random.Generator,
) -> np.ndarray:
    """World points (M, 3) of the returns of one LiDAR segment, with dropouts and range noise."""
    view = lidar.view(ego_pose, *segment)
    hits = trace(view, groups)
    ok = np.isfinite(hits.t) & (hits.group != SKY) & (hits.t >= lidar.min_range_m)
    glass = np.zeros_like(ok)
    for g, prims in enumerate(groups):
        sel = ok & (hits.group == g)
        if sel.any():
            glass[sel] = np.isin(prims.material[hits.index[sel]], REFLECTIVE_MATERIALS)
    keep = (
        ok & (rng.random(ok.shape) >= lidar.dropout) & ~(glass & (rng.random(ok.shape) < lidar.glass_dropout))
    )
    r = hits.t[keep] + rng.normal(0.0, lidar.range_noise_m, int(keep.sum())).astype(np.float32)
    return view.origin + r[:, None] * view.dirs[keep]


def project_to_sparse_depth(points_world: np.ndarray, camera: Camera, camera_pose: np.ndarray) -> np.ndarray:
    """Sparse z-depth image (H, W) float32 of world points seen by ``camera`` at ``camera_pose``
    (optical -> world); the nearest point wins a pixel, NaN where no point lands."""
    points = transform_points(invert_transform(camera_pose), points_world.astype(np.float64))
    return sparse_depth_from_points(points, camera.K, camera.height, camera.width, min_depth=0.1)
