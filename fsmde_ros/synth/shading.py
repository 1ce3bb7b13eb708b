"""Surface attributes and shading of ray hits: albedo textures, sun and sky light, ground shadows,
sky, and mirror-like reflective surfaces (glass facades, car windows, wet road).

Reflective surfaces mix their own (dark) albedo with what they mirror by a Fresnel term, plus a
sharp specular highlight of the sun. What they mirror is looked up in a simplified environment of
the street (the road plane, the two building lines as textured planes, the sky), so their
appearance depends on the viewpoint: it breaks the Lambertian assumption of photometric losses.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fsmde_ros.synth import classes
from fsmde_ros.synth.noise import fractal_noise, hash01, value_noise
from fsmde_ros.synth.raycast import GROUND, Hits, intersect
from fsmde_ros.synth.scene import (
    BARK,
    CAR_CABIN,
    CAR_PAINT,
    CLOTH,
    FACADE,
    FOLIAGE,
    GLASS_FACADE,
    METAL,
    PAVEMENT,
    SIGN,
    Primitives,
    Scene,
)

SHADOW_CELL_M = 0.2


@dataclass
class ShadowMap:
    """Sun shadow on the ground plane over a rectangle: ``lit`` (rows along y, cols along x) in [0, 1]."""

    x0: float
    y0: float
    cell: float
    lit: np.ndarray

    def sample(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Bilinear lookup of lit(x, y); 1 outside the map."""
        h, w = self.lit.shape
        fx = (x - self.x0) / self.cell - 0.5
        fy = (y - self.y0) / self.cell - 0.5
        inside = (fx >= 0) & (fx < w - 1) & (fy >= 0) & (fy < h - 1)
        out = np.ones(np.shape(x), np.float32)
        if inside.any():
            ix = np.floor(fx[inside]).astype(np.int64)
            iy = np.floor(fy[inside]).astype(np.int64)
            ax = (fx[inside] - ix).astype(np.float32)
            ay = (fy[inside] - iy).astype(np.float32)
            lit = self.lit
            top = lit[iy, ix] * (1 - ax) + lit[iy, ix + 1] * ax
            bottom = lit[iy + 1, ix] * (1 - ax) + lit[iy + 1, ix + 1] * ax
            out[inside] = top * (1 - ay) + bottom * ay
        return out


def shadow_map(
    scene: Scene,
    groups: tuple[Primitives, ...],
    centre_x: float,
    extent_x: tuple[float, float] = (-70.0, 110.0),
    half_y: float = 30.0,
) -> ShadowMap:
    """Shadows cast by ``groups`` on the ground z = 0 around x = ``centre_x``.

    Each primitive only tests the ground cells inside the footprint of its bounding box projected
    along the sun direction, with the exact ray-primitive test (so tree crowns cast round shadows).
    """
    s = scene.lighting.sun_dir.astype(np.float32)
    x0 = centre_x + extent_x[0]
    cols = int((extent_x[1] - extent_x[0]) / SHADOW_CELL_M)
    rows = int(2 * half_y / SHADOW_CELL_M)
    lit = np.ones((rows, cols), np.float32)
    if s[2] <= 0.02:
        return ShadowMap(x0, -half_y, SHADOW_CELL_M, lit)
    xs = x0 + (np.arange(cols, dtype=np.float32) + 0.5) * SHADOW_CELL_M
    ys = -half_y + (np.arange(rows, dtype=np.float32) + 0.5) * SHADOW_CELL_M
    for prims in groups:
        if len(prims) == 0:
            continue
        lo, hi = prims.aabb()
        lo = np.maximum(lo, [-np.inf, -np.inf, 0.0])
        # Footprint of the box top and bottom, shifted along -s down to z = 0.
        shift_hi = hi[:, 2:3] / s[2] * s[:2]
        fx0 = np.minimum(lo[:, 0], lo[:, 0] - shift_hi[:, 0])
        fx1 = np.maximum(hi[:, 0], hi[:, 0] - shift_hi[:, 0])
        fy0 = np.minimum(lo[:, 1], lo[:, 1] - shift_hi[:, 1])
        fy1 = np.maximum(hi[:, 1], hi[:, 1] - shift_hi[:, 1])
        c0 = np.clip(np.floor((fx0 - x0) / SHADOW_CELL_M), 0, cols).astype(np.int64)
        c1 = np.clip(np.ceil((fx1 - x0) / SHADOW_CELL_M) + 1, 0, cols).astype(np.int64)
        r0 = np.clip(np.floor((fy0 + half_y) / SHADOW_CELL_M), 0, rows).astype(np.int64)
        r1 = np.clip(np.ceil((fy1 + half_y) / SHADOW_CELL_M) + 1, 0, rows).astype(np.int64)
        for k in np.flatnonzero((c1 > c0) & (r1 > r0)):
            gx, gy = np.meshgrid(xs[c0[k] : c1[k]], ys[r0[k] : r1[k]])
            points = np.stack([gx, gy, np.zeros_like(gx)], axis=-1)
            blocked = np.isfinite(intersect(prims, int(k), points, s))
            lit[r0[k] : r1[k], c0[k] : c1[k]][blocked] = 0.0
    return ShadowMap(x0, -half_y, SHADOW_CELL_M, lit)


