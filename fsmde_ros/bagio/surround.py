"""Surround-camera bags: one sensor_msgs/Image and one CameraInfo per camera and frame.

Topic layout (what ``fsmde-synth --bag`` writes and the node's default configuration reads):
``<namespace>/<CAMERA>/image_raw`` (rgb8) and ``<namespace>/<CAMERA>/camera_info``, with
``namespace`` = ``/cameras`` and CAMERA the rig's camera name (e.g. ``/cameras/CAM_FRONT/image_raw``).
The header ``frame_id`` of both is the camera name; the header stamp is the camera's own capture
time, and the log time of a message is its capture time plus ``transport_delay_ns`` (the image and
its CameraInfo share stamp and log time, CameraInfo first).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np

from fsmde_ros.bagio.bag import BagError, BagInfo, BagWriter, bag_info
from fsmde_ros.bagio.messages import CAMERA_INFO, IMAGE, camera_info_msg, image_msg
from fsmde_ros.datasets.sample import SurroundSample

DEFAULT_NAMESPACE = "/cameras"


def camera_topics(camera: str, namespace: str = DEFAULT_NAMESPACE) -> tuple[str, str]:
    """(image topic, camera_info topic) of one camera."""
    base = f"{namespace.rstrip('/')}/{camera}"
    return f"{base}/image_raw", f"{base}/camera_info"


def write_surround_frame(writer: BagWriter, sample: SurroundSample, namespace: str = DEFAULT_NAMESPACE,
                         transport_delay_ns: int = 0) -> None:
    """Append one sample's N images and CameraInfos to an open bag writer."""
    n, height, width = sample.images.shape[:3]
    if len(sample.camera_names) != n or sample.K.shape != (n, 3, 3) or sample.stamps_ns.shape != (n,):
        raise BagError(f"{writer.path}: sample {sample.sequence}/{sample.frame_index} has {n} images but "
                       f"{len(sample.camera_names)} names, K {sample.K.shape}, "
                       f"stamps {sample.stamps_ns.shape}")
    for name, image, K, stamp in sorted(zip(sample.camera_names, sample.images, sample.K, sample.stamps_ns,
                                            strict=True), key=lambda item: int(item[3])):
        image_topic, info_topic = camera_topics(name, namespace)
        log_ns = int(stamp) + transport_delay_ns
        writer.write(info_topic, camera_info_msg(K, width, height, int(stamp), name), log_ns)
        writer.write(image_topic, image_msg(np.ascontiguousarray(image), int(stamp), name, "rgb8"), log_ns)


def write_surround_bag(path: str | Path, samples: Iterable[SurroundSample], storage: str = "mcap",
                       namespace: str = DEFAULT_NAMESPACE, transport_delay_ns: int = 0) -> BagInfo:
    """Write samples (in time order) as a new surround-camera bag; returns what was written."""
    with BagWriter(path, storage) as writer:
        count = 0
        for sample in samples:
            write_surround_frame(writer, sample, namespace, transport_delay_ns)
            count += 1
    if count == 0:
        raise BagError(f"{path}: no samples to write")
    return bag_info(path)


def surround_topic_types(camera_names: Iterable[str], namespace: str = DEFAULT_NAMESPACE) -> dict[str, str]:
    """topic -> msgtype of every topic a surround bag of these cameras holds."""
    topics = {}
    for name in camera_names:
        image_topic, info_topic = camera_topics(name, namespace)
        topics[image_topic] = IMAGE
        topics[info_topic] = CAMERA_INFO
    return topics
