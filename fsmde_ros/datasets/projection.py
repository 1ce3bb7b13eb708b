"""Shared helpers of the dataset loaders: poses from quaternions and LiDAR points to sparse depth."""

from __future__ import annotations

import numpy as np


def quaternion_matrix(w: float, x: float, y: float, z: float) -> np.ndarray:
    """Rotation matrix (3, 3) of a quaternion (normalised first); raises ValueError for a zero quaternion."""
    q = np.array([w, x, y, z], dtype=np.float64)
    norm = np.linalg.norm(q)
    if not np.isfinite(norm) or norm < 1e-9:
        raise ValueError(f"quaternion {q.tolist()} has no rotation (zero or non-finite norm)")
    w, x, y, z = q / norm
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
            [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
            [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
        ]
    )


def matrix_quaternion(R: np.ndarray) -> tuple[float, float, float, float]:
    """(w, x, y, z) unit quaternion (w >= 0) of a rotation matrix, by Shepperd's method (any angle)."""
    R = np.asarray(R, dtype=np.float64)
    trace = R[0, 0] + R[1, 1] + R[2, 2]
    k = int(np.argmax([trace, R[0, 0], R[1, 1], R[2, 2]]))
    if k == 0:
        s = 2 * np.sqrt(1 + trace)
        q = [s / 4, (R[2, 1] - R[1, 2]) / s, (R[0, 2] - R[2, 0]) / s, (R[1, 0] - R[0, 1]) / s]
    elif k == 1:
        s = 2 * np.sqrt(1 + R[0, 0] - R[1, 1] - R[2, 2])
        q = [(R[2, 1] - R[1, 2]) / s, s / 4, (R[0, 1] + R[1, 0]) / s, (R[0, 2] + R[2, 0]) / s]
    elif k == 2:
        s = 2 * np.sqrt(1 - R[0, 0] + R[1, 1] - R[2, 2])
        q = [(R[0, 2] - R[2, 0]) / s, (R[0, 1] + R[1, 0]) / s, s / 4, (R[1, 2] + R[2, 1]) / s]
    else:
        s = 2 * np.sqrt(1 - R[0, 0] - R[1, 1] + R[2, 2])
        q = [(R[1, 0] - R[0, 1]) / s, (R[0, 2] + R[2, 0]) / s, (R[1, 2] + R[2, 1]) / s, s / 4]
    q = np.asarray(q) / np.linalg.norm(q) * (1.0 if q[0] >= 0 else -1.0)
    return float(q[0]), float(q[1]), float(q[2]), float(q[3])


def pose_matrix(
    rotation_wxyz: tuple[float, float, float, float] | list[float],
    translation: tuple[float, float, float] | list[float],
) -> np.ndarray:
    """4x4 rigid transform from a (w, x, y, z) quaternion and a translation."""
    T = np.eye(4)
    T[:3, :3] = quaternion_matrix(*rotation_wxyz)
    T[:3, 3] = np.asarray(translation, dtype=np.float64)
    return T


def sparse_depth_from_points(
    points_cam: np.ndarray, K: np.ndarray, height: int, width: int, min_depth: float = 0.0
) -> np.ndarray:
    """Sparse z-depth image (H, W) float32 of optical-frame points: each point lands on its nearest pixel,
    the nearest point wins a pixel, NaN where none lands. Points with z <= ``min_depth`` are dropped."""
    depth = np.full(height * width, np.inf, np.float32)
    z = points_cam[:, 2]
    front = z > max(min_depth, 1e-6)
    p, z = points_cam[front], z[front]
    u = np.rint(K[0, 0] * p[:, 0] / z + K[0, 1] * p[:, 1] / z + K[0, 2])
    v = np.rint(K[1, 1] * p[:, 1] / z + K[1, 2])
    inside = (u >= 0) & (u < width) & (v >= 0) & (v < height)
    flat = v[inside].astype(np.int64) * width + u[inside].astype(np.int64)
    np.minimum.at(depth, flat, z[inside].astype(np.float32))
    depth[np.isinf(depth)] = np.nan
    return depth.reshape(height, width)
