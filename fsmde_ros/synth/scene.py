"""Procedural street scenes: primitives (boxes, vertical cylinders, ellipsoids), materials, lighting.

World frame: x along the street, y to the left, z up, metres; the road surface is the plane z = 0
(lane markings and wet patches are textures on it). A scene is generated from one seed and holds
static primitives and moving ones (constant velocity), so ``Scene.primitives_at(t)`` gives the
geometry at any time of its sequence.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np

from fsmde_ros.synth.classes import BUILDING, PERSON, POLE, SIDEWALK, TRAFFIC_SIGN, VEGETATION, VEHICLE

# Materials: how a primitive's surface is textured and lit.
PAVEMENT, FACADE, GLASS_FACADE, CAR_PAINT, CAR_CABIN, METAL, FOLIAGE, BARK, CLOTH, SKIN, SIGN = range(11)
REFLECTIVE_MATERIALS = (GLASS_FACADE, CAR_CABIN)
"""Materials with mirror-like glass (their reflective pixels are decided per pixel in shading)."""

STREET_X = (-90.0, 190.0)
"""Extent of the generated street along x; the ego starts near x = 0 and drives towards +x."""


@dataclass
class Primitives:
    """All primitives of one kind, as parallel arrays (one row per primitive).

    ``kind`` is 'box' (centre, half extents, yaw about z), 'cylinder' (vertical: centre x, y, the
    z of its base in centre[2], radius in size[0], height in size[2]) or 'ellipsoid' (centre, radii).
    ``tex`` holds 4 material parameters (window spacing, floor height, ...), ``seed`` a texture seed.
    """

    kind: str
    centre: np.ndarray  # (P, 3)
    size: np.ndarray  # (P, 3)
    yaw: np.ndarray  # (P,)
    velocity: np.ndarray  # (P, 3) m/s
    cls: np.ndarray  # (P,) uint8 semantic class
    material: np.ndarray  # (P,) int
    colour: np.ndarray  # (P, 3) float32 albedo in [0, 1]
    tex: np.ndarray  # (P, 4) float32
    seed: np.ndarray  # (P,) int64

    def __len__(self) -> int:
        return int(self.centre.shape[0])

    def at(self, t: float) -> Primitives:
        """The primitives moved to time ``t`` (seconds since the start of the sequence)."""
        return replace(self, centre=self.centre + self.velocity * t)

    def aabb(self) -> tuple[np.ndarray, np.ndarray]:
        """World axis-aligned bounding boxes (lo, hi), each (P, 3)."""
        c, s = self.centre, self.size
        if self.kind == "box":
            cy, sy = np.abs(np.cos(self.yaw)), np.abs(np.sin(self.yaw))
            ext = np.stack([cy * s[:, 0] + sy * s[:, 1], sy * s[:, 0] + cy * s[:, 1], s[:, 2]], axis=1)
            return c - ext, c + ext
        if self.kind == "cylinder":
            r = s[:, 0]
            lo = np.stack([c[:, 0] - r, c[:, 1] - r, c[:, 2]], axis=1)
            hi = np.stack([c[:, 0] + r, c[:, 1] + r, c[:, 2] + s[:, 2]], axis=1)
            return lo, hi
        return c - s, c + s


class PrimitiveBuilder:
    """Collects primitives of one kind row by row, then freezes them into ``Primitives``."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.rows: list[tuple] = []

    def add(
        self,
        centre,
        size,
        cls: int,
        material: int,
        colour,
        yaw: float = 0.0,
        velocity=(0, 0, 0),
        tex=(0, 0, 0, 0),
        seed: int = 0,
    ) -> None:
        self.rows.append((centre, size, yaw, velocity, cls, material, colour, tex, seed))

    def build(self) -> Primitives:
        if not self.rows:
            z3 = np.zeros((0, 3))
            return Primitives(
                self.kind,
                z3,
                z3,
                np.zeros(0),
                z3,
                np.zeros(0, np.uint8),
                np.zeros(0, int),
                np.zeros((0, 3), np.float32),
                np.zeros((0, 4), np.float32),
                np.zeros(0, np.int64),
            )
        cols = list(zip(*self.rows, strict=True))
        return Primitives(
            self.kind,
            np.asarray(cols[0], float),
            np.asarray(cols[1], float),
            np.asarray(cols[2], float),
            np.asarray(cols[3], float),
            np.asarray(cols[4], np.uint8),
            np.asarray(cols[5], int),
            np.asarray(cols[6], np.float32),
            np.asarray(cols[7], np.float32),
            np.asarray(cols[8], np.int64),
        )


