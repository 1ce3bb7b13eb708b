"""Training clips for self-supervision: three consecutive surround sets of one sequence, at training size.

Frame t of a sequence becomes the target of a clip when frames t-1 and t+1 exist. Every image gets
the cam2world pose at its own capture stamp: ``camera_ego_poses[i] @ cam2ego[i]`` (base_link -> world
at camera i's stamp). Without per-camera ego poses, a set whose cameras share one stamp uses its
``ego_pose``; anything else is refused, since ignoring shutter offsets of tens of milliseconds at
town speed misplaces the cameras by decimetres.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from functools import partial
from pathlib import Path

import numpy as np
import torch

from fsmde_ros.datasets.errors import DatasetError, read_json
from fsmde_ros.datasets.sample import SurroundSample
from fsmde_ros.datasets.synthsurround import SynthSurroundDataset
from fsmde_ros.distill.data import resize_sample
from fsmde_ros.rig import Camera, ring_neighbours
from fsmde_ros.selfsup.views import SurroundClip


class ClipError(ValueError):
    """Samples cannot form training clips; the message names the sequence and frame."""


def camera_to_world(sample: SurroundSample, where: str) -> np.ndarray:
    """cam2world (N, 4, 4) of every image of a set at its own capture stamp."""
    n = sample.num_cameras
    if sample.camera_ego_poses is not None:
        poses = np.asarray(sample.camera_ego_poses, dtype=np.float64)
        if poses.shape != (n, 4, 4):
            raise ClipError(f"{where}: camera_ego_poses must be ({n}, 4, 4), got {poses.shape}")
    elif sample.ego_pose is not None and np.all(np.asarray(sample.stamps_ns) == sample.stamps_ns[0]):
        poses = np.repeat(np.asarray(sample.ego_pose, dtype=np.float64)[None], n, axis=0)
    else:
        raise ClipError(f"{where}: cameras have different stamps but the sample has no camera_ego_poses "
                        "(per-camera ego poses are needed for view synthesis)")
    return poses @ np.asarray(sample.cam2ego, dtype=np.float64)


def _check(sample: SurroundSample, where: str) -> None:
    n = sample.num_cameras
    if sample.images.dtype != np.uint8 or sample.images.ndim != 4 or sample.images.shape[-1] != 3:
        raise ClipError(f"{where}: images must be uint8 (N, H, W, 3), got {sample.images.dtype} "
                        f"{sample.images.shape}")
    if sample.K.shape != (n, 3, 3) or sample.cam2ego.shape != (n, 4, 4) or np.shape(sample.stamps_ns) != (n,):
        raise ClipError(f"{where}: K, cam2ego or stamps_ns do not match {n} cameras")


def make_clip(target: SurroundSample, previous: SurroundSample, following: SurroundSample) -> SurroundClip:
    """A clip of three consecutive sets of one sequence, all of the same image size."""
    sets = (target, previous, following)
    where = f"sequence {target.sequence!r} frame {target.frame_index}"
    for s in sets:
        _check(s, where)
        if s.camera_names != target.camera_names or s.image_size != target.image_size:
            raise ClipError(f"{where}: camera names or image sizes differ between frames")
    if not previous.stamps_ns.min() < target.stamps_ns.min() < following.stamps_ns.min():
        raise ClipError(f"{where}: frames t-1, t, t+1 do not have increasing stamps")
    height, width = target.image_size
    images = np.stack([s.images for s in sets])
    adjacent = ring_neighbours([Camera(name, target.K[i], target.cam2ego[i], width, height)
                                for i, name in enumerate(target.camera_names)])
    return SurroundClip(
        images=torch.from_numpy(images).permute(0, 1, 4, 2, 3).float() / 255.0,
        K=torch.from_numpy(np.asarray(target.K)).float(),
        cam2ego=torch.from_numpy(np.asarray(target.cam2ego)).float(),
        cam2world=np.stack([camera_to_world(s, where) for s in sets]),
        adjacent=adjacent,
        depth=None if target.depth is None else torch.from_numpy(target.depth.astype(np.float32))[:, None],
        reflective=None if target.reflective is None else torch.from_numpy(target.reflective)[:, None],
        name=f"{target.sequence}/{target.frame_index}",
    )


class Clips(Sequence[SurroundClip]):
    """Clips (t-1, t, t+1) of sequences of frames, built on demand from resized frames.

    ``frames`` maps a sequence name to its frames: frame index -> a function reading that frame.
    Resized frames are cached (a few hundred kB each at training size), so each file is read once.
    """

    def __init__(self, frames: dict[str, dict[int, Callable[[], SurroundSample]]], height: int, width: int,
                 max_clips: int | None = None) -> None:
        self.height, self.width = height, width
        self._frames = frames
        self._index = [(seq, t) for seq in sorted(frames) for t in sorted(frames[seq])
                       if t - 1 in frames[seq] and t + 1 in frames[seq]]
        if max_clips is not None:
            self._index = _spread(self._index, max_clips)
        self._cache: dict[tuple[str, int], SurroundSample] = {}

    def __len__(self) -> int:
        return len(self._index)

    def frame(self, sequence: str, index: int) -> SurroundSample:
        key = (sequence, index)
        if key not in self._cache:
            self._cache[key] = resize_sample(self._frames[sequence][index](), self.height, self.width)
        return self._cache[key]

    def __getitem__(self, i: int) -> SurroundClip:  # type: ignore[override]
        seq, t = self._index[i]
        return make_clip(self.frame(seq, t), self.frame(seq, t - 1), self.frame(seq, t + 1))


def _spread(items: list, count: int) -> list:
    """``count`` items spread evenly over ``items`` (all of them when there are fewer)."""
    if count >= len(items):
        return items
    picks = np.linspace(0, len(items) - 1, count).round().astype(int)
    return [items[i] for i in picks]


def clips_from_samples(samples: Iterable[SurroundSample], height: int, width: int,
                       max_clips: int | None = None) -> Clips:
    """Clips of consecutive frames of in-memory ``samples``, grouped by ``sequence``."""
    frames: dict[str, dict[int, Callable[[], SurroundSample]]] = defaultdict(dict)
    for sample in samples:
        frames[sample.sequence][sample.frame_index] = (lambda s=sample: s)
    return Clips(dict(frames), height, width, max_clips)


def load_clips(root: str | Path, split: str, height: int, width: int, max_clips: int | None = None) -> Clips:
    """Clips of a SynthSurround split, read lazily through ``fsmde_ros.datasets.SynthSurroundDataset``."""
    try:
        dataset = SynthSurroundDataset(root, split)
    except DatasetError as exc:
        raise ClipError(str(exc)) from exc
    frames: dict[str, dict[int, Callable[[], SurroundSample]]] = defaultdict(dict)
    for i in range(len(dataset)):
        sequence, index = dataset.frame_id(i)
        frames[sequence][index] = partial(_read_frame, dataset, i)
    clips = Clips(frames, height, width, max_clips)
    if len(clips) == 0:
        raise ClipError(f"{Path(root) / split}: no sequence has three consecutive frames")
    return clips


def load_diffuse_clips(root: str | Path, split: str, clips: Clips, max_clips: int | None = None) -> Clips:
    """The diffuse layer of ``clips``, clip for clip: the same split of SynthSurround rendered without
    reflections (``fsmde-synth generate --no-reflections``) into ``root``."""
    try:
        manifest = read_json(Path(root) / "manifest.json", "SynthSurround manifest")
    except DatasetError as exc:
        raise ClipError(str(exc)) from exc
    if manifest.get("reflections", True) is not False:
        raise ClipError(f"{root}: not a rendering without reflections (its manifest.json does not say "
                        "reflections: false; generate it with fsmde-synth generate --no-reflections)")
    diffuse = load_clips(root, split, clips.height, clips.width, max_clips)
    if diffuse._index != clips._index:
        raise ClipError(f"{Path(root) / split}: its sequences and frames differ from the RGB clips'")
    return diffuse


def _read_frame(dataset: SynthSurroundDataset, i: int) -> SurroundSample:
    try:
        return dataset[i]
    except DatasetError as exc:
        raise ClipError(str(exc)) from exc
