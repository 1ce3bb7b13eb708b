"""Rendering of one SynthSurround frame: every camera of a rig at its own capture time."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fsmde_ros.geometry import pixel_rays
from fsmde_ros.rig import Rig
from fsmde_ros.synth import classes
from fsmde_ros.synth.lidar import LidarModel, camera_segment_deg, lidar_points, project_to_sparse_depth
from fsmde_ros.synth.motion import EgoMotion
from fsmde_ros.synth.raycast import SKY, PinholeView, trace
from fsmde_ros.synth.scene import Scene
from fsmde_ros.synth.shading import shade, shadow_map, sky_colour, surfaces


@dataclass
class RenderedFrame:
    """Everything one frame yields, cameras in rig order (units and NaN as in ``conventions``)."""

    images: np.ndarray  # (N, H, W, 3) uint8 RGB
    depth: np.ndarray  # (N, H, W) float32 z-depth, NaN for sky
    semantic: np.ndarray  # (N, H, W) uint8 class ids of ``classes.CLASS_NAMES``
    reflective: np.ndarray  # (N, H, W) bool mirror-like pixels
    sparse_depth: np.ndarray  # (N, H, W) float32 LiDAR z-depth, NaN where no return
    capture_times_s: np.ndarray  # (N,) seconds since the start of the sequence
    ego_pose: np.ndarray  # (4, 4) base_link -> world at the frame's reference time (sweep start)
    camera_ego_poses: np.ndarray  # (N, 4, 4) base_link -> world at each camera's capture time


class FrameRenderer:
    """Renders frames of one scene for one rig; camera rays are computed once.

    ``reflections`` False renders mirror-like surfaces without what they mirror (their diffuse layer;
    see ``shading.shade``); everything else, the noise included, is identical.
    """

    def __init__(self, rig: Rig, lidar: LidarModel | None = None, reflections: bool = True) -> None:
        self.rig = rig
        self.lidar = lidar or LidarModel()
        self.reflections = reflections
        self._rays = [pixel_rays(c.K, c.height, c.width) for c in rig.cameras]
        h, w = rig.cameras[0].height, rig.cameras[0].width
        if any((c.height, c.width) != (h, w) for c in rig.cameras):
            raise ValueError("FrameRenderer: all cameras of the rig must have the same image size")
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        r2 = ((xx - w / 2) / (w / 2)) ** 2 + ((yy - h / 2) / (h / 2)) ** 2
        self._vignette = (1.0 - 0.18 * r2)[..., None].astype(np.float32)

    def render(
        self, scene: Scene, motion: EgoMotion, t_ref: float, offsets_s: np.ndarray, rng: np.random.Generator
    ) -> RenderedFrame:
        """The frame whose LiDAR sweep starts at ``t_ref``; camera i is captured at t_ref + offsets_s[i]."""
        n = len(self.rig)
        h, w = self.rig.cameras[0].height, self.rig.cameras[0].width
        images = np.empty((n, h, w, 3), np.uint8)
        depth = np.empty((n, h, w), np.float32)
        semantic = np.empty((n, h, w), np.uint8)
        reflective = np.empty((n, h, w), bool)
        sparse = np.empty((n, h, w), np.float32)
        ego_ref = motion.pose(t_ref)
        shadows = shadow_map(scene, scene.primitives_at(t_ref), float(ego_ref[0, 3]))
        poses = np.empty((n, 4, 4))
        gains = rng.uniform(0.92, 1.08, n) * (0.95 + 0.25 * scene.lighting.ambient)
        for i, camera in enumerate(self.rig.cameras):
            t_cam = t_ref + float(offsets_s[i])
            groups = scene.primitives_at(t_cam)
            poses[i] = motion.pose(t_cam)
            cam_pose = poses[i] @ camera.cam2ego
            R = cam_pose[:3, :3]
            origin = cam_pose[:3, 3]
            dirs = (self._rays[i] @ R.T.astype(np.float32)).astype(np.float32)
            hits = trace(PinholeView(origin, dirs, R, camera.K), groups)
            flat_group = hits.group.reshape(-1)
            hit_pixels = np.flatnonzero(flat_group != SKY)
            surf = surfaces(scene, groups, hits, origin, dirs, hit_pixels)
            colour = np.empty((h * w, 3), np.float32)
            colour[hit_pixels] = shade(scene, surf, dirs.reshape(-1, 3)[hit_pixels], shadows,
                                       self.reflections)
            sky_pixels = np.flatnonzero(flat_group == SKY)
            colour[sky_pixels] = sky_colour(scene, dirs.reshape(-1, 3)[sky_pixels])
            cls = np.full(h * w, classes.SKY, np.uint8)
            cls[hit_pixels] = surf.cls
            mirror = np.zeros(h * w, bool)
            mirror[hit_pixels] = surf.mirror > 0
            depth[i] = np.where(hits.group == SKY, np.nan, hits.t)
            semantic[i] = cls.reshape(h, w)
            reflective[i] = mirror.reshape(h, w)
            images[i] = self._develop(colour.reshape(h, w, 3), gains[i], rng)
            points = lidar_points(self.lidar, groups, poses[i], camera_segment_deg(camera), rng)
            sparse[i] = project_to_sparse_depth(points, camera, cam_pose)
        return RenderedFrame(
            images, depth, semantic, reflective, sparse, t_ref + np.asarray(offsets_s, float), ego_ref, poses
        )

    def _develop(self, linear: np.ndarray, gain: float, rng: np.random.Generator) -> np.ndarray:
        """Camera response: exposure gain, vignetting, slight optical blur, tone curve, sensor noise."""
        img = linear * np.float32(gain) * self._vignette
        blurred = img.copy()
        blurred[1:-1] = 0.25 * img[:-2] + 0.5 * img[1:-1] + 0.25 * img[2:]
        img = blurred.copy()
        img[:, 1:-1] = 0.25 * blurred[:, :-2] + 0.5 * blurred[:, 1:-1] + 0.25 * blurred[:, 2:]
        img = img / (1.0 + 0.35 * img)  # soft shoulder: highlights saturate gently
        img = np.power(np.clip(img * 1.3, 0.0, 1.0), 1 / 1.15)
        img += rng.normal(0.0, 0.008, img.shape[:2])[..., None].astype(np.float32)
        img += rng.normal(0.0, 0.006, img.shape).astype(np.float32)
        return np.clip(img * 255.0 + 0.5, 0, 255).astype(np.uint8)