@dataclass
class Lighting:
    """Sun and sky of a scene."""

    sun_dir: np.ndarray  # (3,) unit vector towards the sun
    sun_strength: float  # irradiance of direct sun relative to the sky's
    sun_colour: np.ndarray  # (3,)
    sky_zenith: np.ndarray  # (3,) colour of the sky overhead
    sky_horizon: np.ndarray  # (3,) colour of the sky at the horizon
    ambient: float
    cloudiness: float  # 0 clear .. 1 overcast


@dataclass
class Street:
    """Layout of the street, used by ground texturing and by the reflection environment."""

    road_half: float  # half width of the road (curb to curb): the lanes plus a parking strip each side
    lanes_half: float  # half width of the driving lanes (edge lines at y = +-lanes_half)
    lane_width: float
    lanes: int
    sidewalk_width: float
    facade_y: tuple[float, float]  # mean y of the right (negative) and left (positive) building lines
    wetness: float  # 0 dry .. 1 wet; wet patches on the road are mirror-like
    asphalt: np.ndarray  # (3,) colour
    seed: int


@dataclass
class Scene:
    """One procedural street scene."""

    seed: int
    street: Street
    lighting: Lighting
    boxes: Primitives
    cylinders: Primitives
    ellipsoids: Primitives
    notes: dict = field(default_factory=dict)

    def primitives_at(self, t: float) -> tuple[Primitives, Primitives, Primitives]:
        return self.boxes.at(t), self.cylinders.at(t), self.ellipsoids.at(t)

    @property
    def num_primitives(self) -> int:
        return len(self.boxes) + len(self.cylinders) + len(self.ellipsoids)


def _lighting(rng: np.random.Generator) -> Lighting:
    overcast = rng.random() < 0.3
    elevation = math.radians(rng.uniform(12.0, 65.0))
    azimuth = rng.uniform(0.0, 2 * math.pi)
    sun_dir = np.array(
        [
            math.cos(elevation) * math.cos(azimuth),
            math.cos(elevation) * math.sin(azimuth),
            math.sin(elevation),
        ]
    )
    low_sun = elevation < math.radians(25)
    sun_colour = np.array([1.0, 0.86, 0.7]) if low_sun else np.array([1.0, 0.97, 0.92])
    if overcast:
        zenith = np.array([0.62, 0.64, 0.68]) * rng.uniform(0.85, 1.1)
        horizon = np.array([0.78, 0.79, 0.8]) * rng.uniform(0.9, 1.1)
        return Lighting(
            sun_dir,
            rng.uniform(0.05, 0.25),
            sun_colour,
            zenith,
            horizon,
            rng.uniform(0.75, 0.95),
            rng.uniform(0.7, 1.0),
        )
    zenith = np.array([0.22, 0.42, 0.78]) * rng.uniform(0.8, 1.1)
    horizon = np.array([0.7, 0.8, 0.92]) * rng.uniform(0.9, 1.05)
    return Lighting(
        sun_dir,
        rng.uniform(0.8, 1.4),
        sun_colour,
        zenith,
        horizon,
        rng.uniform(0.35, 0.55),
        rng.uniform(0.0, 0.5),
    )


