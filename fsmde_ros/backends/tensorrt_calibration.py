"""int8 calibration for the native TensorRT backend: camera-set sources, batch stream, entropy calibrator.

A calibration batch is one full input tensor: N camera images of the model's input size, uint8 RGB,
exactly what the node feeds at run time (normalisation happens inside the graph). Sources: image
files grouped N at a time, a surround-camera bag (``fsmde_ros.bagio`` layout), or any iterable of
(N, H, W, 3) arrays such as ``(sample.images for sample in dataset)``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import cv2
import numpy as np

from fsmde_ros.backends.base import BackendError

LOG = logging.getLogger(__name__)


class CalibrationBatchStream:
    """Up to ``max_batches`` uint8 (N, H, W, 3) batches resized to the model input, from camera sets."""

    def __init__(self, sets: Iterable[np.ndarray], input_shape: tuple[int, int, int, int],
                 max_batches: int = 64, source: str = "calibration images"):
        if max_batches < 1:
            raise BackendError(f"{source}: max_batches must be >= 1, got {max_batches}")
        self.sets = sets
        self.input_shape = tuple(input_shape)
        self.max_batches = max_batches
        self.source = source

    def __iter__(self) -> Iterator[np.ndarray]:
        n, height, width, _ = self.input_shape
        count = 0
        for index, images in enumerate(self.sets):
            if count == self.max_batches:
                break
            if not isinstance(images, np.ndarray) or images.dtype != np.uint8 or images.ndim != 4 \
                    or images.shape[-1] != 3:
                raise BackendError(f"{self.source}: set {index} is not uint8 (N, H, W, 3) RGB "
                                   f"(got {getattr(images, 'dtype', type(images).__name__)} "
                                   f"{getattr(images, 'shape', '')})")
            if images.shape[0] != n:
                raise BackendError(f"{self.source}: set {index} has {images.shape[0]} images, the model "
                                   f"takes {n} cameras")
            if images.shape[1:3] != (height, width):
                images = np.stack([cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)
                                   for image in images])
            count += 1
            yield np.ascontiguousarray(images)
        if count == 0:
            raise BackendError(f"{self.source}: no calibration images")


def image_sets_from_files(paths: Sequence[str | Path], num_cameras: int) -> Iterator[np.ndarray]:
    """Sets of ``num_cameras`` consecutive image files (in the given order) as uint8 RGB arrays."""
    if len(paths) % num_cameras:
        raise BackendError(f"{len(paths)} calibration image files do not split into sets of "
                           f"{num_cameras} cameras")
    for start in range(0, len(paths), num_cameras):
        images = []
        for path in paths[start:start + num_cameras]:
            bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
            if bgr is None:
                raise BackendError(f"{path}: not a readable image")
            images.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
        shapes = {image.shape for image in images}
        if len(shapes) != 1:
            raise BackendError(f"{paths[start]}...: images of one set differ in size {sorted(shapes)}")
        yield np.stack(images)


def image_sets_from_bag(bag_path: str | Path, camera_names: Sequence[str],
                        namespace: str = "/cameras") -> Iterator[np.ndarray]:
    """Sets of one image per camera from a surround-camera bag, the k-th image of every camera together."""
    from fsmde_ros.bagio import camera_topics, deserialize, image_rgb, read_messages

    topics = {camera_topics(name, namespace)[0]: i for i, name in enumerate(camera_names)}
    pending: list[list[np.ndarray]] = [[] for _ in camera_names]
    for message in read_messages(bag_path, topics):
        pending[topics[message.topic]].append(image_rgb(deserialize(message)))
        if all(pending):
            images = [queue.pop(0) for queue in pending]
            if len({image.shape for image in images}) != 1:
                raise BackendError(f"{bag_path}: camera images of one set differ in size")
            yield np.stack(images)


def make_entropy_calibrator(stream: CalibrationBatchStream | None, cache_path: Path):
    """A ``tensorrt.IInt8EntropyCalibrator2`` fed from ``stream`` that reads/writes ``cache_path``.

    Given a stream, calibration runs on its batches and (re)writes the cache; without one, TensorRT
    takes the scales from the existing cache and asks for no batches.
    """
    from fsmde_ros.backends.tensorrt_engine import import_tensorrt

    trt, cuda = import_tensorrt()
    if stream is None and not cache_path.is_file():
        raise BackendError(f"{cache_path}: int8 needs calibration images (a bag, image files or a dataset) "
                           "or an existing calibration cache")

    class EntropyCalibrator(trt.IInt8EntropyCalibrator2):
        def __init__(self):
            trt.IInt8EntropyCalibrator2.__init__(self)
            self.batches = iter(stream) if stream is not None else iter(())
            self.host = None if stream is None else cuda.pagelocked_empty(stream.input_shape, np.uint8)
            self.device = None if stream is None else cuda.mem_alloc(self.host.nbytes)
            self.count = 0

        def get_batch_size(self):
            return 1  # explicit-batch network: each batch is one whole (N, H, W, 3) input tensor

        def get_batch(self, names):
            try:
                batch = next(self.batches)
            except StopIteration:
                LOG.info("int8 calibration used %d batches", self.count)
                return None
            np.copyto(self.host, batch)
            cuda.memcpy_htod(self.device, self.host)
            self.count += 1
            return [int(self.device)]

        def read_calibration_cache(self):
            if stream is None:
                LOG.info("int8 scales from calibration cache %s", cache_path)
                return cache_path.read_bytes()
            return None

        def write_calibration_cache(self, cache):
            cache_path.parent.mkdir(parents=True, exist_ok=True)
            cache_path.write_bytes(bytes(cache))

    return EntropyCalibrator()
