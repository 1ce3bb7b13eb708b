"""The two small interfaces the Bridging Gate plugs into, so that any depth or segmentation model fits.

Both take images as float tensors (B, 3, H, W), RGB in [0, 1]; each adapter does its own
normalisation and resizing. A depth adapter splits its model at the encoder/decoder boundary and
returns relative disparity (the project's teacher convention, see ``fsmde_ros.distill.teachers``:
proportional to inverse depth up to an unknown positive scale and shift); a segmentation adapter
exposes one feature map of its (frozen) segmentation model.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import torch
from torch import nn

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def imagenet_normalise(images: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) RGB in [0, 1] to ImageNet mean/std normalised values."""
    mean = torch.tensor(IMAGENET_MEAN, dtype=images.dtype, device=images.device).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, dtype=images.dtype, device=images.device).view(1, 3, 1, 1)
    return (images - mean) / std


def check_images(images: torch.Tensor, who: str) -> None:
    """Raise ValueError unless ``images`` is a float (B, 3, H, W) tensor."""
    if images.ndim != 4 or images.shape[1] != 3 or not images.is_floating_point():
        raise ValueError(
            f"{who}: images must be a float tensor (B, 3, H, W) in [0, 1], got {tuple(images.shape)} "
            f"{images.dtype}"
        )


class DepthAdapter(nn.Module, ABC):
    """A relative-depth model split into ``encode`` (features per level) and ``decode``."""

    @property
    @abstractmethod
    def feature_channels(self) -> tuple[int, ...]:
        """Channels of each feature map ``encode`` returns, in order."""

    @abstractmethod
    def encode(self, images: torch.Tensor) -> list[torch.Tensor]:
        """Feature maps (B, C_l, h_l, w_l), one per encoder level."""

    @abstractmethod
    def decode(self, features: list[torch.Tensor], image_size: tuple[int, int]) -> torch.Tensor:
        """Relative disparity (B, H, W) at ``image_size`` from (possibly gated) encoder features."""

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """The model alone: decode(encode(images))."""
        return self.decode(self.encode(images), (images.shape[2], images.shape[3]))


class SegmentationAdapter(nn.Module, ABC):
    """A segmentation model's encoder, exposing one feature map."""

    @property
    @abstractmethod
    def feature_channels(self) -> int:
        """Channels of the map ``encode`` returns."""

    @abstractmethod
    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """Segmentation features (B, C, h, w) covering the whole image."""


class NoSegmentation(SegmentationAdapter):
    """A constant, uninformative segmentation map: the control that keeps the gate's self-attention
    and parameters but gives its cross-attention nothing to read (recipe ``segmentation_model.type:
    none``), to separate what the segmentation features bring from what extra gate training brings."""

    @property
    def feature_channels(self) -> int:
        return 1

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        check_images(images, "NoSegmentation")
        return images.new_zeros(images.shape[0], 1, 1, 1)
