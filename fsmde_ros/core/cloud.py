"""The fused 360° point cloud in base_link from N depth images, with the per-pixel geometry precomputed.

Each kept pixel p of camera i with depth d becomes ``origin_i + d * ray_i(p)`` where ``ray_i`` is
the pixel's z = 1 ray rotated into base_link and ``origin_i`` the camera centre: one gather, one
multiply-add per point. Rays, strides and overlap masks are computed once per camera geometry.

Overlapping views (``overlap``):

- ``split`` (default): each viewing direction belongs to one camera, the one whose optical axis is
  nearest in azimuth among the cameras that see it; pixels of a camera looking into a neighbour's
  half of the overlap are left out, so overlaps are neither doubled nor blended.
- ``all``: every camera contributes all its pixels; surfaces in an overlap appear once per camera
  (useful to see calibration drift or disagreement between views).

Filters: ``stride`` (every stride-th row and column), range (distance from the camera centre) in
``[min_range, max_range]``, ``confidence >= min_confidence``, and optional voxel downsampling that
keeps the first point of each ``voxel_size`` cube.
"""

from __future__ import annotations

import math

import numpy as np

from fsmde_ros.geometry import pixel_rays

CLOUD_DTYPE = np.dtype({
    "names": ["x", "y", "z", "rgb", "confidence", "camera"],
    "formats": ["<f4", "<f4", "<f4", "<f4", "<f4", "u1"],
    "offsets": [0, 4, 8, 12, 16, 20],
    "itemsize": 24,
})
"""One point: x, y, z (m, base_link), rgb packed 0x00RRGGBB in a float32 as RViz expects,
confidence in [0, 1], camera index; 24 bytes."""

OVERLAP_MODES = ("split", "all")


def pack_rgb(rgb: np.ndarray) -> np.ndarray:
    """(M, 3) uint8 RGB to (M,) float32 holding 0x00RRGGBB bits (the PointCloud2 ``rgb`` field)."""
    rgb = rgb.astype(np.uint32)
    return ((rgb[:, 0] << 16) | (rgb[:, 1] << 8) | rgb[:, 2]).view(np.float32)


def _yaw(direction: np.ndarray) -> np.ndarray:
    return np.arctan2(direction[..., 1], direction[..., 0])


def _angle_gap(a: np.ndarray, b: float) -> np.ndarray:
    return np.abs((a - b + math.pi) % (2 * math.pi) - math.pi)