@dataclass
class Surface:
    """Per-pixel surface attributes of a view (flat arrays over the hit pixels)."""

    point: np.ndarray  # (M, 3) world
    normal: np.ndarray  # (M, 3) unit, world
    albedo: np.ndarray  # (M, 3)
    cls: np.ndarray  # (M,) uint8
    mirror: np.ndarray  # (M,) float32 Fresnel F0 of mirror-like pixels, 0 elsewhere
    gloss: np.ndarray  # (M,) float32 strength of a broad specular highlight (paint, metal)
    grounded: np.ndarray  # (M,) bool: on the ground or sidewalk top, where the shadow map applies


def _frac(x: np.ndarray) -> np.ndarray:
    return x - np.floor(x)


def _box_surface(prims: Primitives, idx: np.ndarray, P: np.ndarray, s: Surface, sel: np.ndarray) -> None:
    c = prims.centre[idx].astype(np.float32)
    half = prims.size[idx].astype(np.float32)
    yaw = prims.yaw[idx].astype(np.float32)
    cy, sy = np.cos(yaw), np.sin(yaw)
    rel = P - c
    lx = rel[:, 0] * cy + rel[:, 1] * sy
    ly = -rel[:, 0] * sy + rel[:, 1] * cy
    lz = rel[:, 2]
    ratios = np.abs(np.stack([lx / half[:, 0], ly / half[:, 1], lz / half[:, 2]], axis=1))
    axis = np.argmax(ratios, axis=1)
    sign = np.sign(np.choose(axis, [lx, ly, lz])).astype(np.float32)
    nl = np.zeros_like(P)
    nl[np.arange(len(P)), axis] = sign
    normal = np.stack([nl[:, 0] * cy - nl[:, 1] * sy, nl[:, 0] * sy + nl[:, 1] * cy, nl[:, 2]], axis=1)
    # Face coordinates in metres: u along the face (horizontal), v up (world z for vertical faces).
    u = np.where(axis == 0, ly, lx)
    v = P[:, 2]
    top = axis == 2
    mat = prims.material[idx]
    base = prims.colour[idx].copy()
    tex = prims.tex[idx]
    seed = prims.seed[idx]
    albedo = base
    mirror = np.zeros(len(P), np.float32)
    gloss = np.zeros(len(P), np.float32)
    grounded = np.zeros(len(P), bool)

    m = mat == PAVEMENT
    if m.any():
        tile = tex[m, 0]
        gx, gy = _frac(P[m, 0] / tile), _frac(P[m, 1] / tile)
        grout = (gx < 0.05) | (gy < 0.05)
        shade = 0.85 + 0.25 * fractal_noise(P[m, 0] * 1.5, P[m, 1] * 1.5, seed[m], 2)
        shade *= 0.92 + 0.16 * hash01(np.floor(P[m, 0] / tile), np.floor(P[m, 1] / tile), seed[m])
        albedo[m] = base[m] * np.where(grout, 0.7, shade)[:, None]
        albedo[m & ~top] = base[m & ~top] * 1.1
        grounded[m] = top[m]

    m = (mat == FACADE) | (mat == GLASS_FACADE)
    if m.any():
        spacing, floor_h, win_w, win_h = tex[m, 0], tex[m, 1], tex[m, 2], tex[m, 3]
        fu, fv = _frac(u[m] / spacing), _frac(v[m] / floor_h)
        glass = mat[m] == GLASS_FACADE
        floor_idx = np.floor(v[m] / floor_h)
        window = (np.abs(fu - 0.5) < win_w / 2) & (fv > 0.3) & (fv < 0.3 + win_h) & (floor_idx >= 0)
        shop = (floor_idx == 0) & (np.abs(fu - 0.5) < 0.42) & (fv > 0.08) & (fv < 0.85)
        window = np.where(floor_idx == 0, shop, window)
        grime = 0.8 + 0.3 * fractal_noise(u[m] * 0.7, v[m] * 0.7, seed[m], 3)
        wall = base[m] * grime[:, None]
        interior = hash01(np.floor(u[m] / spacing), floor_idx, seed[m])
        window_col = np.stack(
            [0.08 + 0.25 * interior, 0.09 + 0.22 * interior, 0.11 + 0.18 * interior], axis=1
        )
        col = np.where(window[:, None], window_col, wall)
        # Curtain wall: reflective panes between thin mullions at every metre and a half and floor.
        mullion = (_frac(u[m] / 1.5) < 0.05) | (fv < 0.06)
        col = np.where((glass & mullion)[:, None], np.array([0.35, 0.36, 0.38], np.float32), col)
        col = np.where((glass & ~mullion)[:, None], base[m] * 0.35, col)
        roof = top[m]
        col[roof] = np.array([0.3, 0.3, 0.3], np.float32) * grime[roof, None]
        albedo[m] = col
        mirror[m] = np.where(glass & ~mullion & ~roof, 0.22, 0.0)
        gloss[m] = np.where(window & ~glass & ~roof, 0.5, 0.0)

    m = mat == CAR_PAINT
    if m.any():
        length, clearance = tex[m, 0], tex[m, 1]
        side = axis[m] == 1
        front_back = axis[m] == 0
        wheel_h = clearance + 0.2
        du = np.minimum(np.abs(u[m] - (length / 2 - 0.85)), np.abs(u[m] + (length / 2 - 0.85)))
        wheel = side & (du**2 + (v[m] - wheel_h) ** 2 < 0.34**2)
        lamp = front_back & (np.abs(np.abs(ly[m]) - half[m, 1] * 0.7) < 0.18) & (np.abs(v[m] - 0.75) < 0.08)
        lamp_col = np.where(
            (sign[m] > 0)[:, None],
            np.array([0.95, 0.95, 0.85], np.float32),
            np.array([0.7, 0.05, 0.04], np.float32),
        )
        plate = front_back & (np.abs(ly[m]) < 0.26) & (np.abs(v[m] - 0.45) < 0.06)
        col = base[m].copy()
        col = np.where(lamp[:, None], lamp_col, col)
        col = np.where(plate[:, None], np.array([0.9, 0.9, 0.88], np.float32), col)
        col = np.where(wheel[:, None], np.array([0.05, 0.05, 0.05], np.float32), col)
        albedo[m] = col
        gloss[m] = np.where(wheel, 0.0, 0.8)

    m = mat == CAR_CABIN
    if m.any():
        length = tex[m, 0]
        pillar = (np.abs(u[m]) > length / 2 - 0.12) & (axis[m] == 1)
        roof = top[m]
        glass = ~pillar & ~roof
        albedo[m] = np.where(glass[:, None], np.array([0.05, 0.06, 0.07], np.float32), base[m])
        mirror[m] = np.where(glass, 0.18, 0.0)
        gloss[m] = np.where(glass, 0.0, 0.8)

    m = mat == SIGN
    if m.any():
        face = axis[m] == 0
        border = np.maximum(np.abs(ly[m]) / half[m, 1], np.abs(lz[m]) / half[m, 2]) > 0.85
        col = np.where(border[:, None], np.array([0.92, 0.92, 0.92], np.float32), base[m])
        albedo[m] = np.where(face[:, None], col, np.array([0.45, 0.45, 0.47], np.float32))
        gloss[m] = 0.3

    m = mat == METAL
    if m.any():
        gloss[m] = 0.6

    s.normal[sel] = normal
    s.albedo[sel] = albedo
    s.mirror[sel] = mirror
    s.gloss[sel] = gloss
    s.grounded[sel] = grounded