_WALL_COLOURS = np.array(
    [
        [0.72, 0.62, 0.52],
        [0.6, 0.35, 0.28],
        [0.82, 0.8, 0.74],
        [0.55, 0.55, 0.55],
        [0.86, 0.76, 0.56],
        [0.45, 0.47, 0.52],
        [0.7, 0.5, 0.42],
        [0.92, 0.9, 0.86],
        [0.5, 0.42, 0.36],
        [0.66, 0.7, 0.62],
    ]
)
_CAR_COLOURS = np.array(
    [
        [0.08, 0.08, 0.09],
        [0.85, 0.85, 0.86],
        [0.55, 0.56, 0.58],
        [0.6, 0.08, 0.07],
        [0.08, 0.18, 0.45],
        [0.25, 0.27, 0.3],
        [0.9, 0.9, 0.88],
        [0.2, 0.35, 0.2],
        [0.75, 0.6, 0.15],
        [0.4, 0.1, 0.3],
    ]
)


def _jitter(rng: np.random.Generator, colour: np.ndarray, amount: float = 0.06) -> np.ndarray:
    return np.clip(colour * rng.uniform(1 - amount, 1 + amount, 3), 0.0, 1.0)


def _add_car(
    boxes: PrimitiveBuilder, rng: np.random.Generator, x: float, y: float, heading: float, speed: float
) -> None:
    """A car, van or truck: a body box and a glass cabin box, moving along ``heading`` at ``speed``."""
    kind = rng.choice(3, p=[0.75, 0.17, 0.08])
    length, width, body_h, cabin_h = [(4.4, 1.8, 0.85, 0.6), (5.2, 2.0, 1.3, 0.75), (8.5, 2.5, 2.6, 0.0)][
        kind
    ]
    length *= rng.uniform(0.92, 1.08)
    colour = _jitter(rng, _CAR_COLOURS[rng.integers(len(_CAR_COLOURS))])
    velocity = (speed * math.cos(heading), speed * math.sin(heading), 0.0)
    yaw = heading + rng.normal(0.0, 0.015)
    clearance = 0.12 if kind < 2 else 0.35
    seed = int(rng.integers(1 << 30))
    boxes.add(
        (x, y, clearance + body_h / 2),
        (length / 2, width / 2, body_h / 2),
        VEHICLE,
        CAR_PAINT,
        colour,
        yaw,
        velocity,
        (length, clearance, 0.0, float(kind)),
        seed,
    )
    if cabin_h > 0:
        cabin_len = length * (0.52 if kind == 0 else 0.75)
        shift = -0.08 * length if kind == 0 else -0.05 * length
        cx, cy = x + shift * math.cos(yaw), y + shift * math.sin(yaw)
        boxes.add(
            (cx, cy, clearance + body_h + cabin_h / 2),
            (cabin_len / 2, width / 2 * 0.9, cabin_h / 2),
            VEHICLE,
            CAR_CABIN,
            colour,
            yaw,
            velocity,
            (cabin_len, 0.0, 0.0, float(kind)),
            seed,
        )
    else:  # truck: a box body behind the cab
        boxes.add(
            (x - 0.1 * length * math.cos(yaw), y - 0.1 * length * math.sin(yaw), clearance + body_h + 0.6),
            (length * 0.38, width / 2, 0.6),
            VEHICLE,
            CAR_PAINT,
            _jitter(rng, np.array([0.85, 0.85, 0.85])),
            yaw,
            velocity,
            (length, clearance, 0.0, 3.0),
            seed,
        )


