"""torch backend: runs a safetensors student checkpoint eagerly (evaluation during training)."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from fsmde_ros.backends.base import BackendError, DepthBackend, InferenceResult
from fsmde_ros.backends.checks import check_images, check_result

LOG = logging.getLogger(__name__)


class TorchBackend(DepthBackend):
    """Eager torch inference of a student, from a checkpoint file or an in-memory ``StudentNet``."""

    def __init__(self, model, num_cameras: int | None = None, input_size: tuple[int, int] | None = None,
                 device: str = "cpu", threads: int | None = None):
        import torch

        from fsmde_ros.model.checkpoint import CheckpointError, load_student
        from fsmde_ros.model.student import DeployStudent

        if isinstance(model, (str, Path)):
            self.source = str(model)
            try:
                model, _ = load_student(model, map_location="cpu")
            except CheckpointError as exc:
                raise BackendError(str(exc)) from exc
        else:
            self.source = f"in-memory {type(model).__name__}"
        config = model.config
        size = (config.input_height, config.input_width)
        if input_size is not None and tuple(input_size) != size:
            raise BackendError(f"{self.source}: model input is {size[0]}x{size[1]} (HxW), the caller "
                               f"expects {input_size[0]}x{input_size[1]}")
        if device.startswith("cuda") and not torch.cuda.is_available():
            raise BackendError(f"{self.source}: torch device '{device}' requested but CUDA is not available")
        if threads is not None:
            torch.set_num_threads(threads)
        self._torch = torch
        self.device = torch.device(device)
        self.deploy = DeployStudent(model.eval()).to(self.device).eval()
        # A checkpoint has no batch size: the caller's camera count wins, else the profile's.
        n = config.num_cameras if num_cameras is None else num_cameras
        self._input_shape = (n, *size, 3)
        self.name = f"torch-{self.device.type}"
        LOG.info("%s: %s, input %s", self.name, self.source, self._input_shape)

    @property
    def input_shape(self) -> tuple[int, int, int, int]:
        return self._input_shape

    def infer(self, images: np.ndarray, with_probabilities: bool = False) -> InferenceResult:
        images = check_images(images, self._input_shape, f"{self.source} ({self.name})")
        with self._torch.inference_mode():
            depth, confidence, probs, centres = self.deploy(self._torch.from_numpy(images).to(self.device))
        result = InferenceResult(depth.cpu().numpy(), confidence.cpu().numpy())
        if with_probabilities:
            result.probabilities = probs.cpu().numpy()
            result.bin_centres = centres.cpu().numpy()
        return check_result(result, f"{self.source} ({self.name})")
