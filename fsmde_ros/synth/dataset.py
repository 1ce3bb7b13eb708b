"""SynthSurround sequences, splits and the on-disk dataset format (see docs/synthsurround.md).

Layout of a dataset root::

    manifest.json                 generator version, rig (K, cam2ego at the rendered size), resolution,
                                  frame rate, classes, LiDAR model, splits (seed ranges, planned sizes)
    rig.yaml                      the rendered rig, loadable with ``fsmde_ros.rig.load_rig``
    <split>/<split>_<index:05d>/  one sequence (seed = split base + index)
        sequence.json             seed, ego motion, lighting, shutter offsets, frame count
        frame_<k:04d>.npz         one frame (arrays below), written atomically
    READY.json                    written when generation has finished: splits and frame counts

Arrays of a frame file (N cameras in rig order, H x W pixels): ``images`` (N,H,W,3) uint8 RGB,
``depth`` (N,H,W) float32 z-depth in metres, NaN for sky; ``sparse_depth`` (N,H,W) float32 LiDAR
z-depth, NaN where no return; ``semantic`` (N,H,W) uint8 class ids; ``reflective`` (N,H,W) bool;
``stamps_ns`` (N,) int64 capture times; ``ego_pose`` (4,4) base_link -> world at the frame's
reference time; ``camera_ego_poses`` (N,4,4) base_link -> world at each capture time; ``K`` (N,3,3)
and ``cam2ego`` (N,4,4).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import yaml

from fsmde_ros.conventions import NS_PER_S
from fsmde_ros.rig import Rig
from fsmde_ros.synth.classes import CLASS_NAMES
from fsmde_ros.synth.lidar import LidarModel
from fsmde_ros.synth.motion import FRAME_RATE_HZ, EgoMotion, sample_motion, shutter_offsets_s
from fsmde_ros.synth.render import FrameRenderer, RenderedFrame
from fsmde_ros.synth.scene import Scene, generate_scene

GENERATOR_VERSION = "1.0.0"
SPLIT_SEED_BASE: dict[str, int] = {
    "teacher-train": 0,
    "student-train": 100_000,
    "val": 200_000,
    "test": 300_000,
    "intrinsic-train": 400_000,
}
"""Sequence seeds of a split are base + index, index < SPLIT_SEED_SPAN: the splits never share a scene."""
SPLIT_SEED_SPAN = 100_000
EPOCH_S = 1_700_000_000
"""Stamps of the sequence with seed s start at EPOCH_S + 1000 s (so sequences never overlap in time)."""


class SynthError(ValueError):
    """Bad generator input or a malformed dataset; the message names the file or option."""


def sequence_seed(split: str, index: int) -> int:
    if split not in SPLIT_SEED_BASE:
        raise SynthError(f"unknown split {split!r}; splits are {list(SPLIT_SEED_BASE)}")
    if not 0 <= index < SPLIT_SEED_SPAN:
        raise SynthError(f"split {split}: sequence index {index} outside [0, {SPLIT_SEED_SPAN})")
    return SPLIT_SEED_BASE[split] + index


def sequence_name(split: str, index: int) -> str:
    return f"{split}_{index:05d}"


@dataclass
class SequenceFrame:
    """One rendered frame of a sequence with its absolute stamps."""

    index: int
    frame: RenderedFrame
    stamps_ns: np.ndarray  # (N,) int64


class Sequence:
    """A deterministic sequence of frames of one scene, driven by the seed alone (``reflections``: see
    ``FrameRenderer``)."""

    def __init__(
        self, seed: int, rig: Rig, lidar: LidarModel | None = None, frame_rate_hz: float = FRAME_RATE_HZ,
        reflections: bool = True,
    ) -> None:
        if frame_rate_hz <= 0:
            raise SynthError(f"frame rate must be positive, got {frame_rate_hz}")
        self.seed = seed
        self.rig = rig
        self.frame_rate_hz = frame_rate_hz
        self.scene: Scene = generate_scene(seed)
        rng = np.random.default_rng([seed, 1])
        self.motion: EgoMotion = sample_motion(
            rng, self.scene.street.lanes_half, self.scene.street.lane_width
        )
        self.offsets_s = shutter_offsets_s(rig, rng)
        self.epoch_ns = (EPOCH_S + 1000 * seed) * NS_PER_S
        self.renderer = FrameRenderer(rig, lidar, reflections)

    def frame(self, index: int) -> SequenceFrame:
        """Frame ``index`` (deterministic: the same seed and index always give the same frame)."""
        t_ref = index / self.frame_rate_hz
        rng = np.random.default_rng([self.seed, 2, index])
        frame = self.renderer.render(self.scene, self.motion, t_ref, self.offsets_s, rng)
        stamps = self.epoch_ns + np.rint(frame.capture_times_s * NS_PER_S).astype(np.int64)
        return SequenceFrame(index, frame, stamps)

    def frames(self, count: int, start: int = 0) -> Iterator[SequenceFrame]:
        for k in range(start, start + count):
            yield self.frame(k)

    def description(self, frames: int) -> dict:
        light = self.scene.lighting
        return {
            "seed": self.seed,
            "frames": frames,
            "frame_rate_hz": self.frame_rate_hz,
            "generator_version": GENERATOR_VERSION,
            "epoch_ns": int(self.epoch_ns),
            "shutter_offsets_s": [float(x) for x in self.offsets_s],
            "ego_motion": asdict(self.motion),
            "lighting": {
                "sun_dir": light.sun_dir.tolist(),
                "sun_strength": light.sun_strength,
                "cloudiness": light.cloudiness,
            },
            "street": {
                "lanes": self.scene.street.lanes,
                "lane_width": self.scene.street.lane_width,
                "road_half": self.scene.street.road_half,
                "wetness": self.scene.street.wetness,
            },
            "primitives": self.scene.num_primitives,
        }


def rig_dict(rig: Rig) -> dict:
    """The rig as the YAML mapping of ``fsmde_ros.rig`` (at the rendered image size)."""
    cam = rig.cameras[0]
    return {
        "frame_id": rig.frame_id,
        "image_width": cam.width,
        "image_height": cam.height,
        "cameras": [{"name": c.name, "K": c.K.tolist(), "cam2ego": c.cam2ego.tolist()} for c in rig.cameras],
    }


def write_manifest(
    root: Path,
    rig: Rig,
    plan: dict[str, tuple[int, int]],
    lidar: LidarModel,
    frame_rate_hz: float,
    source_rig: str,
    reflections: bool = True,
) -> None:
    """manifest.json and rig.yaml; ``plan`` maps split -> (sequences, frames per sequence)."""
    root.mkdir(parents=True, exist_ok=True)
    cam = rig.cameras[0]
    manifest = {
        "dataset": "SynthSurround",
        "generator_version": GENERATOR_VERSION,
        "resolution": {"height": cam.height, "width": cam.width},
        "frame_rate_hz": frame_rate_hz,
        "reflections": reflections,  # false: mirror-like surfaces without what they mirror (diagnostics)
        "source_rig": source_rig,
        "rig": rig_dict(rig),
        "classes": list(CLASS_NAMES),
        "lidar": asdict(lidar),
        "splits": {
            split: {
                "seed_range": [SPLIT_SEED_BASE[split], SPLIT_SEED_BASE[split] + SPLIT_SEED_SPAN],
                "sequences": n,
                "frames_per_sequence": f,
            }
            for split, (n, f) in plan.items()
        },
    }
    _atomic_write_text(root / "manifest.json", json.dumps(manifest, indent=2))
    _atomic_write_text(root / "rig.yaml", yaml.safe_dump(rig_dict(rig), sort_keys=False))


def _atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def frame_arrays(seq_frame: SequenceFrame, rig: Rig) -> dict[str, np.ndarray]:
    f = seq_frame.frame
    return {
        "images": f.images,
        "depth": f.depth,
        "sparse_depth": f.sparse_depth,
        "semantic": f.semantic,
        "reflective": f.reflective,
        "stamps_ns": seq_frame.stamps_ns,
        "ego_pose": f.ego_pose,
        "camera_ego_poses": f.camera_ego_poses,
        "K": rig.intrinsics(),
        "cam2ego": rig.extrinsics(),
    }


def write_frame(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Write one frame file atomically (readers never see a partial file)."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as fh:
        np.savez_compressed(fh, **arrays)
    os.replace(tmp, path)


def generation_order(plan: dict[str, tuple[int, int]]) -> list[tuple[str, int]]:
    """(split, sequence index) in an order that grows every split in proportion to its planned size."""
    jobs = []
    for split, (count, _) in plan.items():
        jobs += [((i + 0.5) / count, split, i) for i in range(count)]
    return [(split, i) for _, split, i in sorted(jobs)]


def generate_dataset(
    root: str | Path,
    rig: Rig,
    plan: dict[str, tuple[int, int]],
    source_rig: str,
    lidar: LidarModel | None = None,
    frame_rate_hz: float = FRAME_RATE_HZ,
    log: callable = print,
    reflections: bool = True,
) -> dict[str, int]:
    """Render all planned sequences into ``root``, resuming (existing frames are kept); frames per split.

    Writes READY.json at the end with the frame counts per split. ``reflections`` False renders the
    diffuse layer of mirror-like surfaces only (``FrameRenderer``), recorded in the manifest.
    """
    root = Path(root)
    lidar = lidar or LidarModel()
    for split, (count, frames) in plan.items():
        sequence_seed(split, max(count - 1, 0))
        if count < 0 or frames <= 0:
            raise SynthError(
                f"split {split}: need sequences >= 0 and frames per sequence > 0, got {count}, {frames}"
            )
    write_manifest(root, rig, plan, lidar, frame_rate_hz, source_rig, reflections)
    (root / "READY.json").unlink(missing_ok=True)
    done = dict.fromkeys(plan, 0)
    for split, index in generation_order(plan):
        frames = plan[split][1]
        seq_dir = root / split / sequence_name(split, index)
        seq_dir.mkdir(parents=True, exist_ok=True)
        todo = [k for k in range(frames) if not (seq_dir / f"frame_{k:04d}.npz").exists()]
        if todo:
            sequence = Sequence(sequence_seed(split, index), rig, lidar, frame_rate_hz, reflections)
            _atomic_write_text(seq_dir / "sequence.json", json.dumps(sequence.description(frames), indent=2))
            for k in todo:
                write_frame(seq_dir / f"frame_{k:04d}.npz", frame_arrays(sequence.frame(k), rig))
        done[split] += frames
        log(f"{split} {sequence_name(split, index)}: {frames} frames ({done[split]} in split)")
    ready = {
        "root": str(root.resolve()),
        "generator_version": GENERATOR_VERSION,
        "splits": {
            split: {"sequences": plan[split][0], "frames_per_sequence": plan[split][1], "frames": done[split]}
            for split in plan
        },
    }
    _atomic_write_text(root / "READY.json", json.dumps(ready, indent=2))
    return done
