"""sensor_msgs/Image and CameraInfo as ``rosbags`` typestore messages (ROS 2 Kilted definitions).

The definitions of Image and CameraInfo are identical from Humble to Kilted, so bags written here
play on any of them. Image data is filled and read as one numpy view, never element by element.
"""

from __future__ import annotations

import sys

import numpy as np
from rosbags.typesys import Stores, get_typestore

from fsmde_ros.conventions import NS_PER_S

TYPESTORE = get_typestore(Stores.ROS2_KILTED)
"""The typestore every bag of the project is written and read with."""

IMAGE = "sensor_msgs/msg/Image"
CAMERA_INFO = "sensor_msgs/msg/CameraInfo"

_Header = TYPESTORE.types["std_msgs/msg/Header"]
_Time = TYPESTORE.types["builtin_interfaces/msg/Time"]
_Image = TYPESTORE.types[IMAGE]
_CameraInfo = TYPESTORE.types[CAMERA_INFO]
_RegionOfInterest = TYPESTORE.types["sensor_msgs/msg/RegionOfInterest"]

# encoding -> (numpy dtype, channels)
ENCODINGS: dict[str, tuple[np.dtype, int]] = {
    "rgb8": (np.dtype(np.uint8), 3), "bgr8": (np.dtype(np.uint8), 3),
    "rgba8": (np.dtype(np.uint8), 4), "bgra8": (np.dtype(np.uint8), 4),
    "mono8": (np.dtype(np.uint8), 1), "8UC1": (np.dtype(np.uint8), 1),
    "mono16": (np.dtype(np.uint16), 1), "16UC1": (np.dtype(np.uint16), 1),
    "32FC1": (np.dtype(np.float32), 1),
}


class MessageError(ValueError):
    """A message cannot be built or decoded; the message names the field and the problem."""


def stamp_from_ns(stamp_ns: int) -> object:
    """builtin_interfaces/Time of an integer nanosecond stamp."""
    if stamp_ns < 0:
        raise MessageError(f"stamp: {stamp_ns} ns is negative")
    sec, nanosec = divmod(int(stamp_ns), NS_PER_S)
    return _Time(sec=sec, nanosec=nanosec)


def ns_from_stamp(stamp: object) -> int:
    """Integer nanoseconds of a builtin_interfaces/Time."""
    return int(stamp.sec) * NS_PER_S + int(stamp.nanosec)


def header(stamp_ns: int, frame_id: str) -> object:
    return _Header(stamp=stamp_from_ns(stamp_ns), frame_id=frame_id)


def _default_encoding(array: np.ndarray) -> str:
    if array.dtype == np.uint8 and array.ndim == 3 and array.shape[2] == 3:
        return "rgb8"
    if array.dtype == np.uint8 and array.ndim == 3 and array.shape[2] == 4:
        return "rgba8"
    if array.dtype == np.uint8 and array.ndim == 2:
        return "mono8"
    if array.dtype == np.uint16 and array.ndim == 2:
        return "16UC1"
    if array.dtype == np.float32 and array.ndim == 2:
        return "32FC1"
    raise MessageError(f"image: no default encoding for a {array.dtype} array of shape {array.shape}")


def image_msg(array: np.ndarray, stamp_ns: int, frame_id: str, encoding: str | None = None) -> object:
    """sensor_msgs/Image of an (H, W[, C]) array; encoding defaults from dtype and channels (rgb8 for RGB)."""
    array = np.asarray(array)
    encoding = encoding or _default_encoding(array)
    if encoding not in ENCODINGS:
        raise MessageError(f"image: unsupported encoding {encoding!r}; supported: {sorted(ENCODINGS)}")
    dtype, channels = ENCODINGS[encoding]
    shape_ok = array.ndim == 2 if channels == 1 else (array.ndim == 3 and array.shape[2] == channels)
    if array.dtype != dtype or not shape_ok:
        raise MessageError(f"image: encoding {encoding} needs {dtype} with {channels} channel(s), got "
                           f"{array.dtype} of shape {array.shape}")
    height, width = array.shape[:2]
    data = np.ascontiguousarray(array).view(np.uint8).reshape(-1)
    return _Image(header=header(stamp_ns, frame_id), height=height, width=width, encoding=encoding,
                  is_bigendian=int(sys.byteorder == "big" and dtype.itemsize > 1),
                  step=width * channels * dtype.itemsize, data=data)


