"""Differentiable inverse warping of a source view into a target view with depth and a rigid transform.

Tensors follow torch layout: images (B, C, H, W), z-depth (B, 1, H, W) in metres, intrinsics (B, 3, 3),
transforms (B, 4, 4) mapping points of the *target* optical frame into the *source* optical frame.
Pixel (u, v) has its centre at integer coordinates (``fsmde_ros.conventions``), which is what
``grid_sample(..., align_corners=True)`` assumes.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

MIN_Z = 1e-3
"""Points closer than this (metres) in front of the source camera are treated as not visible."""

EDGE_TOLERANCE = 1e-3
"""Pixels projecting this close (in pixels) outside the source image still count as inside (rounding)."""


def pixel_grid(height: int, width: int, device: torch.device | None = None,
               dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Homogeneous pixel coordinates (3, H*W): rows u, v, 1 in row-major pixel order."""
    v, u = torch.meshgrid(torch.arange(height, device=device, dtype=dtype),
                          torch.arange(width, device=device, dtype=dtype), indexing="ij")
    return torch.stack([u.reshape(-1), v.reshape(-1), torch.ones_like(u).reshape(-1)])


def backproject(depth: torch.Tensor, K: torch.Tensor) -> torch.Tensor:
    """Optical-frame points (B, 3, H*W) of every pixel of a z-depth image (B, 1, H, W)."""
    b, _, h, w = depth.shape
    rays = torch.linalg.inv(K) @ pixel_grid(h, w, depth.device, depth.dtype)
    return rays * depth.reshape(b, 1, h * w)


def project(points: torch.Tensor, K: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Pixels (B, 2, M) and z (B, 1, M) of optical-frame points (B, 3, M); z is clamped to ``MIN_Z``."""
    z = points[:, 2:3]
    uvw = K @ (points / z.clamp(min=MIN_Z))
    return uvw[:, :2], z


def transform(T: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """Apply 4x4 transforms (B, 4, 4) to points (B, 3, M)."""
    return T[:, :3, :3] @ points + T[:, :3, 3:4]


def inverse_warp(source: torch.Tensor, depth: torch.Tensor, K_target: torch.Tensor, K_source: torch.Tensor,
                 T_target_to_source: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Synthesize the target view from ``source`` (B, C, Hs, Ws) using the target's depth (B, 1, H, W).

    Returns the warped image (B, C, H, W) and a validity mask (B, 1, H, W) that is true where the
    target pixel's 3D point lies in front of the source camera and projects inside the source image.
    """
    b, _, h, w = depth.shape
    hs, ws = source.shape[-2:]
    points = transform(T_target_to_source, backproject(depth, K_target))
    uv, z = project(points, K_source)
    u, v = uv[:, 0], uv[:, 1]
    tol = EDGE_TOLERANCE
    valid = (z[:, 0] > MIN_Z) & (u >= -tol) & (u <= ws - 1 + tol) & (v >= -tol) & (v <= hs - 1 + tol)
    grid = torch.stack([2.0 * u / max(ws - 1, 1) - 1.0, 2.0 * v / max(hs - 1, 1) - 1.0], dim=-1)
    warped = F.grid_sample(source, grid.reshape(b, h, w, 2), mode="bilinear", padding_mode="border",
                           align_corners=True)
    return warped, valid.reshape(b, 1, h, w)