def _cylinder_surface(prims: Primitives, idx: np.ndarray, P: np.ndarray, s: Surface, sel: np.ndarray) -> None:
    c = prims.centre[idx].astype(np.float32)
    r = prims.size[idx, 0].astype(np.float32)
    height = prims.size[idx, 2].astype(np.float32)
    rel = P - c
    on_top = rel[:, 2] > height - 1e-3
    on_bottom = rel[:, 2] < 1e-3
    normal = np.stack([rel[:, 0] / r, rel[:, 1] / r, np.zeros_like(r)], axis=1)
    normal[on_top] = (0, 0, 1)
    normal[on_bottom] = (0, 0, -1)
    normal /= np.linalg.norm(normal, axis=1, keepdims=True)
    mat = prims.material[idx]
    base = prims.colour[idx].copy()
    angle = np.arctan2(rel[:, 1], rel[:, 0])
    m = mat == BARK
    if m.any():
        base[m] *= (0.7 + 0.5 * fractal_noise(angle[m] * 3.0, rel[m, 2] * 4.0, 11, 2))[:, None]
    m = mat == CLOTH
    if m.any():
        legs = rel[m, 2] < 0.47 * height[m]
        trousers = np.array([0.12, 0.13, 0.2], np.float32) * (0.6 + hash01(prims.seed[idx][m], 3, 5))[:, None]
        base[m] = np.where(legs[:, None], trousers, base[m])
        arms = (np.abs(np.cos(angle[m] - np.arctan2(1.0, 0.0))) < 0.25) & ~legs
        base[m] = np.where(arms[:, None], base[m] * 0.8, base[m])
    s.normal[sel] = normal
    s.albedo[sel] = base
    s.gloss[sel] = np.where(mat == METAL, 0.6, 0.0)


