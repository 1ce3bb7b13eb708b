"""Loader of SynthSurround datasets (format: ``fsmde_ros.synth.dataset``, docs/synthsurround.md).

Torch-free: ``SynthSurroundDataset`` is a map-style sequence of ``SurroundSample`` (``len``, indexing,
iteration), so a torch ``Dataset`` wraps it in two lines. It reads frames as they appear while the
generator is still running: ``refresh()`` rescans the directory (frame files are written atomically).
"""

from __future__ import annotations

import re
import zipfile
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from fsmde_ros.datasets.errors import DatasetError, read_json
from fsmde_ros.datasets.sample import SurroundSample
from fsmde_ros.rig import load_rig
from fsmde_ros.synth.dataset import SPLIT_SEED_BASE

SPLITS = tuple(SPLIT_SEED_BASE)
_FRAME = re.compile(r"^frame_(\d{4})\.npz$")

_FIELDS: dict[str, tuple[type, int | None]] = {
    # name: (dtype kind, ndim)
    "images": (np.uint8, 4),
    "depth": (np.float32, 3),
    "sparse_depth": (np.float32, 3),
    "semantic": (np.uint8, 3),
    "reflective": (np.bool_, 3),
    "stamps_ns": (np.int64, 1),
    "ego_pose": (np.float64, 2),
    "camera_ego_poses": (np.float64, 3),
    "K": (np.float64, 3),
    "cam2ego": (np.float64, 3),
}


def load_frame(
    path: str | Path, camera_names: Sequence[str], sequence: str = "", index: int = 0
) -> SurroundSample:
    """One SynthSurround frame file as a ``SurroundSample``; every array is checked for dtype and shape."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {name: data[name] for name in _FIELDS if name in data.files}
            missing = [name for name in _FIELDS if name not in data.files]
    except FileNotFoundError as exc:
        raise DatasetError(f"{path}: frame file not found") from exc
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise DatasetError(f"{path}: not a readable frame file ({exc})") from exc
    if missing:
        raise DatasetError(f"{path}: missing array(s) {missing}")
    n = len(camera_names)
    images = arrays["images"]
    if images.ndim != 4 or images.shape[0] != n or images.shape[3] != 3:
        raise DatasetError(f"{path}: images has shape {images.shape}, expected ({n}, H, W, 3)")
    h, w = images.shape[1:3]
    shapes = {
        "images": (n, h, w, 3),
        "depth": (n, h, w),
        "sparse_depth": (n, h, w),
        "semantic": (n, h, w),
        "reflective": (n, h, w),
        "stamps_ns": (n,),
        "ego_pose": (4, 4),
        "camera_ego_poses": (n, 4, 4),
        "K": (n, 3, 3),
        "cam2ego": (n, 4, 4),
    }
    for name, (dtype, _) in _FIELDS.items():
        a = arrays[name]
        if a.dtype != dtype or a.shape != shapes[name]:
            raise DatasetError(
                f"{path}: array {name} is {a.dtype} {a.shape}, expected {np.dtype(dtype)} {shapes[name]}"
            )
    return SurroundSample(
        images=images,
        K=arrays["K"],
        cam2ego=arrays["cam2ego"],
        sparse_depth=arrays["sparse_depth"],
        camera_names=tuple(camera_names),
        stamps_ns=arrays["stamps_ns"],
        ego_pose=arrays["ego_pose"],
        depth=arrays["depth"],
        semantic=arrays["semantic"],
        reflective=arrays["reflective"],
        sequence=sequence,
        frame_index=index,
        camera_ego_poses=arrays["camera_ego_poses"],
    )


class SynthSurroundDataset:
    """The frames of one split of a SynthSurround dataset root, in (sequence, frame) order."""

    def __init__(self, root: str | Path, split: str) -> None:
        self.root = Path(root)
        if split not in SPLITS:
            raise DatasetError(f"{self.root}: unknown split {split!r}; splits are {list(SPLITS)}")
        self.split = split
        manifest_path = self.root / "manifest.json"
        self.manifest = read_json(manifest_path, "manifest")
        if not isinstance(self.manifest, dict) or "splits" not in self.manifest or "rig" not in self.manifest:
            raise DatasetError(f"{manifest_path}: missing key 'splits' or 'rig'")
        self.rig = load_rig(self.root / "rig.yaml")
        self.camera_names = tuple(self.rig.names)
        self._frames: list[tuple[str, int, Path]] = []
        self.refresh()

    @property
    def ready(self) -> bool:
        """True once the generator has finished the whole dataset (READY.json exists)."""
        return (self.root / "READY.json").is_file()

    @property
    def planned_frames(self) -> int:
        entry = self.manifest["splits"].get(self.split, {"sequences": 0, "frames_per_sequence": 0})
        return int(entry["sequences"]) * int(entry["frames_per_sequence"])

    def refresh(self) -> int:
        """Rescan the split for frames written since; returns the number of frames available."""
        frames = []
        split_dir = self.root / self.split
        if split_dir.is_dir():
            for seq_dir in sorted(p for p in split_dir.iterdir() if p.is_dir()):
                for f in sorted(seq_dir.iterdir()):
                    m = _FRAME.match(f.name)
                    if m:
                        frames.append((seq_dir.name, int(m.group(1)), f))
        self._frames = frames
        return len(frames)

    def __len__(self) -> int:
        return len(self._frames)

    def __getitem__(self, i: int) -> SurroundSample:
        sequence, index, path = self._frames[i]
        return load_frame(path, self.camera_names, sequence, index)

    def __iter__(self) -> Iterator[SurroundSample]:
        for i in range(len(self)):
            yield self[i]

    def frame_id(self, i: int) -> tuple[str, int]:
        """(sequence name, frame index) of item i."""
        sequence, index, _ = self._frames[i]
        return sequence, index

    def temporal_indices(self, offsets: Sequence[int] = (-1, 0, 1)) -> list[tuple[int, ...]]:
        """Item index tuples (i + o for o in offsets) of frames of one sequence that all exist, e.g. the
        (t-1, t, t+1) triplets of temporal self-supervision."""
        position = {(seq, idx): i for i, (seq, idx, _) in enumerate(self._frames)}
        out = []
        for seq, idx, _ in self._frames:
            items = [position.get((seq, idx + o)) for o in offsets]
            if all(item is not None for item in items):
                out.append(tuple(items))
        return out
