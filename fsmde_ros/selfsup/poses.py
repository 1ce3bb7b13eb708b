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