def _ellipsoid_surface(
    prims: Primitives, idx: np.ndarray, P: np.ndarray, s: Surface, sel: np.ndarray
) -> None:
    c = prims.centre[idx].astype(np.float32)
    radii = prims.size[idx].astype(np.float32)
    normal = (P - c) / radii**2
    normal /= np.linalg.norm(normal, axis=1, keepdims=True)
    base = prims.colour[idx].copy()
    m = prims.material[idx] == FOLIAGE
    if m.any():
        q = P[m]
        leaves = fractal_noise(
            q[:, 0] * 4.0 + q[:, 2] * 3.0, q[:, 1] * 4.0 - q[:, 2] * 2.0, prims.seed[idx][m], 3
        )
        base[m] *= (0.45 + 1.1 * leaves)[:, None]
        # Leaves scatter light: bend normals randomly so crowns look bumpy.
        jitter = (
            np.stack(
                [
                    value_noise(q[:, 0] * 5, q[:, 2] * 5, 1),
                    value_noise(q[:, 1] * 5, q[:, 2] * 5, 2),
                    value_noise(q[:, 0] * 5, q[:, 1] * 5, 3),
                ],
                axis=1,
            )
            - 0.5
        )
        bent = normal[m] + 0.9 * jitter
        normal[m] = bent / np.linalg.norm(bent, axis=1, keepdims=True)
    s.normal[sel] = normal
    s.albedo[sel] = base


