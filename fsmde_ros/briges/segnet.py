"""A small semantic segmentation network for SynthSurround class maps, and its gate adapter.

Encoder at strides 2/4/8/16, FPN-style decoder back to stride 4; the stride-4 decoder features
(``width * 2`` channels) are what the Bridging Gate sees, the 1x1 classifier on them is trained with
cross-entropy on the class maps and then frozen.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from torch import nn

from fsmde_ros.briges.adapters import SegmentationAdapter, check_images, imagenet_normalise
from fsmde_ros.model.student import conv_bn_relu


class SegNet(nn.Module):
    """Class logits (B, num_classes, H, W) and stride-4 features from RGB (B, 3, H, W) in [0, 1]."""

    def __init__(self, num_classes: int, width: int = 32) -> None:
        super().__init__()
        if num_classes < 2:
            raise ValueError(f"SegNet needs at least 2 classes, got {num_classes}")
        w = width
        self.num_classes = num_classes
        self.width = width
        self.stem = nn.Sequential(conv_bn_relu(3, w, 2), conv_bn_relu(w, w))
        self.down4 = nn.Sequential(conv_bn_relu(w, 2 * w, 2), conv_bn_relu(2 * w, 2 * w))
        self.down8 = nn.Sequential(conv_bn_relu(2 * w, 3 * w, 2), conv_bn_relu(3 * w, 3 * w))
        self.down16 = nn.Sequential(
            conv_bn_relu(3 * w, 4 * w, 2), conv_bn_relu(4 * w, 4 * w), conv_bn_relu(4 * w, 4 * w)
        )
        self.lat16 = nn.Conv2d(4 * w, 2 * w, 1)
        self.lat8 = nn.Conv2d(3 * w, 2 * w, 1)
        self.lat4 = nn.Conv2d(2 * w, 2 * w, 1)
        self.fuse = nn.Sequential(conv_bn_relu(2 * w, 2 * w), conv_bn_relu(2 * w, 2 * w))
        self.classifier = nn.Conv2d(2 * w, num_classes, 1)

    @property
    def feature_channels(self) -> int:
        return 2 * self.width

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """Stride-4 semantic features (B, 2 * width, ceil(H/4), ceil(W/4))."""
        x2 = self.stem(imagenet_normalise(images))
        x4 = self.down4(x2)
        x8 = self.down8(x4)
        x16 = self.down16(x8)
        y = self.lat8(x8) + F.interpolate(
            self.lat16(x16), size=x8.shape[2:], mode="bilinear", align_corners=False
        )
        y = self.lat4(x4) + F.interpolate(y, size=x4.shape[2:], mode="bilinear", align_corners=False)
        return self.fuse(y)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        logits = self.classifier(self.features(images))
        return F.interpolate(logits, size=images.shape[2:], mode="bilinear", align_corners=False)


class SegNetAdapter(SegmentationAdapter):
    """A trained :class:`SegNet` as the gate's segmentation model."""

    def __init__(self, net: SegNet) -> None:
        super().__init__()
        self.net = net

    @property
    def feature_channels(self) -> int:
        return self.net.feature_channels

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        check_images(images, "SegNetAdapter")
        return self.net.features(images)


def save_segnet(net: SegNet, path: str | Path, extra: dict | None = None) -> None:
    """Weights to safetensors with ``kind: segnet``, the shape and ``extra`` in the metadata."""
    meta = {
        "kind": "segnet",
        "num_classes": str(net.num_classes),
        "width": str(net.width),
        "extra": json.dumps(extra or {}),
    }
    save_file({k: v.detach().contiguous() for k, v in net.state_dict().items()}, str(path), metadata=meta)


def load_segnet(path: str | Path) -> SegNet:
    """A SegNet saved by ``save_segnet``, in eval mode."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no segmentation network checkpoint")
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata() or {}
    if meta.get("kind") != "segnet":
        raise ValueError(f"{path}: not a SegNet checkpoint (kind={meta.get('kind')!r})")
    net = SegNet(int(meta["num_classes"]), int(meta["width"]))
    try:
        net.load_state_dict(load_file(str(path)))
    except RuntimeError as exc:
        raise ValueError(f"{path}: weights do not match the SegNet in its metadata: {exc}") from exc
    return net.eval()
