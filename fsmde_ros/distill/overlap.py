"""Where adjacent cameras of a rig see the same space: sample points of each view's overlap strip.

A pixel of camera a lies in its overlap with camera b when the point at ``reference_depth`` along
its ray projects inside camera b's image. The strips come from the rig geometry alone (no depth),
so the view-relational loss can pair every point of one strip with every point of the other.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from fsmde_ros.geometry import invert_transform, pixel_rays, project, transform_points
from fsmde_ros.rig import Camera, Rig


@dataclass(frozen=True)
class PairOverlap:
    """Sample pixels (P, 2) as (u, v) of camera ``a``'s strip seen by ``b``, and of ``b``'s seen by ``a``."""

    a: int
    b: int
    points_a: np.ndarray
    points_b: np.ndarray


def rig_from_calibration(K: np.ndarray, cam2ego: np.ndarray, height: int, width: int) -> Rig:
    """A rig from per-camera intrinsics (N, 3, 3) and extrinsics (N, 4, 4) of H x W images."""
    cams = tuple(
        Camera(f"cam{i}", np.asarray(K[i]), np.asarray(cam2ego[i]), width, height) for i in range(len(K))
    )
    return Rig(cams)


def _strip(src: Camera, dst: Camera, reference_depth: float, stride: int) -> np.ndarray:
    """Pixels (M, 2) of ``src`` (on a grid of ``stride``) whose point at reference depth is inside ``dst``."""
    rays = pixel_rays(src.K, src.height, src.width)[::stride, ::stride].astype(np.float64)
    pts_src = rays / np.linalg.norm(rays, axis=-1, keepdims=True) * reference_depth
    src_to_dst = invert_transform(dst.cam2ego) @ src.cam2ego
    uv, z = project(transform_points(src_to_dst, pts_src), dst.K)
    with np.errstate(invalid="ignore"):
        inside = (z > 0) & (uv[..., 0] >= 0) & (uv[..., 0] <= dst.width - 1)
        inside &= (uv[..., 1] >= 0) & (uv[..., 1] <= dst.height - 1)
    vs, us = np.nonzero(inside)
    return np.stack([us * stride, vs * stride], axis=-1).astype(np.float32)


def _even_subset(points: np.ndarray, count: int) -> np.ndarray:
    if len(points) <= count:
        return points
    return points[np.linspace(0, len(points) - 1, count).round().astype(int)]


def overlap_pairs(
    rig: Rig, points_per_view: int = 96, reference_depth: float = 15.0, min_points: int = 8
) -> list[PairOverlap]:
    """Overlap sample points of every adjacent pair of ``rig``; pairs under ``min_points`` are dropped."""
    if points_per_view < 1 or reference_depth <= 0:
        raise ValueError(
            f"overlap sampling needs points_per_view >= 1 and reference_depth > 0, got "
            f"{points_per_view} and {reference_depth}"
        )
    pairs = []
    for a, b in rig.adjacent:
        ca, cb = rig.cameras[a], rig.cameras[b]
        stride = max(1, min(ca.width, ca.height) // 64)
        pa = _strip(ca, cb, reference_depth, stride)
        pb = _strip(cb, ca, reference_depth, stride)
        if len(pa) < min_points or len(pb) < min_points:
            continue
        pairs.append(PairOverlap(a, b, _even_subset(pa, points_per_view), _even_subset(pb, points_per_view)))
    return pairs


def sample_at(maps: torch.Tensor, points: np.ndarray) -> torch.Tensor:
    """Bilinear samples (F, P) of maps (F, H, W) at pixel points (P, 2) given as (u, v)."""
    _, H, W = maps.shape
    grid = torch.as_tensor(points, dtype=maps.dtype, device=maps.device).clone()
    grid[:, 0] = grid[:, 0] / max(W - 1, 1) * 2 - 1
    grid[:, 1] = grid[:, 1] / max(H - 1, 1) * 2 - 1
    grid = grid[None, None].expand(maps.shape[0], 1, -1, -1)
    return F.grid_sample(maps[:, None], grid, mode="bilinear", align_corners=True)[:, 0, 0]
