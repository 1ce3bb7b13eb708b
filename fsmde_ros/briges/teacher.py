"""BriGeS teacher: a frozen depth model and a frozen segmentation model joined by a trainable gate.

Only the gate's parameters require gradients; the two frozen models stay in eval mode whatever
``train()`` says, so neither their weights nor their buffers (e.g. BatchNorm statistics) change.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from torch import nn

from fsmde_ros.briges.adapters import DepthAdapter, SegmentationAdapter, check_images
from fsmde_ros.briges.gate import BridgingGate, GateConfig


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


class BrigesTeacher(nn.Module):
    """Relative disparity (B, H, W) from images (B, 3, H, W) in [0, 1]."""

    def __init__(self, depth: DepthAdapter, seg: SegmentationAdapter, gate_config: GateConfig) -> None:
        super().__init__()
        self.depth = depth
        self.seg = seg
        self.gate = BridgingGate(depth.feature_channels, seg.feature_channels, gate_config)
        for frozen in (self.depth, self.seg):
            frozen.requires_grad_(False)
            frozen.eval()

    def train(self, mode: bool = True) -> BrigesTeacher:
        """Train mode for the gate only; the frozen models always stay in eval mode."""
        super().train(mode)
        self.depth.eval()
        self.seg.eval()
        return self

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        check_images(images, "BrigesTeacher")
        with torch.no_grad():  # both encoders are frozen and upstream of every trainable weight
            features = self.depth.encode(images)
            seg = self.seg.encode(images)
        return self.depth.decode(self.gate(features, seg), (images.shape[2], images.shape[3]))

    def parameter_counts(self) -> dict[str, int | float]:
        """Trainable (gate) vs frozen parameters, and the trainable share of the frozen depth teacher."""
        gate = count_parameters(self.gate)
        depth = count_parameters(self.depth)
        seg = count_parameters(self.seg)
        trainable = sum(p.numel() for p in self.parameters() if p.requires_grad)
        return {
            "gate": gate,
            "depth_model": depth,
            "segmentation_model": seg,
            "trainable": trainable,
            "trainable_share_of_depth_model": trainable / depth,
        }

    @torch.no_grad()
    def infer(self, images: np.ndarray, batch_size: int = 6) -> np.ndarray:
        """Relative disparity (N, H, W) float32 for uint8 RGB images (N, H, W, 3) (the project's input)."""
        if images.ndim != 4 or images.shape[3] != 3 or images.dtype != np.uint8:
            raise ValueError(
                f"BrigesTeacher.infer: images must be uint8 (N, H, W, 3), got {images.shape} {images.dtype}"
            )
        self.eval()
        device = next(self.gate.parameters()).device
        out = []
        for start in range(0, len(images), batch_size):
            batch = torch.from_numpy(images[start : start + batch_size]).to(device)
            x = batch.permute(0, 3, 1, 2).float() / 255.0
            out.append(self(x).float().cpu().numpy())
        return np.concatenate(out).astype(np.float32)

    def save_gate(self, path: str | Path, extra: dict | None = None) -> None:
        """Gate weights to safetensors, its config (and ``extra``) in the file's metadata."""
        meta = {"gate_config": json.dumps(asdict(self.gate.config)), "extra": json.dumps(extra or {})}
        state = {k: v.detach().contiguous() for k, v in self.gate.state_dict().items()}
        save_file(state, str(path), metadata=meta)

    def load_gate(self, path: str | Path) -> None:
        """Load gate weights saved by ``save_gate``; the gate's shape must match."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no gate checkpoint")
        state = load_file(str(path))
        try:
            self.gate.load_state_dict(state)
        except RuntimeError as exc:
            raise ValueError(f"{path}: gate checkpoint does not fit this gate: {exc}") from exc


def load_gate(path: str | Path, depth_channels: tuple[int, ...], seg_channels: int) -> BridgingGate:
    """A standalone gate from a ``save_gate`` checkpoint, for models with these feature channels."""
    gate = BridgingGate(depth_channels, seg_channels, read_gate_config(path))
    try:
        gate.load_state_dict(load_file(str(path)))
    except RuntimeError as exc:
        raise ValueError(f"{path}: gate checkpoint does not fit these models: {exc}") from exc
    return gate.eval()


def read_gate_config(path: str | Path) -> GateConfig:
    """The GateConfig stored in a gate checkpoint's metadata."""
    if not Path(path).is_file():
        raise FileNotFoundError(f"{path}: no gate checkpoint")
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata() or {}
    if "gate_config" not in meta:
        raise ValueError(f"{path}: not a BriGeS gate checkpoint (no gate_config metadata)")
    raw = json.loads(meta["gate_config"])
    raw["levels"] = tuple(raw["levels"])
    return GateConfig(**raw)
