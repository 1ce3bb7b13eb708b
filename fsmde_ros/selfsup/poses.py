"""Rigid transforms between the views used for view synthesis: across time and across rig cameras.

A view is one camera image with its ``cam2world`` pose (4x4, optical frame -> world). The transform
that inverse warping needs maps target optical-frame points into the source optical frame:
``T_target_to_source = inv(cam2world_source) @ cam2world_target``. For two cameras of one rig at one
instant this is ``inv(cam2ego_j) @ cam2ego_i``, whose metric baseline fixes the scale of depth (FSM).
"""

from __future__ import annotations

import numpy as np
import torch

from fsmde_ros.geometry import invert_transform


def relative_transform(cam2world_target: np.ndarray, cam2world_source: np.ndarray) -> np.ndarray:
    """4x4 transform of points from the target optical frame into the source optical frame."""
    return invert_transform(cam2world_source) @ cam2world_target


def _rotation_to_quaternion(R: np.ndarray) -> np.ndarray:
    """Unit quaternion (w, x, y, z) of a rotation matrix (Shepperd's method, robust for all angles)."""
    m = R
    trace = m[0, 0] + m[1, 1] + m[2, 2]
    if trace > 0:
        s = 2.0 * np.sqrt(trace + 1.0)
        q = [0.25 * s, (m[2, 1] - m[1, 2]) / s, (m[0, 2] - m[2, 0]) / s, (m[1, 0] - m[0, 1]) / s]
    elif m[0, 0] > m[1, 1] and m[0, 0] > m[2, 2]:
        s = 2.0 * np.sqrt(1.0 + m[0, 0] - m[1, 1] - m[2, 2])
        q = [(m[2, 1] - m[1, 2]) / s, 0.25 * s, (m[0, 1] + m[1, 0]) / s, (m[0, 2] + m[2, 0]) / s]
    elif m[1, 1] > m[2, 2]:
        s = 2.0 * np.sqrt(1.0 + m[1, 1] - m[0, 0] - m[2, 2])
        q = [(m[0, 2] - m[2, 0]) / s, (m[0, 1] + m[1, 0]) / s, 0.25 * s, (m[1, 2] + m[2, 1]) / s]
    else:
        s = 2.0 * np.sqrt(1.0 + m[2, 2] - m[0, 0] - m[1, 1])
        q = [(m[1, 0] - m[0, 1]) / s, (m[0, 2] + m[2, 0]) / s, (m[1, 2] + m[2, 1]) / s, 0.25 * s]
    q = np.asarray(q, dtype=np.float64)
    return q / np.linalg.norm(q)


def _quaternion_to_rotation(q: np.ndarray) -> np.ndarray:
    w, x, y, z = q / np.linalg.norm(q)
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
        [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
        [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
    ])


def interpolate_pose(T0: np.ndarray, T1: np.ndarray, alpha: float) -> np.ndarray:
    """Pose between ``T0`` (alpha 0) and ``T1`` (alpha 1): linear translation, spherical rotation.

    ``alpha`` outside [0, 1] extrapolates with the same constant velocity.
    """
    q0, q1 = _rotation_to_quaternion(T0[:3, :3]), _rotation_to_quaternion(T1[:3, :3])
    if np.dot(q0, q1) < 0:
        q1 = -q1
    angle = np.arccos(np.clip(np.dot(q0, q1), -1.0, 1.0))
    if angle < 1e-9:
        q = q0
    else:
        q = (np.sin((1 - alpha) * angle) * q0 + np.sin(alpha * angle) * q1) / np.sin(angle)
    T = np.eye(4)
    T[:3, :3] = _quaternion_to_rotation(q)
    T[:3, 3] = (1 - alpha) * T0[:3, 3] + alpha * T1[:3, 3]
    return T


def ego_pose_at(stamps_ns: np.ndarray, ego_poses: np.ndarray, query_ns: int) -> np.ndarray:
    """Ego pose (base_link -> world) at ``query_ns`` from poses (M, 4, 4) at increasing ``stamps_ns`` (M,).

    Interpolates between the two bracketing poses, or extrapolates from the nearest two at the ends.
    """
    stamps = np.asarray(stamps_ns, dtype=np.int64)
    if stamps.ndim != 1 or len(stamps) != len(ego_poses) or len(stamps) == 0:
        raise ValueError(f"ego_pose_at: need matching stamps and poses, got {stamps.shape} and "
                         f"{np.shape(ego_poses)}")
    if len(stamps) == 1:
        return np.asarray(ego_poses[0], dtype=np.float64)
    if np.any(np.diff(stamps) <= 0):
        raise ValueError("ego_pose_at: pose stamps must be strictly increasing")
    i = int(np.clip(np.searchsorted(stamps, query_ns) - 1, 0, len(stamps) - 2))
    alpha = float(query_ns - stamps[i]) / float(stamps[i + 1] - stamps[i])
    return interpolate_pose(ego_poses[i], ego_poses[i + 1], alpha)


def axis_angle_to_matrix(rotation: torch.Tensor, translation: torch.Tensor) -> torch.Tensor:
    """4x4 transforms (B, 4, 4) from axis-angle rotations (B, 3) (Rodrigues) and translations (B, 3)."""
    angle = rotation.norm(dim=1, keepdim=True).clamp(min=1e-8)
    axis = rotation / angle
    x, y, z = axis[:, 0], axis[:, 1], axis[:, 2]
    zero = torch.zeros_like(x)
    skew = torch.stack([zero, -z, y, z, zero, -x, -y, x, zero], dim=1).reshape(-1, 3, 3)
    eye = torch.eye(3, dtype=rotation.dtype, device=rotation.device).expand_as(skew)
    s, c = torch.sin(angle)[..., None], torch.cos(angle)[..., None]
    R = eye + s * skew + (1 - c) * (skew @ skew)
    T = torch.eye(4, dtype=rotation.dtype, device=rotation.device).repeat(rotation.shape[0], 1, 1)
    T[:, :3, :3] = R
    T[:, :3, 3] = translation
    return T


def ego_motion_to_camera(ego_motion: torch.Tensor, cam2ego: torch.Tensor) -> torch.Tensor:
    """Camera-frame transforms (N, 4, 4) of one ego motion (4, 4) for N rigidly mounted cameras (N, 4, 4).

    ``ego_motion`` maps points of the target vehicle frame into the source vehicle frame; the result
    maps target optical-frame points into the source optical frame of the same camera.
    """
    return torch.linalg.inv(cam2ego) @ ego_motion[None] @ cam2ego
