"""The one interface every inference backend (ONNX Runtime, TensorRT, torch) implements."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np


class BackendError(RuntimeError):
    """A backend cannot be created or cannot run; the message names the file and the problem."""


@dataclass
class InferenceResult:
    """Outputs for one batch of N camera images of H x W pixels (model input size)."""

    depth: np.ndarray  # (N, H, W) float32 metres
    confidence: np.ndarray  # (N, H, W) float32 in [0, 1], from the bin distribution
    probabilities: np.ndarray | None = None  # (N, H, W, K) float32 bin probabilities, when asked
    bin_centres: np.ndarray | None = None  # (N, K) float32 metres, when asked


class DepthBackend(ABC):
    """Runs the student network on a batch of N uint8 RGB images (N, H, W, 3), N and H x W fixed."""

    name: str = "abstract"

    @property
    @abstractmethod
    def input_shape(self) -> tuple[int, int, int, int]:
        """(N, H, W, 3) of the images ``infer`` takes."""

    @abstractmethod
    def infer(self, images: np.ndarray, with_probabilities: bool = False) -> InferenceResult:
        """Depth and confidence for ``images``; bin probabilities and centres too when asked."""

    def close(self) -> None:  # noqa: B027 - optional hook, most backends hold nothing to release
        """Release device memory, sessions or contexts."""
