"""Camera images to network input: resize (or resize + centre crop) with the intrinsics to match."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from fsmde_ros.core.decode import InputError
from fsmde_ros.geometry import crop_intrinsics, scale_intrinsics

MODES = ("resize", "crop")


def camera_matrix(k: object, width: int, height: int) -> np.ndarray:
    """Validated 3x3 K from CameraInfo's row-major ``k`` (9 numbers) for a ``width`` x ``height`` image."""
    try:
        K = np.asarray(k, dtype=np.float64).reshape(3, 3)
    except (TypeError, ValueError) as exc:
        raise InputError("bad_camera_info", f"K must hold 9 numbers ({exc})") from exc
    if not np.all(np.isfinite(K)):
        raise InputError("bad_camera_info", "K contains NaN or inf")
    if K[0, 0] <= 0 or K[1, 1] <= 0:
        raise InputError("bad_camera_info", f"K has non-positive focal lengths fx={K[0, 0]}, fy={K[1, 1]}")
    if K[2, 2] != 1.0 or K[1, 0] != 0 or K[2, 0] != 0 or K[2, 1] != 0:
        raise InputError("bad_camera_info", f"K is not a pinhole matrix: {K.tolist()}")
    if width <= 0 or height <= 0:
        raise InputError("bad_camera_info", f"image size {width}x{height} is empty")
    return K


@dataclass(frozen=True)
class Plan:
    """How one source image size maps to the network input: scaled size, crop offset, K at input size."""

    src_width: int
    src_height: int
    scaled_width: int
    scaled_height: int
    left: int
    top: int
    K: np.ndarray


class Preprocessor:
    """Maps source images of any size to the network's ``height`` x ``width`` input.

    ``resize`` scales each axis to the input size (the intrinsics scale per axis); ``crop`` scales
    both axes by one factor so that the image covers the input, then crops the centre.
    """

    def __init__(self, height: int, width: int, mode: str = "resize") -> None:
        if mode not in MODES:
            raise ValueError(f"preprocess mode {mode!r} is not one of {MODES}")
        self.height, self.width, self.mode = height, width, mode

    def plan(self, src_width: int, src_height: int, K: np.ndarray) -> Plan:
        """The mapping for ``src_width`` x ``src_height`` images with intrinsics ``K``."""
        if self.mode == "resize":
            sw, sh = self.width, self.height
        else:
            scale = max(self.width / src_width, self.height / src_height)
            sw, sh = max(self.width, round(src_width * scale)), max(self.height, round(src_height * scale))
        left, top = (sw - self.width) // 2, (sh - self.height) // 2
        K_in = crop_intrinsics(scale_intrinsics(K, sw / src_width, sh / src_height), left, top)
        return Plan(src_width, src_height, sw, sh, left, top, K_in)

    def apply(self, image: np.ndarray, plan: Plan, out: np.ndarray | None = None) -> np.ndarray:
        """The (height, width, 3) network input of ``image``, written into ``out`` when given."""
        if image.shape[:2] != (plan.src_height, plan.src_width):
            raise InputError("bad_size", f"image is {image.shape[1]}x{image.shape[0]}, camera info says "
                                         f"{plan.src_width}x{plan.src_height}")
        if (plan.scaled_width, plan.scaled_height) == (image.shape[1], image.shape[0]):
            scaled = image
        else:
            # Area averaging (what the training data uses) where an image shrinks by 2x or more: it
            # anti-aliases. Above half size bilinear reads every source pixel too and agrees with area
            # averaging to a fraction of a grey level, 20x faster (cv2's area path is slow off integers).
            halving = 2 * plan.scaled_width <= image.shape[1] or 2 * plan.scaled_height <= image.shape[0]
            scaled = cv2.resize(image, (plan.scaled_width, plan.scaled_height),
                                interpolation=cv2.INTER_AREA if halving else cv2.INTER_LINEAR)
        cropped = scaled[plan.top: plan.top + self.height, plan.left: plan.left + self.width]
        if out is None:
            return np.ascontiguousarray(cropped)
        out[...] = cropped
        return out
