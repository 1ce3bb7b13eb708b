"""The student: a lightweight encoder-decoder with a hybrid depth-bin head (plain torch).

All cameras of a set run as one batch of B*N images through shared weights. The encoder has five
stride-2 stages of dense 3x3 convolutions (dense convs run nearer a CPU's GEMM rate than depthwise
ones); the U-Net decoder upsamples with skip connections to half resolution, where a 1x1 conv gives
per-pixel bin logits that are bilinearly upsampled to the input size. Bin centres come from the
globally pooled bottleneck (see ``fsmde_ros.model.bins``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from fsmde_ros.model.bins import (
    bin_centres_from_logits,
    confidence_from_log_probabilities,
    depth_from_probabilities,
)
from fsmde_ros.model.config import ModelConfig, load_profile

IMAGE_MEAN = (0.485, 0.456, 0.406)
IMAGE_STD = (0.229, 0.224, 0.225)


@dataclass
class StudentOutput:
    """Training-time outputs for a batch of B images of H x W (B = sets x cameras)."""

    depth: torch.Tensor  # (B, H, W) metres
    confidence: torch.Tensor  # (B, H, W) in [0, 1]
    logits: torch.Tensor  # (B, H, W, K) bin logits
    log_probabilities: torch.Tensor  # (B, H, W, K) log-softmax of the logits
    probabilities: torch.Tensor  # (B, H, W, K)
    bin_centres: torch.Tensor  # (B, K) metres, strictly increasing
    features: torch.Tensor  # (B, C, H/2, W/2) last decoder features (view-relational distillation)


def conv_bn_relu(in_channels: int, out_channels: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


class StudentNet(nn.Module):
    """Encoder-decoder depth network with a hybrid bin head; input float RGB in [0, 1], (B, 3, H, W)."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        enc = config.encoder_channels
        dec = config.decoder_channels
        self.encoder = nn.ModuleList()
        in_channels = 3
        for width in enc:
            self.encoder.append(nn.Sequential(conv_bn_relu(in_channels, width, stride=2),
                                              conv_bn_relu(width, width)))
            in_channels = width
        self.decoder = nn.ModuleList()
        skips = enc[-2::-1]  # skip widths at strides 16, 8, 4, 2
        for skip, width in zip(skips, dec, strict=True):
            self.decoder.append(conv_bn_relu(in_channels + skip, width))
            in_channels = width
        self.logits_head = nn.Conv2d(in_channels, config.num_bins, 1)
        self.bins_head = nn.Sequential(
            nn.Linear(enc[-1], config.bin_mlp_hidden),
            nn.ReLU(inplace=True),
            nn.Linear(config.bin_mlp_hidden, config.num_bins),
        )
        self.register_buffer("mean", torch.tensor(IMAGE_MEAN).reshape(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGE_STD).reshape(1, 3, 1, 1), persistent=False)

    def forward(self, images: torch.Tensor) -> StudentOutput:
        """``images``: (B, 3, H, W) float RGB in [0, 1] with H x W the profile's input size."""
        x = (images - self.mean) / self.std
        skips = []
        for stage in self.encoder:
            x = stage(x)
            skips.append(x)
        bottleneck = skips.pop()
        x = bottleneck
        for block, skip in zip(self.decoder, reversed(skips), strict=True):
            x = F.interpolate(x, scale_factor=2.0, mode="nearest")  # H, W are multiples of 32
            x = block(torch.cat([x, skip], dim=1))
        features = x
        logits = F.interpolate(self.logits_head(features), scale_factor=2.0, mode="bilinear",
                               align_corners=False)
        logits = logits.permute(0, 2, 3, 1)
        log_probabilities = F.log_softmax(logits, dim=-1)
        probabilities = log_probabilities.exp()
        centres = bin_centres_from_logits(self.bins_head(bottleneck.mean(dim=(2, 3))),
                                          self.config.min_depth, self.config.max_depth)
        return StudentOutput(
            depth=depth_from_probabilities(probabilities, centres),
            confidence=confidence_from_log_probabilities(log_probabilities),
            logits=logits,
            log_probabilities=log_probabilities,
            probabilities=probabilities,
            bin_centres=centres,
            features=features,
        )


class DeployStudent(nn.Module):
    """Deployment graph: uint8 RGB (N, H, W, 3) in; the outputs of ``contract.OUTPUT_NAMES`` out.

    Casting, scaling and normalisation happen inside the graph so every backend takes raw images.
    """

    def __init__(self, student: StudentNet):
        super().__init__()
        self.student = student

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, ...]:
        out = self.student(images_to_tensor(images))
        return out.depth, out.confidence, out.probabilities, out.bin_centres


def images_to_tensor(images: torch.Tensor) -> torch.Tensor:
    """uint8 RGB (..., H, W, 3) -> float (..., 3, H, W) in [0, 1], the input of ``StudentNet``.

    The cast comes first: TensorRT accepts a uint8 network input only straight into a cast.
    """
    lead = tuple(range(images.ndim - 3))
    return images.float().permute(*lead, images.ndim - 1, images.ndim - 3, images.ndim - 2) / 255.0


def build_student(profile: str | ModelConfig = "cpu", seed: int | None = None) -> StudentNet:
    """A freshly initialised student for a profile name of config/model_profiles.yaml or a config."""
    config = profile if isinstance(profile, ModelConfig) else load_profile(profile)
    if seed is not None:
        torch.manual_seed(seed)
    return StudentNet(config)
