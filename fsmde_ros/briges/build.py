"""Build the frozen models, the gated teacher and the data sources a BriGeS recipe names."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from fsmde_ros.briges.adapters import DepthAdapter, SegmentationAdapter
from fsmde_ros.briges.gate import GateConfig
from fsmde_ros.briges.teacher import BrigesTeacher


def build_depth_adapter(spec: dict) -> DepthAdapter:
    """``{type: synth, path: TeacherNet checkpoint}`` or ``{type: dav2, path: dir, input_size: [h, w]}``."""
    if spec["type"] == "synth":
        from fsmde_ros.briges.unet_adapter import TeacherNetAdapter

        return TeacherNetAdapter.from_checkpoint(spec["path"])
    from fsmde_ros.briges.hf_adapters import DepthAnythingAdapter

    size = spec.get("input_size")
    return DepthAnythingAdapter.from_pretrained(spec["path"], tuple(size) if size else None)


def build_seg_adapter(spec: dict) -> SegmentationAdapter:
    """``{type: segnet, path: SegNet checkpoint}``, ``{type: sam, path: SAM directory}`` or
    ``{type: none}`` (the no-segmentation control)."""
    if spec["type"] == "none":
        from fsmde_ros.briges.adapters import NoSegmentation

        return NoSegmentation()
    if spec["type"] == "segnet":
        from fsmde_ros.briges.segnet import SegNetAdapter, load_segnet

        return SegNetAdapter(load_segnet(spec["path"]))
    from fsmde_ros.briges.hf_adapters import SamEncoderAdapter

    return SamEncoderAdapter.from_pretrained(spec["path"])


def gate_config(recipe: dict) -> GateConfig:
    g = recipe["gate"]
    return GateConfig(
        levels=tuple(int(v) for v in g["levels"]),
        dim=int(g["dim"]),
        heads=int(g["heads"]),
        temperature=str(g["temperature"]),
        tau=float(g["tau"]),
    )


def build_teacher(recipe: dict, config: GateConfig | None = None) -> BrigesTeacher:
    """The gated teacher of ``recipe`` (with ``config`` instead of the recipe's gate when given)."""
    return BrigesTeacher(
        build_depth_adapter(recipe["depth_model"]),
        build_seg_adapter(recipe["segmentation_model"]),
        config or gate_config(recipe),
    )


class FrameSubset(Sequence):
    """Evenly spaced frames of a sequence of samples (all of them when ``max_frames`` is None)."""

    def __init__(self, source: Sequence, max_frames: int | None) -> None:
        n = len(source)
        if max_frames is None or max_frames >= n:
            self.indices = list(range(n))
        else:
            self.indices = sorted(set(np.linspace(0, n - 1, max(1, max_frames)).round().astype(int).tolist()))
        self.source = source

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int):
        return self.source[self.indices[i]]


def open_split(recipe: dict, split: str, max_frames: int | None) -> FrameSubset:
    """Up to ``max_frames`` evenly spaced samples of one split of the recipe's SynthSurround root (BriGeS
    needs its dense depth and class maps)."""
    from fsmde_ros.datasets.synthsurround import SynthSurroundDataset

    return FrameSubset(SynthSurroundDataset(recipe["data"]["root"], split), max_frames)
