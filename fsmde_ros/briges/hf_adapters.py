"""Depth Anything V2 and SAM's image encoder through ``transformers``, loaded from local directories.

``transformers`` is imported lazily; nothing is ever downloaded (``local_files_only=True``).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from fsmde_ros.briges.adapters import DepthAdapter, SegmentationAdapter, check_images, imagenet_normalise


def _read_model_type(directory: str | Path) -> str:
    """``model_type`` of the ``config.json`` in a local model directory; clear errors otherwise."""
    config = Path(directory) / "config.json"
    if not config.is_file():
        raise FileNotFoundError(f"{directory}: not a local transformers model directory (no config.json)")
    try:
        model_type = json.loads(config.read_text())["model_type"]
    except (json.JSONDecodeError, KeyError) as exc:
        raise ValueError(f"{config}: unreadable config, expected JSON with a 'model_type' field") from exc
    return str(model_type)


class DepthAnythingAdapter(DepthAdapter):
    """``DepthAnythingForDepthEstimation`` (V1 or V2): DINOv2 backbone levels, then the DPT neck and head.

    Images are resized to ``input_size`` (a multiple of the patch size; by default the image size
    rounded to the nearest multiple) and the relative disparity is resized back.
    """

    def __init__(self, model: nn.Module, input_size: tuple[int, int] | None = None) -> None:
        super().__init__()
        self.model = model
        self.patch = int(model.config.patch_size)
        if input_size is not None and (input_size[0] % self.patch or input_size[1] % self.patch):
            raise ValueError(f"Depth Anything input_size {input_size} must be a multiple of {self.patch}")
        self.input_size = input_size

    @classmethod
    def from_pretrained(cls, directory: str | Path, input_size: tuple[int, int] | None = None):
        """Load a Depth Anything checkpoint directory (config.json + safetensors)."""
        model_type = _read_model_type(directory)
        if model_type != "depth_anything":
            raise ValueError(f"{directory}: model_type is {model_type!r}, expected 'depth_anything'")
        from transformers import DepthAnythingForDepthEstimation

        model = DepthAnythingForDepthEstimation.from_pretrained(str(directory), local_files_only=True)
        return cls(model.eval(), input_size)

    @property
    def feature_channels(self) -> tuple[int, ...]:
        hidden = int(self.model.config.backbone_config.hidden_size)
        return (hidden,) * len(self.model.config.neck_hidden_sizes)

    def _network_size(self, height: int, width: int) -> tuple[int, int]:
        if self.input_size is not None:
            return self.input_size
        return (
            max(1, round(height / self.patch)) * self.patch,
            max(1, round(width / self.patch)) * self.patch,
        )

    def encode(self, images: torch.Tensor) -> list[torch.Tensor]:
        check_images(images, "DepthAnythingAdapter")
        size = self._network_size(int(images.shape[2]), int(images.shape[3]))
        x = imagenet_normalise(images)
        if tuple(x.shape[2:]) != size:
            x = F.interpolate(x, size=size, mode="bicubic", align_corners=False)
        tokens = self.model.backbone.forward_with_filtered_kwargs(x).feature_maps
        gh, gw = size[0] // self.patch, size[1] // self.patch
        # Drop the class token (the DPT neck ignores it) and lay the patch tokens out as maps.
        return [t[:, 1:].transpose(1, 2).reshape(t.shape[0], t.shape[2], gh, gw) for t in tokens]

    def decode(self, features: list[torch.Tensor], image_size: tuple[int, int]) -> torch.Tensor:
        b, c, gh, gw = features[0].shape
        cls_token = features[0].new_zeros(b, 1, c)
        tokens = [torch.cat([cls_token, f.flatten(2).transpose(1, 2)], dim=1) for f in features]
        hidden = self.model.neck(tokens, gh, gw)
        disparity = self.model.head(hidden, gh, gw)
        if tuple(disparity.shape[1:]) != tuple(image_size):
            disparity = F.interpolate(
                disparity[:, None], size=image_size, mode="bilinear", align_corners=False
            )[:, 0]
        return disparity


class SamEncoderAdapter(SegmentationAdapter):
    """SAM's ViT image encoder (+ neck): the longer side is resized to the encoder's square input size,
    the rest zero-padded as SAM does, and the feature map cropped to the image's valid region."""

    def __init__(self, vision_encoder: nn.Module) -> None:
        super().__init__()
        self.encoder = vision_encoder
        config = vision_encoder.config
        self.size = int(config.image_size)
        self.patch = int(config.patch_size)
        self._channels = int(config.output_channels)

    @classmethod
    def from_pretrained(cls, directory: str | Path):
        """Load a full SAM checkpoint (``sam``) or its vision encoder alone (``sam_vision_model``)."""
        model_type = _read_model_type(directory)
        if model_type == "sam":
            from transformers import SamModel

            encoder = SamModel.from_pretrained(str(directory), local_files_only=True).vision_encoder
        elif model_type == "sam_vision_model":
            from transformers import SamVisionModel

            encoder = SamVisionModel.from_pretrained(str(directory), local_files_only=True)
        else:
            raise ValueError(
                f"{directory}: model_type is {model_type!r}, expected 'sam' or 'sam_vision_model'"
            )
        return cls(encoder.eval())

    @property
    def feature_channels(self) -> int:
        return self._channels

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        check_images(images, "SamEncoderAdapter")
        h, w = int(images.shape[2]), int(images.shape[3])
        scale = self.size / max(h, w)
        nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
        x = F.interpolate(imagenet_normalise(images), size=(nh, nw), mode="bilinear", align_corners=False)
        x = F.pad(x, (0, self.size - nw, 0, self.size - nh))
        features = self.encoder(pixel_values=x).last_hidden_state
        return features[:, :, : math.ceil(nh / self.patch), : math.ceil(nw / self.patch)]
