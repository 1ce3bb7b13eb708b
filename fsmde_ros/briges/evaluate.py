"""Evaluate the teacher alone and gated variants (gate checkpoints x inference temperatures) in one
pass: each frame's frozen encoder and segmentation features are computed once and decoded per variant.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm import tqdm

from fsmde_ros.briges.adapters import DepthAdapter, NoSegmentation, SegmentationAdapter
from fsmde_ros.briges.data import CameraFrames
from fsmde_ros.briges.gate import BridgingGate
from fsmde_ros.briges.metrics import AffineInvariantEvaluator
from fsmde_ros.briges.teacher import load_gate
from fsmde_ros.evaluation import EvalConfig

TEACHER = "teacher"
"""Variant name of the frozen depth model without a gate."""


@dataclass(frozen=True)
class Variant:
    """A gate checkpoint run at ``tau`` (None: its own fixed or learnt temperatures); ``control``
    gates were trained without segmentation features (``NoSegmentation``) and run without them."""

    name: str
    gate_path: Path
    tau: float | None = None
    control: bool = False


@torch.no_grad()
def evaluate_variants(
    depth: DepthAdapter,
    seg: SegmentationAdapter,
    frames: CameraFrames,
    camera_names: tuple[str, ...],
    variants: list[Variant],
    config: EvalConfig,
    boundary_log_ratio: float = 0.15,
    thin_width: int = 5,
    progress: bool = False,
) -> dict[str, dict]:
    """``{variant name: {subset: metrics} plus "taus"}``, the teacher alone under ``TEACHER``.

    ``taus`` lists the temperatures each variant ran at (cross- then self-attention per level;
    empty for the teacher alone).
    """
    names = [TEACHER] + [v.name for v in variants]
    if len(set(names)) != len(names):
        raise ValueError(f"evaluation: variant names must be distinct and not {TEACHER!r}, got {names}")
    null_seg = NoSegmentation()
    gates: dict[str, BridgingGate] = {}
    for v in variants:
        key = str(v.gate_path)
        if key not in gates:
            channels = (null_seg if v.control else seg).feature_channels
            gates[key] = load_gate(v.gate_path, depth.feature_channels, channels)
    evaluators = {
        name: AffineInvariantEvaluator(camera_names, config, boundary_log_ratio, thin_width) for name in names
    }
    depth.eval()
    seg.eval()
    try:
        for item in tqdm(frames, desc="evaluate", disable=not progress):
            images = item["images"]
            size = (images.shape[2], images.shape[3])
            features = depth.encode(images)
            seg_features = {False: seg.encode(images), True: null_seg.encode(images)}
            evaluators[TEACHER].add(depth.decode(features, size), item["depth"], item["semantic"])
            for v in variants:
                gate = gates[str(v.gate_path)]
                gate.set_temperature_override(v.tau)
                disparity = depth.decode(gate(features, seg_features[v.control]), size)
                evaluators[v.name].add(disparity, item["depth"], item["semantic"])
    finally:
        for gate in gates.values():
            gate.set_temperature_override(None)
    out = {name: {**ev.result(), "taus": []} for name, ev in evaluators.items()}
    for v in variants:
        gate = gates[str(v.gate_path)]
        gate.set_temperature_override(v.tau)
        out[v.name]["taus"] = [t().item() for t in gate.temperatures()]
        gate.set_temperature_override(None)
    return out


@torch.no_grad()
def evaluate_segmentation(net: torch.nn.Module, frames: CameraFrames, class_names: tuple[str, ...]) -> dict:
    """Pixel accuracy, per-class IoU and mean IoU (over classes present in prediction or truth)."""
    n = len(class_names)
    confusion = torch.zeros(n, n, dtype=torch.int64)
    net.eval()
    for item in frames:
        pred = net(item["images"]).argmax(1).flatten()
        truth = item["semantic"].flatten()
        confusion += torch.bincount(truth * n + pred, minlength=n * n).view(n, n)
    inter = confusion.diag().double()
    union = confusion.sum(0).double() + confusion.sum(1).double() - inter
    iou = {name: float(inter[i] / union[i]) for i, name in enumerate(class_names) if union[i] > 0}
    return {
        "pixel_accuracy": float(inter.sum() / confusion.sum().clamp_min(1)),
        "iou": iou,
        "miou": sum(iou.values()) / max(1, len(iou)),
        "frames": len(frames),
    }