class CloudBuilder:
    """Builds the fused cloud for one rig geometry at one depth image size (see the module docstring)."""

    def __init__(self, K: np.ndarray, cam2ego: np.ndarray, height: int, width: int, stride: int = 2,
                 min_range: float = 0.5, max_range: float = 80.0, min_confidence: float = 0.0,
                 overlap: str = "split", voxel_size: float = 0.0) -> None:
        K = np.asarray(K, dtype=np.float64)
        cam2ego = np.asarray(cam2ego, dtype=np.float64)
        n = K.shape[0]
        if K.shape != (n, 3, 3) or cam2ego.shape != (n, 4, 4):
            raise ValueError(f"K {K.shape} and cam2ego {cam2ego.shape} must be (N, 3, 3) and (N, 4, 4)")
        if stride < 1 or not 0 <= min_range < max_range or not 0 <= min_confidence <= 1 or voxel_size < 0:
            raise ValueError("need stride >= 1, 0 <= min_range < max_range, min_confidence in [0, 1], "
                             "voxel_size >= 0")
        if overlap not in OVERLAP_MODES:
            raise ValueError(f"overlap {overlap!r} is not one of {OVERLAP_MODES}")
        self.num_cameras, self.height, self.width = n, height, width
        self.min_range, self.max_range = float(min_range), float(max_range)
        self.min_confidence, self.voxel_size = float(min_confidence), float(voxel_size)
        axes_yaw = [_yaw(cam2ego[i, :3, 2]) for i in range(n)]
        index, rays, origins, norms, camera = [], [], [], [], []
        rows, cols = np.arange(0, height, stride), np.arange(0, width, stride)
        for i in range(n):
            R = cam2ego[i, :3, :3]
            local = pixel_rays(K[i], height, width)[rows[:, None], cols[None, :]].reshape(-1, 3)
            ego = local.astype(np.float64) @ R.T
            keep = np.ones(len(ego), dtype=bool)
            if overlap == "split":
                keep = self._own_directions(i, ego, K, cam2ego, axes_yaw)
            flat = (rows[:, None] * width + cols[None, :]).reshape(-1)[keep] + i * height * width
            index.append(flat)
            rays.append(ego[keep].astype(np.float32))
            norms.append(np.linalg.norm(local[keep], axis=1).astype(np.float32))
            origins.append(np.broadcast_to(cam2ego[i, :3, 3].astype(np.float32), (int(keep.sum()), 3)))
            camera.append(np.full(int(keep.sum()), i, dtype=np.uint8))
        self._index = np.concatenate(index)
        self._rays = np.concatenate(rays)
        self._origins = np.ascontiguousarray(np.concatenate(origins))
        self._norms = np.concatenate(norms)
        self._camera = np.concatenate(camera)
        bounds = np.cumsum([0] + [len(c) for c in camera])
        self._segments = [(int(bounds[i]), int(bounds[i + 1]), cam2ego[i, :3, 3].astype(np.float32))
                          for i in range(n)]

    def _own_directions(self, i: int, ego_rays: np.ndarray, K: np.ndarray, cam2ego: np.ndarray,
                        axes_yaw: list[float]) -> np.ndarray:
        """Pixels of camera i whose direction no other camera seeing it has nearer in azimuth."""
        yaw = _yaw(ego_rays)
        own_gap = _angle_gap(yaw, axes_yaw[i])
        keep = np.ones(len(ego_rays), dtype=bool)
        for j in range(self.num_cameras):
            if j == i:
                continue
            local = ego_rays @ cam2ego[j, :3, :3]  # direction in camera j's optical frame (R_j^T d)
            z = local[:, 2]
            with np.errstate(divide="ignore", invalid="ignore"):
                u = K[j, 0, 0] * local[:, 0] / z + K[j, 0, 2]
                v = K[j, 1, 1] * local[:, 1] / z + K[j, 1, 2]
            seen = (z > 0) & (u >= -0.5) & (u < self.width - 0.5) & (v >= -0.5) & (v < self.height - 0.5)
            keep &= ~(seen & (_angle_gap(yaw, axes_yaw[j]) < own_gap))
        return keep

    def build(self, depth: np.ndarray, confidence: np.ndarray | None = None,
              images: np.ndarray | None = None) -> np.ndarray:
        """Cloud (M,) of ``CLOUD_DTYPE`` from depth (N, H, W) metres (NaN = invalid), confidence (N, H, W)
        and the network input images (N, H, W, 3) uint8 for colour (grey 128 when None)."""
        expected = (self.num_cameras, self.height, self.width)
        if depth.shape != expected:
            raise ValueError(f"depth {depth.shape} does not match the cloud geometry {expected}")
        d = depth.reshape(-1)[self._index]
        with np.errstate(invalid="ignore"):
            rng = d * self._norms
            keep = (rng >= self.min_range) & (rng <= self.max_range)
        conf = None if confidence is None else confidence.reshape(-1)[self._index]
        if conf is not None and self.min_confidence > 0:
            keep &= conf >= self.min_confidence
        # All sampled pixels valid (the usual case for a metric model): no gathers at all.
        sel = slice(None) if keep.all() else np.flatnonzero(keep)
        index = self._index[sel]
        count = len(index)
        cloud = np.empty(count, dtype=CLOUD_DTYPE)
        floats = cloud.view(np.float32).reshape(count, CLOUD_DTYPE.itemsize // 4)
        np.multiply(self._rays[sel], d[sel, None], out=floats[:, :3])
        if isinstance(sel, slice):  # camera by camera: add a 3-vector, read no per-point origins
            for start, stop, origin in self._segments:
                floats[start:stop, :3] += origin
        else:
            floats[:, :3] += self._origins[sel]
        if self.voxel_size > 0 and count:
            first = self._voxel_first(floats[:, :3])
            cloud, floats, index = cloud[first], floats[first], index[first]
            sel = np.arange(len(d))[sel][first]
        raw = cloud.view(np.uint8).reshape(len(cloud), CLOUD_DTYPE.itemsize)
        if images is None:
            raw[:, 12:15] = 128
        else:  # rgb float32 holds 0x00RRGGBB: bytes B, G, R, 0 in little-endian order
            raw[:, 12:15] = np.take(images.reshape(-1, 3), index, axis=0)[:, ::-1]
        raw[:, 15] = 0
        floats[:, 4] = 1.0 if conf is None else conf[sel]
        # camera index in byte 20, zero padding in 21-23: one little-endian uint32 write
        cloud.view("<u4").reshape(len(cloud), -1)[:, 5] = self._camera[sel]
        return cloud

    def _voxel_first(self, points: np.ndarray) -> np.ndarray:
        """Indices of the first point in each occupied voxel, in input order."""
        cells = np.floor(points / self.voxel_size).astype(np.int64) + (1 << 20)
        keys = (cells[:, 0] << 42) | (cells[:, 1] << 21) | cells[:, 2]
        _, first = np.unique(keys, return_index=True)
        first.sort()
        return first