def _ground_surface(scene: Scene, P: np.ndarray, s: Surface, sel: np.ndarray) -> None:
    st = scene.street
    x, y = P[:, 0], P[:, 1]
    road = np.abs(y) <= st.road_half
    grain = (
        0.8
        + 0.3 * fractal_noise(x * 0.5, y * 0.5, st.seed, 3)
        + 0.12 * (hash01(np.floor(x * 20), np.floor(y * 20), st.seed) - 0.5)
    )
    albedo = st.asphalt[None, :].astype(np.float32) * grain[:, None]
    # Lane markings: solid edge lines, dashed lane lines, a solid centre line between the directions.
    marking = np.zeros(len(P), bool)
    marking |= np.abs(np.abs(y) - st.lanes_half) < 0.075
    for k in range(1, st.lanes):
        yb = -st.lanes_half + k * st.lane_width
        centre = abs(yb) < 1e-6 or (st.lanes % 2 == 1 and k == st.lanes // 2 + 1)
        line = np.abs(y - yb) < (0.08 if not centre else 0.1)
        marking |= line if centre else line & (_frac(x / 9.0) < 0.34)
    crossing_x = 25.0 + 40.0 * hash01(1, 2, st.seed)
    marking |= (np.abs(x - crossing_x) < 2.0) & (_frac(y / 1.0) < 0.5) & (np.abs(y) < st.lanes_half)
    wear = fractal_noise(x * 2.0, y * 2.0, st.seed + 1, 2) > 0.3
    marking &= road & wear
    albedo[marking] = np.array([0.82, 0.82, 0.8], np.float32) * grain[marking, None]
    off_road = ~road
    albedo[off_road] = np.array([0.5, 0.49, 0.46], np.float32) * grain[off_road, None]
    mirror = np.zeros(len(P), np.float32)
    if st.wetness > 0:
        wet = road & (fractal_noise(x / 9.0, y / 9.0, st.seed + 2, 2) > 1.0 - 0.55 * st.wetness)
        albedo[wet] *= 0.45
        mirror[wet] = 0.12
    cls = np.where(road, classes.ROAD, classes.SIDEWALK).astype(np.uint8)
    s.normal[sel] = (0.0, 0.0, 1.0)
    s.albedo[sel] = albedo
    s.cls[sel] = cls
    s.mirror[sel] = mirror
    s.grounded[sel] = True


def surfaces(
    scene: Scene,
    groups: tuple[Primitives, ...],
    hits: Hits,
    origin: np.ndarray,
    dirs: np.ndarray,
    pixels: np.ndarray,
) -> Surface:
    """Attributes of the hit pixels ``pixels`` (flat indices into the view, all with a finite t)."""
    t = hits.t.reshape(-1)[pixels]
    d = dirs.reshape(-1, 3)[pixels]
    P = (origin.astype(np.float32) + t[:, None] * d).astype(np.float32)
    n = len(pixels)
    s = Surface(
        P,
        np.zeros((n, 3), np.float32),
        np.zeros((n, 3), np.float32),
        np.zeros(n, np.uint8),
        np.zeros(n, np.float32),
        np.zeros(n, np.float32),
        np.zeros(n, bool),
    )
    group = hits.group.reshape(-1)[pixels]
    index = hits.index.reshape(-1)[pixels]
    sel = group == GROUND
    if sel.any():
        _ground_surface(scene, P[sel], s, sel)
    for g, prims in enumerate(groups):
        sel = group == g
        if not sel.any():
            continue
        idx = index[sel]
        s.cls[sel] = prims.cls[idx]
        if prims.kind == "box":
            _box_surface(prims, idx, P[sel], s, sel)
        elif prims.kind == "cylinder":
            _cylinder_surface(prims, idx, P[sel], s, sel)
        else:
            _ellipsoid_surface(prims, idx, P[sel], s, sel)
    return s


def sky_colour(scene: Scene, d: np.ndarray) -> np.ndarray:
    """Colour (M, 3) of the sky seen along directions ``d`` (M, 3) (any length)."""
    light = scene.lighting
    dn = d / np.linalg.norm(d, axis=1, keepdims=True)
    e = np.clip(dn[:, 2], 0.0, 1.0)
    col = light.sky_horizon + (light.sky_zenith - light.sky_horizon) * np.sqrt(e)[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        cu, cv = dn[:, 0] / np.maximum(dn[:, 2], 0.05), dn[:, 1] / np.maximum(dn[:, 2], 0.05)
    cloud = fractal_noise(cu * 1.5, cv * 1.5, scene.seed, 4)
    cover = np.clip((cloud - (1.0 - 0.8 * light.cloudiness)) * 3.0, 0.0, 1.0) * (e > 0)
    cloud_col = np.array([0.88, 0.88, 0.9]) * (0.75 + 0.25 * cloud)[:, None]
    col = col * (1 - cover[:, None]) + cloud_col * cover[:, None]
    cos_sun = np.clip(dn @ light.sun_dir, 0.0, 1.0)
    col = col + light.sun_colour * light.sun_strength * (3.0 * cos_sun**800 + 0.25 * cos_sun**12)[:, None]
    return col.astype(np.float32)


def environment_colour(scene: Scene, P: np.ndarray, r: np.ndarray) -> np.ndarray:
    """What a mirror at P sees along r: the road plane, the two building lines as planes, or the sky."""
    st, light = scene.street, scene.lighting
    n = len(P)
    with np.errstate(divide="ignore", invalid="ignore"):
        t_ground = np.where(r[:, 2] < -1e-4, -P[:, 2] / r[:, 2], np.inf)
        plane_y = np.where(r[:, 1] < 0, st.facade_y[0], st.facade_y[1])
        t_wall = (plane_y - P[:, 1]) / r[:, 1]
        t_wall = np.where((t_wall > 0.05) & np.isfinite(t_wall), t_wall, np.inf)
    wall_hit = P + np.where(np.isfinite(t_wall), t_wall, 0.0)[:, None] * r
    wall_ok = (
        np.isfinite(t_wall)
        & (wall_hit[:, 2] > 0)
        & (wall_hit[:, 2] < 14.0 + 10.0 * hash01(np.floor(wall_hit[:, 0] / 15.0), 0, st.seed))
        & (t_wall < t_ground)
    )
    col = sky_colour(scene, r)
    ground = np.isfinite(t_ground) & ~wall_ok
    if ground.any():
        g = P[ground] + t_ground[ground, None] * r[ground]
        col[ground] = (
            st.asphalt
            * (0.8 + 0.3 * value_noise(g[:, 0], g[:, 1], st.seed))[:, None]
            * (light.ambient + 0.6 * light.sun_strength * light.sun_dir[2])
        )
    if wall_ok.any():
        w = wall_hit[wall_ok]
        fu, fv = _frac(w[:, 0] / 3.0), _frac(w[:, 2] / 3.2)
        window = (np.abs(fu - 0.5) < 0.25) & (fv > 0.3) & (fv < 0.8)
        tone = 0.35 + 0.4 * hash01(np.floor(w[:, 0] / 15.0), 1, st.seed)
        wall = np.stack([tone * 1.05, tone, tone * 0.9], axis=1)
        col[wall_ok] = np.where(window[:, None], 0.1, wall) * (light.ambient + 0.5 * light.sun_strength)
    return col.astype(np.float32) if n else np.zeros((0, 3), np.float32)


def shade(
    scene: Scene, s: Surface, d: np.ndarray, shadows: ShadowMap, reflections: bool = True
) -> np.ndarray:
    """Linear RGB (M, 3) of surfaces seen along directions ``d`` (M, 3).

    ``reflections`` False leaves out the mirror term (Fresnel blend with the mirrored environment and
    the sun's highlight) of mirror-like surfaces: their diffuse layer alone, for diagnostics.
    """
    light = scene.lighting
    dn = d / np.linalg.norm(d, axis=1, keepdims=True)
    # Normals face the viewer (thin plates and caps can be seen from behind).
    facing = np.sum(s.normal * dn, axis=1) > 0
    normal = np.where(facing[:, None], -s.normal, s.normal)
    lit = np.ones(len(d), np.float32)
    if s.grounded.any():
        g = s.grounded
        lit[g] = shadows.sample(s.point[g, 0], s.point[g, 1])
    cos_sun = np.clip(normal @ light.sun_dir.astype(np.float32), 0.0, 1.0)
    sky_light = light.ambient * (0.75 + 0.25 * normal[:, 2])
    irradiance = (
        sky_light[:, None] * (0.55 * light.sky_horizon + 0.45 * np.ones(3))
        + (light.sun_strength * cos_sun * lit)[:, None] * light.sun_colour
    )
    col = s.albedo * irradiance
    r = dn - 2.0 * np.sum(dn * normal, axis=1, keepdims=True) * normal
    cos_r = np.clip(r @ light.sun_dir.astype(np.float32), 0.0, 1.0)
    if (s.gloss > 0).any():
        col += (s.gloss * 0.35 * light.sun_strength * lit * cos_r**40)[:, None] * light.sun_colour
    mirror = s.mirror > 0
    if reflections and mirror.any():
        cos_i = np.abs(np.sum(dn[mirror] * normal[mirror], axis=1))
        f0 = s.mirror[mirror]
        fresnel = f0 + (1.0 - f0) * (1.0 - cos_i) ** 5
        env = environment_colour(scene, s.point[mirror], r[mirror])
        spec = light.sun_strength * lit[mirror] * (6.0 * cos_r[mirror] ** 400 + 0.4 * cos_r[mirror] ** 30)
        col[mirror] = (
            col[mirror] * (1 - fresnel[:, None]) + env * fresnel[:, None] + spec[:, None] * light.sun_colour
        )
    return col.astype(np.float32)