def image_array(msg: object) -> np.ndarray:
    """The pixels of a sensor_msgs/Image as (H, W[, C]) in the channel order of its encoding (a view)."""
    if msg.encoding not in ENCODINGS:
        raise MessageError(f"image: unsupported encoding {msg.encoding!r}; supported: {sorted(ENCODINGS)}")
    dtype, channels = ENCODINGS[msg.encoding]
    row_bytes = msg.width * channels * dtype.itemsize
    data = np.asarray(msg.data, dtype=np.uint8)
    if msg.height == 0 or msg.width == 0 or msg.step < row_bytes or data.size != msg.step * msg.height:
        raise MessageError(f"image: {msg.width}x{msg.height} {msg.encoding} with step {msg.step} does not "
                           f"match {data.size} data bytes")
    rows = data.reshape(msg.height, msg.step)[:, :row_bytes]
    big = bool(msg.is_bigendian) and dtype.itemsize > 1
    pixels = np.ascontiguousarray(rows).view(dtype.newbyteorder(">") if big else dtype)
    pixels = pixels.astype(dtype, copy=False)
    return pixels.reshape(msg.height, msg.width) if channels == 1 else \
        pixels.reshape(msg.height, msg.width, channels)


def image_rgb(msg: object) -> np.ndarray:
    """An 8-bit colour or mono sensor_msgs/Image as (H, W, 3) uint8 RGB."""
    pixels = image_array(msg)
    if msg.encoding == "rgb8":
        return pixels
    if msg.encoding in ("bgr8", "bgra8"):
        return np.ascontiguousarray(pixels[..., 2::-1])
    if msg.encoding == "rgba8":
        return np.ascontiguousarray(pixels[..., :3])
    if msg.encoding in ("mono8", "8UC1"):
        return np.repeat(pixels[..., None], 3, axis=2)
    raise MessageError(f"image: encoding {msg.encoding} is not an 8-bit colour or mono image")


def camera_info_msg(K: np.ndarray, width: int, height: int, stamp_ns: int, frame_id: str) -> object:
    """sensor_msgs/CameraInfo of an undistorted pinhole camera (plumb_bob, zero distortion)."""
    K = np.asarray(K, dtype=np.float64)
    if K.shape != (3, 3) or K[0, 0] <= 0 or K[1, 1] <= 0 or not np.all(np.isfinite(K)):
        raise MessageError(f"camera_info: K must be a finite 3x3 pinhole matrix, got {K.tolist()}")
    P = np.zeros((3, 4))
    P[:, :3] = K
    return _CameraInfo(header=header(stamp_ns, frame_id), height=int(height), width=int(width),
                       distortion_model="plumb_bob", d=np.zeros(5), k=K.reshape(-1).copy(),
                       r=np.eye(3).reshape(-1), p=P.reshape(-1), binning_x=0, binning_y=0,
                       roi=_RegionOfInterest(x_offset=0, y_offset=0, height=0, width=0, do_rectify=False))


def intrinsics_from_camera_info(msg: object) -> np.ndarray:
    """K (3x3 float64) of a sensor_msgs/CameraInfo."""
    K = np.asarray(msg.k, dtype=np.float64).reshape(3, 3)
    if K[0, 0] <= 0 or K[1, 1] <= 0 or K[2, 2] != 1.0:
        raise MessageError(f"camera_info: K {K.reshape(-1).tolist()} is not a pinhole matrix")
    return K
