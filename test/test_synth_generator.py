"""SynthSurround frames: determinism, ground truth consistent with the rig geometry, timing, motion."""

import itertools

import cv2
import numpy as np
import pytest

from fsmde_ros.evaluation import CrossViewConsistency
from fsmde_ros.geometry import backproject, transform_points
from fsmde_ros.rig import default_rig_path, load_rig
from fsmde_ros.synth import classes
from fsmde_ros.synth.cli import sample_of
from fsmde_ros.synth.contact_sheet import TILE, colourise_depth, contact_sheet
from fsmde_ros.synth.dataset import SPLIT_SEED_BASE, SPLIT_SEED_SPAN, Sequence, SynthError, sequence_seed
from fsmde_ros.synth.motion import FRAME_RATE_HZ, LIDAR_SWEEP_S

W, H = 96, 54


@pytest.fixture(scope="module")
def rig():
    return load_rig(default_rig_path()).resized(W, H)


@pytest.fixture(scope="module")
def sequence(rig):
    return Sequence(sequence_seed("val", 3), rig)


@pytest.fixture(scope="module")
def frames(sequence):
    return [sequence.frame(k) for k in range(2)]


def test_frames_are_deterministic_by_seed(rig, sequence, frames):
    again = Sequence(sequence.seed, rig).frame(1)
    for name in ("images", "depth", "sparse_depth", "semantic", "reflective"):
        np.testing.assert_array_equal(getattr(again.frame, name), getattr(frames[1].frame, name))
    other = Sequence(sequence.seed + 1, rig).frame(1)
    assert not np.array_equal(other.frame.images, frames[1].frame.images)


def test_frame_arrays_follow_the_conventions(frames):
    f = frames[0].frame
    assert f.images.shape == (6, H, W, 3) and f.images.dtype == np.uint8
    assert f.depth.dtype == np.float32 and f.sparse_depth.dtype == np.float32
    sky = f.semantic == classes.SKY
    np.testing.assert_array_equal(np.isnan(f.depth), sky)
    assert np.all(f.depth[~sky] > 0)
    present = set(np.unique(f.semantic).tolist())
    assert {classes.ROAD, classes.BUILDING, classes.SKY} <= present
    assert f.images.std() > 20  # textured, not flat
    # Sparse LiDAR depth: NaN where no return, a few percent of the pixels, agreeing with the dense depth
    # except where the LiDAR (1 m away from the cameras) sees past an object's edge.
    lidar = np.isfinite(f.sparse_depth)
    assert 0.005 < lidar.mean() < 0.6
    rel = np.abs(f.sparse_depth[lidar] - f.depth[lidar]) / f.depth[lidar]
    assert np.median(rel) < 0.01 and np.mean(rel < 0.05) > 0.85


def test_road_pixels_backproject_onto_the_ground_plane(rig, frames):
    f = frames[0].frame
    checked = 0
    for i, camera in enumerate(rig.cameras):
        road = f.semantic[i] == classes.ROAD
        points = backproject(f.depth[i], camera.K)[road].astype(np.float64)
        world = transform_points(f.camera_ego_poses[i] @ camera.cam2ego, points)
        assert np.all(np.abs(world[:, 2]) <= 1e-3 * np.maximum(1.0, f.depth[i][road]))
        checked += int(road.sum())
    assert checked > 500


def test_shutter_stamps_follow_the_lidar_sweep(rig, sequence, frames):
    stamps = frames[0].stamps_ns
    spread = stamps.max() - stamps.min()
    assert 0.03e9 < spread < LIDAR_SWEEP_S * 1e9
    # Clockwise sweep from the rear: back, back-left, front-left, front, front-right, back-right.
    order = [rig.names[i] for i in np.argsort(stamps)]
    assert order == [
        "CAM_BACK",
        "CAM_BACK_LEFT",
        "CAM_FRONT_LEFT",
        "CAM_FRONT",
        "CAM_FRONT_RIGHT",
        "CAM_BACK_RIGHT",
    ]
    step = frames[1].stamps_ns - frames[0].stamps_ns
    np.testing.assert_allclose(step, 1e9 / FRAME_RATE_HZ, atol=1)


