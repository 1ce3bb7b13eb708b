"""Ego motion and sensor timing of a SynthSurround sequence.

Timing follows nuScenes: a roof LiDAR spins at 20 Hz (clockwise seen from above, sweep starting at
the rear) and each camera is triggered when the sweep crosses the centre of its field of view, so
the six images of one frame are taken up to 50 ms apart; frames follow each other at 12 Hz.
Every camera image is rendered at its own capture time, with the ego and the traffic moved there.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from fsmde_ros.rig import Rig

FRAME_RATE_HZ = 12.0
LIDAR_SWEEP_S = 0.05


@dataclass(frozen=True)
class EgoMotion:
    """Planar ego motion: speed v0 + accel t (never negative), yaw = yaw_amp sin(2 pi f t + phase)."""

    x0: float
    y0: float
    speed0: float
    accel: float
    yaw_amp: float
    yaw_freq: float
    yaw_phase: float

    def yaw(self, t: np.ndarray | float) -> np.ndarray:
        return self.yaw_amp * np.sin(2 * math.pi * self.yaw_freq * np.asarray(t) + self.yaw_phase)

    def yaw_rate(self, t: float) -> float:
        w = 2 * math.pi * self.yaw_freq
        return float(self.yaw_amp * w * math.cos(w * t + self.yaw_phase))

    def speed(self, t: np.ndarray | float) -> np.ndarray:
        return np.maximum(self.speed0 + self.accel * np.asarray(t), 0.0)

    def position(self, t: float) -> tuple[float, float]:
        """(x, y) at time t, integrating the heading numerically (2 ms steps, trapezoid rule)."""
        if t <= 0:
            return self.x0, self.y0
        ts = np.linspace(0.0, t, max(16, math.ceil(t / 0.002) + 1))
        v = self.speed(ts)
        yaw = self.yaw(ts)
        vx, vy = v * np.cos(yaw), v * np.sin(yaw)
        dt = ts[1] - ts[0]
        return (
            self.x0 + float(np.sum(vx[1:] + vx[:-1]) * dt / 2),
            self.y0 + float(np.sum(vy[1:] + vy[:-1]) * dt / 2),
        )

    def pose(self, t: float) -> np.ndarray:
        """base_link -> world (4, 4) at time t (the road is flat: no roll, no pitch)."""
        x, y = self.position(t)
        yaw = float(self.yaw(t))
        T = np.eye(4)
        T[:2, :2] = [[math.cos(yaw), -math.sin(yaw)], [math.sin(yaw), math.cos(yaw)]]
        T[:2, 3] = (x, y)
        return T


def sample_motion(rng: np.random.Generator, lanes_half: float, lane_width: float) -> EgoMotion:
    """Ego motion in the rightmost lane: stopped, slow or at town speed, with gentle weaving."""
    stopped = rng.random() < 0.1
    speed = 0.0 if stopped else rng.uniform(3.0, 13.0)
    accel = 0.0 if stopped else rng.uniform(-1.0, 1.0)
    return EgoMotion(
        x0=rng.uniform(-5.0, 5.0),
        y0=-lanes_half + lane_width / 2 + rng.normal(0.0, 0.2),
        speed0=speed,
        accel=accel,
        yaw_amp=rng.uniform(0.0, 0.05),
        yaw_freq=rng.uniform(0.1, 0.4),
        yaw_phase=rng.uniform(0, 2 * math.pi),
    )


def shutter_offsets_s(rig: Rig, rng: np.random.Generator) -> np.ndarray:
    """Capture time of each camera after the start of the LiDAR sweep (s), with 0.2 ms trigger jitter."""
    yaws = np.array([c.yaw_deg for c in rig.cameras])
    offsets = ((180.0 - yaws) % 360.0) / 360.0 * LIDAR_SWEEP_S
    return offsets + rng.normal(0.0, 2e-4, len(yaws)).clip(-5e-4, 5e-4)
