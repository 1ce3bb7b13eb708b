"""Pinhole geometry shared by the node, the dataset generator, training and evaluation.

Conventions (frames, units, NaN for invalid depth) are in ``fsmde_ros.conventions``.
"""

from __future__ import annotations

import numpy as np


def scale_intrinsics(K: np.ndarray, sx: float, sy: float) -> np.ndarray:
    """K for an image resized by factors (sx, sy) (new size / old size), pixel centres kept aligned."""
    K2 = np.array(K, dtype=np.float64, copy=True)
    K2[0, 0] *= sx
    K2[0, 2] = (K2[0, 2] + 0.5) * sx - 0.5
    K2[1, 1] *= sy
    K2[1, 2] = (K2[1, 2] + 0.5) * sy - 0.5
    return K2


def crop_intrinsics(K: np.ndarray, left: int, top: int) -> np.ndarray:
    """K for an image cropped so that pixel (left, top) becomes (0, 0)."""
    K2 = np.array(K, dtype=np.float64, copy=True)
    K2[0, 2] -= left
    K2[1, 2] -= top
    return K2


def pixel_rays(K: np.ndarray, height: int, width: int) -> np.ndarray:
    """Rays (H, W, 3) float32 in the optical frame with z = 1, so that point = ray * z-depth."""
    u = np.arange(width, dtype=np.float64)
    v = np.arange(height, dtype=np.float64)
    x = (u - K[0, 2]) / K[0, 0]
    y = (v - K[1, 2]) / K[1, 1]
    rays = np.empty((height, width, 3), dtype=np.float32)
    rays[..., 0] = x[None, :]
    rays[..., 1] = y[:, None]
    rays[..., 2] = 1.0
    return rays


def backproject(depth: np.ndarray, K: np.ndarray) -> np.ndarray:
    """Points (H, W, 3) in the optical frame from a z-depth image (H, W); NaN depth gives NaN points."""
    height, width = depth.shape
    return pixel_rays(K, height, width) * depth[..., None]


def transform_points(T: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Apply a 4x4 transform to points (..., 3)."""
    R = T[:3, :3].astype(points.dtype, copy=False)
    t = T[:3, 3].astype(points.dtype, copy=False)
    return points @ R.T + t


def project(points: np.ndarray, K: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Project optical-frame points (..., 3) to pixels (..., 2) and z-depth (...); z <= 0 gives NaN pixels."""
    z = points[..., 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        safe_z = np.where(z > 0, z, np.nan)
        u = K[0, 0] * points[..., 0] / safe_z + K[0, 2]
        v = K[1, 1] * points[..., 1] / safe_z + K[1, 2]
    return np.stack([u, v], axis=-1), z


def invert_transform(T: np.ndarray) -> np.ndarray:
    """Inverse of a rigid 4x4 transform."""
    R = T[:3, :3]
    Ti = np.eye(4, dtype=np.float64)
    Ti[:3, :3] = R.T
    Ti[:3, 3] = -R.T @ T[:3, 3]
    return Ti
