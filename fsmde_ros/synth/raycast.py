"""Vectorised ray casting of boxes, vertical cylinders, ellipsoids and the ground plane.

Rays are cast per *view*: a grid of rays from one origin (a pinhole camera or a LiDAR segment).
Each primitive is only tested against the rays of the grid window its bounding box can cover
(exactly bounded for pinhole views by clipping the box at the near plane), so the cost of a view
is about the screen area of what it sees, not rays x primitives. Ray parameters t are in units of
the ray direction: with camera rays of z = 1 in the optical frame, t is the z-depth.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from fsmde_ros.synth.scene import Primitives

GROUND = -2
SKY = -1
_EPS = 1e-4

_SIGNS = np.array([[(i >> 0) & 1, (i >> 1) & 1, (i >> 2) & 1] for i in range(8)], np.float64) * 2 - 1
_EDGES = np.array([(i, i | (1 << b)) for i in range(8) for b in range(3) if not i & (1 << b)])


def intersect_box(
    o: np.ndarray, d: np.ndarray, centre: np.ndarray, half: np.ndarray, yaw: float
) -> np.ndarray:
    """Entry t of rays o + t d (broadcast (..., 3)) into a box rotated by ``yaw`` about z; inf on a miss."""
    rel = o - centre
    ox, oy, oz = rel[..., 0], rel[..., 1], rel[..., 2]
    dx, dy, dz = d[..., 0], d[..., 1], d[..., 2]
    if yaw != 0.0:
        c, s = float(np.cos(yaw)), float(np.sin(yaw))
        ox, oy = ox * c + oy * s, -ox * s + oy * c
        dx, dy = dx * c + dy * s, -dx * s + dy * c
    with np.errstate(divide="ignore", invalid="ignore"):
        tmin = np.full(np.broadcast_shapes(ox.shape, dx.shape), -np.inf, np.float32)
        tmax = np.full_like(tmin, np.inf)
        for oa, da, h in ((ox, dx, half[0]), (oy, dy, half[1]), (oz, dz, half[2])):
            inv = 1.0 / da
            t1 = (-h - oa) * inv
            t2 = (h - oa) * inv
            np.maximum(tmin, np.minimum(t1, t2), out=tmin)
            np.minimum(tmax, np.maximum(t1, t2), out=tmax)
    hit = (tmax >= tmin) & (tmin > _EPS)
    return np.where(hit, tmin, np.inf).astype(np.float32, copy=False)


def intersect_cylinder(
    o: np.ndarray, d: np.ndarray, base: np.ndarray, radius: float, height: float
) -> np.ndarray:
    """Entry t into a vertical capped cylinder standing on ``base`` (x, y, z); inf on a miss."""
    ox = o[..., 0] - base[0]
    oy = o[..., 1] - base[1]
    oz = o[..., 2] - base[2]
    dx, dy, dz = d[..., 0], d[..., 1], d[..., 2]
    a = dx * dx + dy * dy
    b = ox * dx + oy * dy
    c = ox * ox + oy * oy - radius * radius
    disc = b * b - a * c
    with np.errstate(divide="ignore", invalid="ignore"):
        t_side = (-b - np.sqrt(disc)) / a
        z_side = oz + t_side * dz
        side = (disc >= 0) & (t_side > _EPS) & (z_side >= 0) & (z_side <= height)
        t = np.where(side, t_side, np.inf)
        for zc in (height, 0.0):
            t_cap = (zc - oz) / dz
            px = ox + t_cap * dx
            py = oy + t_cap * dy
            cap = (t_cap > _EPS) & (px * px + py * py <= radius * radius)
            t = np.where(cap & (t_cap < t), t_cap, t)
    return t.astype(np.float32, copy=False)


def intersect_ellipsoid(o: np.ndarray, d: np.ndarray, centre: np.ndarray, radii: np.ndarray) -> np.ndarray:
    """Entry t into an axis-aligned ellipsoid; inf on a miss."""
    inv = 1.0 / radii
    ox = (o[..., 0] - centre[0]) * inv[0]
    oy = (o[..., 1] - centre[1]) * inv[1]
    oz = (o[..., 2] - centre[2]) * inv[2]
    dx, dy, dz = d[..., 0] * inv[0], d[..., 1] * inv[1], d[..., 2] * inv[2]
    a = dx * dx + dy * dy + dz * dz
    b = ox * dx + oy * dy + oz * dz
    c = ox * ox + oy * oy + oz * oz - 1.0
    disc = b * b - a * c
    with np.errstate(invalid="ignore"):
        t = (-b - np.sqrt(disc)) / a
    return np.where((disc >= 0) & (t > _EPS), t, np.inf).astype(np.float32, copy=False)


def intersect(prims: Primitives, k: int, o: np.ndarray, d: np.ndarray) -> np.ndarray:
    """Entry t of rays into primitive ``k`` of ``prims``."""
    centre = prims.centre[k].astype(np.float32)
    size = prims.size[k].astype(np.float32)
    if prims.kind == "box":
        return intersect_box(o, d, centre, size, float(prims.yaw[k]))
    if prims.kind == "cylinder":
        return intersect_cylinder(o, d, centre, float(size[0]), float(size[2]))
    return intersect_ellipsoid(o, d, centre, size)


def aabb_corners(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """The 8 corners (P, 8, 3) of boxes (lo, hi); corner i takes hi on axis b where bit b of i is set."""
    centre = (lo + hi) / 2
    half = (hi - lo) / 2
    return centre[:, None, :] + half[:, None, :] * _SIGNS[None]


class View(Protocol):
    """A grid of rays from one origin: ``dirs`` (H, W, 3) float32 in world, t in units of ``dirs``."""

    origin: np.ndarray  # (3,)
    dirs: np.ndarray  # (H, W, 3)
    max_t: float

    def windows(self, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
        """(P, 4) int rows r0, r1, cols c0, c1 (half-open) of rays that may hit each box; r0 == r1: none."""


@dataclass
class PinholeView:
    """A pinhole camera: ``rotation`` optical -> world, K, and rays with z = 1 in the optical frame."""

    origin: np.ndarray
    dirs: np.ndarray
    rotation: np.ndarray  # (3, 3)
    K: np.ndarray
    max_t: float = np.inf
    near: float = 0.05

    def windows(self, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
        h, w = self.dirs.shape[:2]
        corners = (aabb_corners(lo, hi) - self.origin) @ self.rotation  # (P, 8, 3) optical frame
        z = corners[..., 2]
        za, zb = z[:, _EDGES[:, 0]], z[:, _EDGES[:, 1]]
        cross = (za - self.near) * (zb - self.near) < 0
        with np.errstate(divide="ignore", invalid="ignore"):
            s = (self.near - za) / (zb - za)
        pa, pb = corners[:, _EDGES[:, 0]], corners[:, _EDGES[:, 1]]
        clipped = pa + s[..., None] * (pb - pa)
        points = np.concatenate([corners, clipped], axis=1)
        valid = np.concatenate([z >= self.near, cross], axis=1)
        pz = np.where(valid, points[..., 2], 1.0)
        u = np.where(valid, self.K[0, 0] * points[..., 0] / pz + self.K[0, 2], np.nan)
        v = np.where(valid, self.K[1, 1] * points[..., 1] / pz + self.K[1, 2], np.nan)
        any_valid = valid.any(axis=1)
        out = np.zeros((lo.shape[0], 4), np.int64)
        if not any_valid.any():
            return out
        u, v = u[any_valid], v[any_valid]
        c0 = np.clip(np.floor(np.nanmin(u, axis=1)), 0, w)
        c1 = np.clip(np.ceil(np.nanmax(u, axis=1)) + 1, 0, w)
        r0 = np.clip(np.floor(np.nanmin(v, axis=1)), 0, h)
        r1 = np.clip(np.ceil(np.nanmax(v, axis=1)) + 1, 0, h)
        out[any_valid] = np.stack([r0, r1, c0, c1], axis=1).astype(np.int64)
        empty = (out[:, 0] >= out[:, 1]) | (out[:, 2] >= out[:, 3])
        out[empty] = 0
        return out


@dataclass
class SpinningView:
    """A segment of a level spinning LiDAR: rows are beams of ``elevations`` (ascending, radians),
    columns azimuths ``az_start + j * az_step`` relative to ``heading`` (world yaw); unit directions."""

    origin: np.ndarray
    dirs: np.ndarray
    elevations: np.ndarray
    az_start: float
    az_step: float
    heading: float
    max_t: float = np.inf

    def windows(self, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
        cols = self.dirs.shape[1]
        ox, oy, oz = self.origin
        fx = np.stack([lo[:, 0], hi[:, 0], hi[:, 0], lo[:, 0]], axis=1) - ox
        fy = np.stack([lo[:, 1], lo[:, 1], hi[:, 1], hi[:, 1]], axis=1) - oy
        inside = (lo[:, 0] <= ox) & (ox <= hi[:, 0]) & (lo[:, 1] <= oy) & (oy <= hi[:, 1])
        centre_az = np.arctan2(fy.mean(axis=1), fx.mean(axis=1))
        rel = np.angle(np.exp(1j * (np.arctan2(fy, fx) - centre_az[:, None])))
        # Azimuths relative to the middle of the segment, so that no range wraps inside it.
        mid = self.az_start + cols * self.az_step / 2
        lo_az = mid + np.angle(np.exp(1j * (centre_az + rel.min(axis=1) - self.heading - mid)))
        hi_az = lo_az + (rel.max(axis=1) - rel.min(axis=1))
        dist = np.hypot(fx, fy)
        near_x = np.clip(0.0, lo[:, 0] - ox, hi[:, 0] - ox)
        near_y = np.clip(0.0, lo[:, 1] - oy, hi[:, 1] - oy)
        dmin = np.hypot(near_x, near_y)
        dmax = dist.max(axis=1)
        zlo, zhi = lo[:, 2] - oz, hi[:, 2] - oz
        el_hi = np.arctan2(zhi, np.where(zhi > 0, dmin, dmax))
        el_lo = np.arctan2(zlo, np.where(zlo > 0, dmax, dmin))
        full = inside | (hi_az > mid + np.pi)
        c0 = np.where(full, 0, np.clip(np.floor((lo_az - self.az_start) / self.az_step), 0, cols))
        c1 = np.where(full, cols, np.clip(np.ceil((hi_az - self.az_start) / self.az_step) + 1, 0, cols))
        r0 = np.searchsorted(self.elevations, el_lo, side="left")
        r1 = np.searchsorted(self.elevations, el_hi, side="right")
        out = np.stack([r0, r1, c0, c1], axis=1).astype(np.int64)
        out[(out[:, 0] >= out[:, 1]) | (out[:, 2] >= out[:, 3])] = 0
        return out


@dataclass
class Hits:
    """Nearest hit per ray: t (H, W) float32 (inf: none), primitive group and index (-1 sky, -2 ground)."""

    t: np.ndarray
    group: np.ndarray  # (H, W) int8: 0 box, 1 cylinder, 2 ellipsoid, GROUND, SKY
    index: np.ndarray  # (H, W) int32 primitive index within its group


def trace(view: View, groups: tuple[Primitives, ...], with_ground: bool = True) -> Hits:
    """Nearest hits of every ray of ``view`` against the ground plane z = 0 and ``groups`` of primitives."""
    d = view.dirs
    h, w = d.shape[:2]
    with np.errstate(divide="ignore", invalid="ignore"):
        t_ground = np.where(d[..., 2] < 0, -view.origin[2] / d[..., 2], np.inf).astype(np.float32)
    if not with_ground:
        t_ground[:] = np.inf
    t = np.minimum(t_ground, np.float32(view.max_t)) if np.isfinite(view.max_t) else t_ground.copy()
    group = np.where(np.isfinite(t_ground) & (t_ground <= view.max_t), GROUND, SKY).astype(np.int8)
    index = np.full((h, w), -1, np.int32)
    origin = view.origin.astype(np.float32)
    for g, prims in enumerate(groups):
        if len(prims) == 0:
            continue
        lo, hi = prims.aabb()
        win = view.windows(lo, hi)
        for k in np.flatnonzero(win[:, 1] > win[:, 0]):
            r0, r1, c0, c1 = win[k]
            tk = intersect(prims, int(k), origin, d[r0:r1, c0:c1])
            sub = t[r0:r1, c0:c1]
            closer = tk < sub
            if closer.any():
                sub[closer] = tk[closer]
                group[r0:r1, c0:c1][closer] = g
                index[r0:r1, c0:c1][closer] = k
    t[group == SKY] = np.inf
    return Hits(t, group, index)