def generate_scene(seed: int) -> Scene:
    """A street scene from ``seed`` (deterministic)."""
    rng = np.random.default_rng([seed, 7477])
    lanes = int(rng.choice([2, 2, 3, 4]))
    lane_width = rng.uniform(3.0, 3.6)
    lanes_half = lanes * lane_width / 2
    road_half = lanes_half + rng.uniform(2.1, 2.6)
    sidewalk = rng.uniform(2.0, 5.0)
    street = Street(
        road_half,
        lanes_half,
        lane_width,
        lanes,
        sidewalk,
        (0.0, 0.0),
        float(rng.random() < 0.35) * rng.uniform(0.4, 1.0),
        np.array([0.3, 0.3, 0.31]) * rng.uniform(0.75, 1.25),
        int(rng.integers(1 << 30)),
    )
    lighting = _lighting(rng)
    boxes, cylinders, ellipsoids = (
        PrimitiveBuilder("box"),
        PrimitiveBuilder("cylinder"),
        PrimitiveBuilder("ellipsoid"),
    )
    x0, x1 = STREET_X
    facade_y = []
    for side in (-1.0, 1.0):
        # Sidewalk slab (curb 15 cm), in pieces so that each lies mostly in front of or behind a camera.
        kerb = side * (road_half + sidewalk / 2)
        for xa in np.arange(x0, x1, 40.0):
            boxes.add(
                (xa + 20.0, kerb, 0.075),
                (20.0, sidewalk / 2, 0.075),
                SIDEWALK,
                PAVEMENT,
                np.array([0.62, 0.6, 0.57]) * rng.uniform(0.85, 1.1),
                seed=int(rng.integers(1 << 30)),
                tex=(rng.uniform(0.4, 0.8), 0, 0, 0),
            )
        # Building line with alleys; a back row peeks through the gaps.
        base = road_half + sidewalk
        line = []
        x = x0
        while x < x1:
            width = rng.uniform(7.0, 26.0)
            if rng.random() < 0.15:  # alley or gap
                x += rng.uniform(4.0, 10.0)
                continue
            setback = rng.uniform(0.0, 2.5) if rng.random() < 0.4 else 0.0
            depth = rng.uniform(8.0, 16.0)
            height = rng.uniform(6.0, 32.0)
            glass = rng.random() < 0.2
            y = side * (base + setback + depth / 2)
            line.append(base + setback)
            colour = (
                np.array([0.25, 0.33, 0.38]) * rng.uniform(0.8, 1.2)
                if glass
                else _jitter(rng, _WALL_COLOURS[rng.integers(len(_WALL_COLOURS))])
            )
            tex = (
                rng.uniform(2.2, 4.0),
                rng.uniform(2.9, 3.6),
                rng.uniform(0.35, 0.65),
                rng.uniform(0.4, 0.65),
            )
            boxes.add(
                (x + width / 2, y, height / 2),
                (width / 2, depth / 2, height / 2),
                BUILDING,
                GLASS_FACADE if glass else FACADE,
                colour,
                tex=tex,
                seed=int(rng.integers(1 << 30)),
            )
            x += width
        facade_y.append(side * float(np.mean(line)) if line else side * (base + 8.0))
        for xb in np.arange(x0, x1, 30.0):
            height = rng.uniform(15.0, 45.0)
            boxes.add(
                (xb + 15.0, side * (base + 30.0), height / 2),
                (15.0, 8.0, height / 2),
                BUILDING,
                FACADE,
                _jitter(rng, _WALL_COLOURS[rng.integers(len(_WALL_COLOURS))]),
                tex=(rng.uniform(2.2, 4.0), rng.uniform(2.9, 3.6), 0.5, 0.5),
                seed=int(rng.integers(1 << 30)),
            )
        # Street furniture on the sidewalk: poles with lamps and signs, trees, pedestrians.
        x = x0 + rng.uniform(0.0, 10.0)
        while x < x1:
            y = side * (road_half + rng.uniform(0.4, 0.8))
            if rng.random() < 0.55:
                h = rng.uniform(4.0, 8.0)
                cylinders.add(
                    (x, y, 0.0),
                    (rng.uniform(0.06, 0.14), 0.0, h),
                    POLE,
                    METAL,
                    np.array([0.42, 0.43, 0.45]) * rng.uniform(0.7, 1.3),
                )
                if rng.random() < 0.6:  # lamp arm over the road
                    arm = rng.uniform(1.0, 2.5)
                    boxes.add(
                        (x, y - side * arm / 2, h - 0.1),
                        (0.06, arm / 2, 0.06),
                        POLE,
                        METAL,
                        np.array([0.4, 0.4, 0.42]),
                    )
                if rng.random() < 0.5:  # sign plate facing the traffic
                    boxes.add(
                        (x, y, rng.uniform(2.0, 3.0)),
                        (0.03, rng.uniform(0.3, 0.5), rng.uniform(0.3, 0.45)),
                        TRAFFIC_SIGN,
                        SIGN,
                        np.array([[0.8, 0.1, 0.1], [0.1, 0.3, 0.8], [0.9, 0.75, 0.1], [0.95, 0.95, 0.95]])[
                            rng.integers(4)
                        ],
                        seed=int(rng.integers(1 << 30)),
                    )
            else:
                h = rng.uniform(2.0, 3.5)
                cylinders.add(
                    (x, y + side * 0.6, 0.0),
                    (rng.uniform(0.12, 0.25), 0.0, h + 0.5),
                    VEGETATION,
                    BARK,
                    np.array([0.3, 0.22, 0.15]) * rng.uniform(0.8, 1.2),
                )
                radii = (rng.uniform(1.5, 3.0), rng.uniform(1.5, 3.0), rng.uniform(1.5, 3.0))
                ellipsoids.add(
                    (x, y + side * 0.6, h + radii[2]),
                    radii,
                    VEGETATION,
                    FOLIAGE,
                    np.array([0.22, 0.38, 0.12]) * rng.uniform(0.7, 1.3),
                    seed=int(rng.integers(1 << 30)),
                )
            x += rng.uniform(8.0, 25.0)
        for _ in range(int(rng.integers(3, 14))):
            x = rng.uniform(x0 + 20.0, x1 - 60.0)
            y = side * (road_half + rng.uniform(1.0, sidewalk - 0.3))
            speed = rng.choice([0.0, rng.uniform(0.8, 1.6)]) * rng.choice([-1.0, 1.0])
            height = rng.uniform(1.5, 1.9)
            clothes = rng.uniform(0.05, 0.8, 3)
            cylinders.add(
                (x, y, 0.0),
                (rng.uniform(0.18, 0.26), 0.0, height - 0.25),
                PERSON,
                CLOTH,
                clothes,
                velocity=(speed, 0.0, 0.0),
                seed=int(rng.integers(1 << 30)),
            )
            ellipsoids.add(
                (x, y, height - 0.13),
                (0.1, 0.1, 0.13),
                PERSON,
                SKIN,
                np.array([0.85, 0.65, 0.5]) * rng.uniform(0.45, 1.1),
                velocity=(speed, 0.0, 0.0),
            )
        # Parked cars along the curb.
        x = x0 + rng.uniform(0.0, 8.0)
        while x < x1:
            if rng.random() < rng.uniform(0.3, 0.8):
                _add_car(boxes, rng, x, side * (road_half - 1.1), 0.0 if rng.random() < 0.5 else math.pi, 0.0)
            x += rng.uniform(5.5, 9.0)
    # Far ends of the street: a cross row of buildings.
    for end in (x0 - 10.0, x1 + 10.0):
        for yb in np.arange(-60.0, 60.0, 20.0):
            height = rng.uniform(10.0, 40.0)
            boxes.add(
                (end, yb + 10.0, height / 2),
                (10.0, 10.0, height / 2),
                BUILDING,
                FACADE,
                _jitter(rng, _WALL_COLOURS[rng.integers(len(_WALL_COLOURS))]),
                tex=(3.0, 3.2, 0.5, 0.5),
                seed=int(rng.integers(1 << 30)),
            )
    # Moving traffic: oncoming on the left lanes, same direction on the right lanes (not the ego's).
    lane_centres = [(k + 0.5) * lane_width - lanes_half for k in range(lanes)]
    for lane, yc in enumerate(lane_centres):
        oncoming = yc > 0
        ego_lane = lane == 0  # the ego drives in the rightmost lane
        for _ in range(int(rng.integers(0, 4))):
            x = rng.uniform(x0 + 30.0, x1 - 20.0)
            if ego_lane and -12.0 < x < 40.0:
                continue
            speed = rng.uniform(4.0, 14.0)
            _add_car(boxes, rng, x, yc + rng.normal(0.0, 0.15), math.pi if oncoming else 0.0, speed)
    street.facade_y = (facade_y[0], facade_y[1])
    return Scene(seed, street, lighting, boxes.build(), cylinders.build(), ellipsoids.build())
