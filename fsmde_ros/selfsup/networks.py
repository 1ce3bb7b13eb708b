"""Networks of self-supervised training besides the depth student: the intrinsic decomposition branch
and the optional multi-camera pose network."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from fsmde_ros.selfsup.decomposition import log_image
from fsmde_ros.selfsup.poses import axis_angle_to_matrix

LOG_R_LIMIT = 2.0
"""|log R| is bounded by this: the residual can brighten or darken a pixel at most e^2 times."""

INTRINSIC_FORMAT = "2"
"""Version of IntrinsicNet's output parameterisation, stored with its checkpoints: 2 predicts log L as a
correction of log I (format 1, without the input skip, is refused when loaded)."""

L_SOFTNESS = 20.0
"""Sharpness of the smooth minimum that keeps log L <= 0 (L <= 1): log L = -softplus(-x, beta)."""


def _conv(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout),
                         nn.ReLU(inplace=True))


class IntrinsicNet(nn.Module):
    """Splits an RGB image (B, 3, H, W) in [0, 1] as log I = log L + log R.

    L (diffuse, view-invariant) is in (0, 1]; R (residual: specular highlights, reflections) is a
    per-channel multiplicative factor with |log R| <= ``LOG_R_LIMIT``. A small U-Net with three
    stride-2 stages; H and W must be divisible by 8.

    log L is predicted as a correction of the input, log I + c (kept <= 0 by a smooth minimum), so
    most pixels, which are Lambertian, need no work; the head starts at zero, so a fresh branch is
    the identity split L = I, R = 1 (up to the smooth minimum near white).
    """

    def __init__(self, width: int = 16) -> None:
        super().__init__()
        w = width
        self.enc1, self.enc2, self.enc3 = _conv(3, w, 2), _conv(w, 2 * w, 2), _conv(2 * w, 4 * w, 2)
        self.dec3, self.dec2 = _conv(4 * w + 2 * w, 2 * w), _conv(2 * w + w, w)
        self.dec1 = _conv(w + 3, w)
        self.head = nn.Conv2d(w, 6, 3, 1, 1)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(log L, log R), each (B, 3, H, W)."""
        h, w = image.shape[-2:]
        if h % 8 or w % 8:
            raise ValueError(f"IntrinsicNet: image size {h}x{w} must be divisible by 8")
        e1 = self.enc1(image)
        e2 = self.enc2(e1)
        e3 = self.enc3(e2)
        d = self.dec3(torch.cat([F.interpolate(e3, scale_factor=2.0, mode="nearest"), e2], 1))
        d = self.dec2(torch.cat([F.interpolate(d, scale_factor=2.0, mode="nearest"), e1], 1))
        d = self.dec1(torch.cat([F.interpolate(d, scale_factor=2.0, mode="nearest"), image], 1))
        out = self.head(d)
        log_l = -F.softplus(-(log_image(image) + out[:, :3]), beta=L_SOFTNESS)
        log_r = LOG_R_LIMIT * torch.tanh(out[:, 3:] / LOG_R_LIMIT)
        return log_l, log_r


class RigPoseNet(nn.Module):
    """Ego motion of a camera rig between two instants from the image pairs of all its cameras.

    Input: target and source images (N, 3, H, W) each of the N rig cameras. Every camera pair is
    encoded with shared weights; the per-camera 6-D outputs, expressed in each camera's frame, are
    averaged into one vehicle motion (so all cameras move rigidly together). Output: the 4x4
    transform (4, 4) of points of the target vehicle frame into the source vehicle frame.
    """

    def __init__(self, width: int = 16, scale: float = 0.01) -> None:
        super().__init__()
        w = width
        self.encoder = nn.Sequential(_conv(6, w, 2), _conv(w, 2 * w, 2), _conv(2 * w, 4 * w, 2),
                                     _conv(4 * w, 4 * w, 2), nn.AdaptiveAvgPool2d(1))
        self.head = nn.Conv2d(4 * w, 6, 1)
        self.scale = scale

    def forward(self, target: torch.Tensor, source: torch.Tensor, cam2ego: torch.Tensor) -> torch.Tensor:
        out = self.head(self.encoder(torch.cat([target, source], 1))).flatten(1) * self.scale  # (N, 6)
        rot_cam, trans_cam = out[:, :3], out[:, 3:]
        R = cam2ego[:, :3, :3].to(out.dtype)
        rot_ego = (R @ rot_cam[..., None])[..., 0].mean(0, keepdim=True)
        trans_ego = (R @ trans_cam[..., None])[..., 0].mean(0, keepdim=True)
        return axis_angle_to_matrix(rot_ego, trans_ego)[0]
