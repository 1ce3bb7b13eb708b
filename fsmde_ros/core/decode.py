"""Camera messages to uint8 RGB images, ROS-free: raw ``sensor_msgs/Image`` fields or compressed bytes.

Raw images are wrapped without copying (``np.frombuffer`` on the message buffer); only encodings
other than rgb8 are converted. Every refusal raises ``InputError`` whose ``reason`` is the drop
counter it is counted under.
"""

from __future__ import annotations

import cv2
import numpy as np

RAW_CHANNELS = {"rgb8": 3, "bgr8": 3, "rgba8": 4, "bgra8": 4, "mono8": 1}
"""Raw encodings the node accepts, with their channel counts."""

COMPRESSED_FORMATS = ("jpeg", "png")


class InputError(ValueError):
    """A message the node cannot use; ``reason`` names the drop counter, the message says why."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def decode_raw(encoding: str, height: int, width: int, step: int, data: bytes | memoryview) -> np.ndarray:
    """(H, W, 3) uint8 RGB from the fields of a raw image; rgb8 is a view on ``data``, not a copy."""
    channels = RAW_CHANNELS.get(encoding)
    if channels is None:
        raise InputError("bad_encoding",
                         f"unsupported encoding {encoding!r}; use one of {sorted(RAW_CHANNELS)}")
    if height <= 0 or width <= 0:
        raise InputError("empty_data", f"image size {width}x{height} is empty")
    buf = np.frombuffer(data, dtype=np.uint8)
    if buf.size == 0:
        raise InputError("empty_data", "image data is empty")
    if step < width * channels:
        raise InputError("bad_size", f"step {step} is smaller than width {width} x {channels} channels")
    if buf.size < step * height:
        raise InputError("bad_size", f"data has {buf.size} bytes, {encoding} {width}x{height} with step "
                                     f"{step} needs {step * height}")
    rows = buf[: step * height].reshape(height, step)[:, : width * channels]
    image = rows.reshape(height, width, channels)
    if encoding == "rgb8":
        return image
    if encoding == "bgr8":
        return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    if encoding == "rgba8":
        return cv2.cvtColor(image, cv2.COLOR_RGBA2RGB)
    if encoding == "bgra8":
        return cv2.cvtColor(image, cv2.COLOR_BGRA2RGB)
    return cv2.cvtColor(image[..., 0], cv2.COLOR_GRAY2RGB)


def decode_compressed(fmt: str, data: bytes | memoryview) -> np.ndarray:
    """(H, W, 3) uint8 RGB from a ``sensor_msgs/CompressedImage`` whose format names jpeg or png.

    image_transport writes formats such as ``"jpeg"`` or ``"bgr8; jpeg compressed bgr8"``.
    """
    name = fmt.lower()
    if not any(f in name for f in (*COMPRESSED_FORMATS, "jpg")):
        raise InputError("bad_encoding", f"unsupported compressed format {fmt!r}; use jpeg or png")
    buf = np.frombuffer(data, dtype=np.uint8)
    if buf.size == 0:
        raise InputError("empty_data", "compressed image data is empty")
    image = cv2.imdecode(buf, cv2.IMREAD_COLOR)
    if image is None:
        raise InputError("decode_failed", f"could not decode {buf.size} bytes of {fmt!r}")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)