def test_ego_moves_as_its_motion_says(sequence, frames):
    a, b = frames[0].frame, frames[1].frame
    moved = np.linalg.norm(b.ego_pose[:3, 3] - a.ego_pose[:3, 3])
    expected = float(sequence.motion.speed(0.5 / FRAME_RATE_HZ)) / FRAME_RATE_HZ
    assert moved == pytest.approx(expected, rel=0.02, abs=1e-3)
    # Each camera has its own pose at its own capture time.
    i_first, i_last = np.argmin(frames[0].stamps_ns), np.argmax(frames[0].stamps_ns)
    gap = np.linalg.norm(a.camera_ego_poses[i_last][:3, 3] - a.camera_ego_poses[i_first][:3, 3])
    dt = (frames[0].stamps_ns[i_last] - frames[0].stamps_ns[i_first]) / 1e9
    assert gap == pytest.approx(float(sequence.motion.speed(0.0)) * dt, rel=0.05, abs=1e-3)


def test_reflective_surfaces_exist_and_are_not_lambertian(rig):
    # A wet-road or glass scene: mirror pixels whose colour changes with the viewpoint.
    seq = next(s for s in (Sequence(seed, rig) for seed in range(40)) if s.scene.street.wetness > 0.5)
    f = seq.frame(0).frame
    assert f.reflective.mean() > 0.01
    assert set(np.unique(f.semantic[f.reflective]).tolist()) <= {
        classes.ROAD,
        classes.BUILDING,
        classes.VEHICLE,
    }


def test_rendering_without_reflections_changes_only_the_mirror_pixels(rig):
    seq = next(s for s in (Sequence(seed, rig) for seed in range(40)) if s.scene.street.wetness > 0.5)
    full = seq.frame(0).frame
    diffuse = Sequence(seq.seed, rig, reflections=False).frame(0).frame
    for name in ("depth", "semantic", "reflective", "sparse_depth", "camera_ego_poses"):
        np.testing.assert_array_equal(getattr(diffuse, name), getattr(full, name))
    changed = (diffuse.images.astype(int) - full.images.astype(int)).any(axis=-1)
    # the camera's slight blur spreads a mirror pixel's change to its 3x3 neighbourhood, no further
    near = np.stack([cv2.dilate(m.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0 for m in full.reflective])
    assert changed[full.reflective].mean() > 0.5 and not changed[~near].any()


def test_splits_have_disjoint_seed_ranges():
    ranges = sorted((base, base + SPLIT_SEED_SPAN) for base in SPLIT_SEED_BASE.values())
    assert all(a[1] <= b[0] for a, b in itertools.pairwise(ranges))
    assert sequence_seed("test", 7) == SPLIT_SEED_BASE["test"] + 7
    with pytest.raises(SynthError, match="unknown split 'train'"):
        sequence_seed("train", 0)
    with pytest.raises(SynthError, match="outside"):
        sequence_seed("val", SPLIT_SEED_SPAN)


def test_contact_sheet_shows_every_camera(tmp_path, sequence, frames):
    sample = sample_of(frames[0], sequence, "val_00003")
    out = contact_sheet([sample, sample], tmp_path / "sheet.png")
    sheet = cv2.imread(str(out))
    assert sheet.shape == (2 * 4 * TILE[0] + 4, 6 * TILE[1], 3)
    depth_rgb = colourise_depth(np.array([[1.0, 80.0, np.nan]], np.float32))
    assert tuple(depth_rgb[0, 2]) == (0, 0, 0) and not np.array_equal(depth_rgb[0, 0], depth_rgb[0, 1])


def test_ground_truth_depth_is_consistent_across_overlapping_cameras(rig, frames):
    checker = CrossViewConsistency(rig.intrinsics(), rig.extrinsics(), rig.adjacent, H, W)
    result = checker(frames[0].frame.depth)
    assert result.count > 500 and len(result.pairs) == 12
    assert result.median_abs_rel < 0.02
