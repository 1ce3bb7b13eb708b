"""Export a gated teacher as an ONNX relative-disparity model, the input ``fsmde-train`` expects of an
``onnx`` teacher (``fsmde_ros.distill.teachers.OnnxTeacher``): one NCHW float image, ImageNet-normalised,
static size; output (N, H, W) relative disparity."""

from __future__ import annotations

import warnings
from pathlib import Path

import torch
from torch import nn

from fsmde_ros.briges.adapters import IMAGENET_MEAN, IMAGENET_STD
from fsmde_ros.briges.teacher import BrigesTeacher


class _NormalisedInput(nn.Module):
    """The teacher behind an ImageNet-normalised input."""

    def __init__(self, teacher: BrigesTeacher) -> None:
        super().__init__()
        self.teacher = teacher
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.teacher(x * self.std + self.mean)


def export_onnx(
    teacher: BrigesTeacher, path: Path, height: int, width: int, tau: float | None = None
) -> None:
    """Write ``path``: input ``image`` (batch, 3, height, width), dynamic batch; output ``disparity``."""
    teacher.eval()
    teacher.gate.set_temperature_override(tau)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with warnings.catch_warnings():
            # tracing pins the image grid (static by design); its warnings saying so are expected
            warnings.simplefilter("ignore", torch.jit.TracerWarning)
            torch.onnx.export(
                _NormalisedInput(teacher).eval(),
                (torch.zeros(1, 3, height, width),),
                str(path),
                input_names=["image"],
                output_names=["disparity"],
                dynamic_axes={"image": {0: "batch"}, "disparity": {0: "batch"}},
                opset_version=18,
                dynamo=False,
            )
    finally:
        teacher.gate.set_temperature_override(None)
