"""Self-supervision on an exactly rendered toy sequence: clips, reprojection with the true depth, the
reflection mask with the true diffuse image, and short end-to-end runs of the three training stages
and the evaluation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fsmde_ros.datasets.sample import SurroundSample
from fsmde_ros.geometry import pixel_rays
from fsmde_ros.rig import default_rig_path, load_rig
from fsmde_ros.selfsup.data import ClipError, clips_from_samples, make_clip
from fsmde_ros.selfsup.objective import reproject
from fsmde_ros.selfsup.photometric import masked_mean
from fsmde_ros.selfsup.reflection_mask import reflection_mask
from fsmde_ros.selfsup.views import TARGET, source_views

H, W = 64, 96
FRAME_NS = 83_333_333
CAMERA_OFFSET_NS = 4_000_000
SPEED = 1.0  # metres per frame along base_link x
BOX = {"x": (-40.0, 40.0), "y": (-7.0, 7.0), "z": (0.0, 8.0)}
MIRROR = {"x": (3.0, 6.0), "z": (1.0, 3.0)}  # a reflective patch on the wall y = +7


def _diffuse(points: np.ndarray, axis: int) -> np.ndarray:
    """View-invariant texture of the box walls: smooth sinusoids of the world point, per wall axis."""
    a, b = [p for p in range(3) if p != axis]
    u, v = points[..., a], points[..., b]
    base = np.array([0.35, 0.45, 0.55]) + 0.1 * axis
    pattern = 0.2 * np.sin(1.3 * u + axis)[..., None] * np.cos(0.9 * v)[..., None]
    return np.clip(base + pattern * np.array([1.0, -0.7, 0.5]), 0, 1)


def _environment(direction: np.ndarray) -> np.ndarray:
    """What the mirror reflects: a bright pattern that depends on the reflected direction only."""
    az = np.arctan2(direction[..., 1], direction[..., 0])
    return np.clip(0.5 + 0.45 * np.stack([np.sin(9 * az), np.cos(7 * az), np.sin(5 * az + 1)], -1), 0, 1)


def render(rig, ego_x: float) -> tuple[np.ndarray, ...]:
    """Images, diffuse images, z-depth and reflective mask (N, H, W[, 3]) with the vehicle at x = ego_x."""
    images, diffuse, depths, masks = [], [], [], []
    for cam in rig.cameras:
        rays = pixel_rays(cam.K, H, W).astype(np.float64)  # z = 1: the ray parameter is the z-depth
        d = rays @ cam.cam2ego[:3, :3].T
        o = cam.cam2ego[:3, 3] + np.array([ego_x, 0.0, 0.0])
        t = np.full((H, W), np.inf)
        axis_hit = np.zeros((H, W), dtype=int)
        for axis, key in enumerate("xyz"):
            with np.errstate(divide="ignore", invalid="ignore"):
                for bound in BOX[key]:
                    tb = (bound - o[axis]) / d[..., axis]
                    better = (tb > 0) & (tb < t)
                    t = np.where(better, tb, t)
                    axis_hit = np.where(better, axis, axis_hit)
        points = o + t[..., None] * d
        colour = np.zeros((H, W, 3))
        for axis in range(3):
            colour = np.where((axis_hit == axis)[..., None], _diffuse(points, axis), colour)
        mirror = ((axis_hit == 1) & (points[..., 1] > 0) & (points[..., 0] > MIRROR["x"][0])
                  & (points[..., 0] < MIRROR["x"][1]) & (points[..., 2] > MIRROR["z"][0])
                  & (points[..., 2] < MIRROR["z"][1]))
        reflected = d * np.array([1.0, -1.0, 1.0])
        shown = np.where(mirror[..., None], 0.3 * colour + 0.7 * _environment(reflected), colour)
        images.append((shown * 255).round().astype(np.uint8))
        diffuse.append(((colour * 255).round() / 255).astype(np.float32))
        depths.append(t.astype(np.float32))
        masks.append(mirror)
    return np.stack(images), np.stack(diffuse), np.stack(depths), np.stack(masks)


def toy_sequence(frames: int = 4, sequence: str = "toy") -> tuple[list[SurroundSample], list[np.ndarray]]:
    """Samples of a vehicle driving along x; each camera renders at the pose of its own stamp."""
    rig = load_rig(default_rig_path()).resized(W, H)
    n = len(rig)
    samples, diffuse = [], []
    for f in range(frames):
        stamps = f * FRAME_NS + CAMERA_OFFSET_NS * np.arange(n, dtype=np.int64)
        per_camera = [render(rig, SPEED * float(s) / FRAME_NS) for s in stamps]
        images = np.stack([per_camera[c][0][c] for c in range(n)])
        ego = np.eye(4)
        ego[0, 3] = SPEED * f
        samples.append(SurroundSample(
            images=images, K=rig.intrinsics(), cam2ego=rig.extrinsics(),
            sparse_depth=np.full((n, H, W), np.nan, np.float32), camera_names=tuple(rig.names),
            stamps_ns=stamps, ego_pose=ego, depth=np.stack([per_camera[c][2][c] for c in range(n)]),
            reflective=np.stack([per_camera[c][3][c] for c in range(n)]), sequence=sequence, frame_index=f))
        diffuse.append(np.stack([per_camera[c][1][c] for c in range(n)]))
    return samples, diffuse


@pytest.fixture(scope="module")
def toy():
    return toy_sequence()


def test_clips_from_samples_group_consecutive_frames(toy):
    samples, _ = toy
    clips = clips_from_samples(list(reversed(samples)), H, W)
    assert [c.name for c in clips] == ["toy/1", "toy/2"]
    clip = clips[0]
    assert clip.images.shape == (3, 6, 3, H, W) and clip.depth.shape == (6, 1, H, W)
    assert clip.adjacent == load_rig(default_rig_path()).adjacent
    # camera 3's image of frame 1 was taken 12 ms after the set's reference stamp: 0.144 m further on
    expected_x = 1.0 + 0.144 + clip.cam2ego[3, 0, 3].item()
    assert clip.cam2world[TARGET, 3][0, 3] == pytest.approx(expected_x, abs=1e-6)
    assert len(clips_from_samples(samples, H, W, max_clips=1)) == 1


def test_make_clip_rejects_missing_ego_pose(toy):
    samples, _ = toy
    broken = SurroundSample(**{**samples[1].__dict__, "ego_pose": None})
    with pytest.raises(ClipError, match="no ego_pose"):
        make_clip(broken, samples[0], samples[2], H, W)


def test_true_depth_reprojects_the_lambertian_scene_and_the_mask_finds_the_mirror(toy):
    samples, diffuse = toy
    clip = make_clip(samples[1], samples[0], samples[2], H, W)
    views = source_views(clip)
    diffuse_all = torch.from_numpy(np.stack([diffuse[1], diffuse[0], diffuse[2]])).permute(0, 1, 4, 2, 3)
    log_l = torch.log(diffuse_all.reshape(-1, 3, H, W).float().clamp(min=1e-3))
    rep = reproject(clip.depth, clip, views, 0.85, log_l)
    truth = clip.reflective
    lambertian = rep.rgb_keep & ~truth
    # warping with the true depth and poses explains every Lambertian pixel (up to resampling)
    assert float(masked_mean(rep.rgb, lambertian)) < 0.02
    assert float(masked_mean(rep.diffuse, rep.diffuse_keep)) < 0.02
    assert float(masked_mean(rep.rgb, rep.seen & truth)) > 20 * float(masked_mean(rep.rgb, lambertian))
    # the mirror shows a reflection at infinity: it looks the same from the previous frame, so
    # auto-masking drops most of it from the RGB loss, while the reflection mask must still see it
    assert float((rep.rgb_keep & truth).sum() / truth.sum()) < 0.1
    mask = reflection_mask(rep.rgb, rep.diffuse, rep.seen, confidence=0.99)
    recall = float((mask & truth).sum() / (truth & rep.seen).sum())
    precision = float((mask & truth).sum() / mask.sum())
    near_truth = torch.nn.functional.max_pool2d(truth.float(), 5, 1, 2) > 0  # the SSIM window's reach
    assert recall > 0.95 and precision > 0.8
    assert bool(near_truth[mask].all())
