"""Input and output checks shared by every backend."""

from __future__ import annotations

import numpy as np

from fsmde_ros.backends.base import BackendError, InferenceResult


class InputError(BackendError, ValueError):
    """The images handed to ``infer`` do not fit the model (shape, dtype or camera count)."""


def check_images(images: object, expected_shape: tuple[int, int, int, int], source: str) -> np.ndarray:
    """Return ``images`` as a C-contiguous uint8 array of ``expected_shape`` or raise InputError."""
    if not isinstance(images, np.ndarray):
        raise InputError(f"{source}: images must be a numpy array, got {type(images).__name__}")
    if images.dtype != np.uint8:
        raise InputError(f"{source}: images must be uint8 RGB, got dtype {images.dtype}")
    if images.ndim != 4 or images.shape[-1] != 3:
        raise InputError(f"{source}: images must be (N, H, W, 3) RGB, got shape {images.shape}")
    num_cameras, height, width, _ = expected_shape
    if images.shape[0] != num_cameras:
        raise InputError(f"{source}: model takes {num_cameras} cameras, got {images.shape[0]} images")
    if images.shape[1:3] != (height, width):
        raise InputError(f"{source}: model takes {height}x{width} (HxW) images, got "
                         f"{images.shape[1]}x{images.shape[2]}; resize before inference")
    return np.ascontiguousarray(images)


def check_result(result: InferenceResult, source: str) -> InferenceResult:
    """Raise BackendError when the network produced NaN or Inf (corrupt weights, broken engine)."""
    arrays = {"depth": result.depth, "confidence": result.confidence,
              "probabilities": result.probabilities, "bin_centres": result.bin_centres}
    for name, array in arrays.items():
        if array is None:
            continue
        bad = int(array.size - np.count_nonzero(np.isfinite(array)))
        if bad:
            raise BackendError(f"{source}: model produced {bad} non-finite (NaN/Inf) values in '{name}'")
    return result
