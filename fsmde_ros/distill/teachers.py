"""Relative-depth teachers behind one interface, and an on-disk cache of their outputs.

Every teacher maps uint8 RGB images (N, H, W, 3) to relative disparity (N, H, W) float32 at the
input size: proportional to inverse depth up to an unknown positive scale and shift per image.
Metric depth comes only from aligning it to ground truth (``fsmde_ros.distill.alignment``).
"""

from __future__ import annotations

import hashlib
import json
import re
from abc import ABC, abstractmethod
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from fsmde_ros.backends.tensorrt_engine import file_sha256
from fsmde_ros.distill.teacher_net import IMAGENET_MEAN, IMAGENET_STD, TeacherConfig, TeacherNet


class TeacherError(RuntimeError):
    """A teacher cannot be loaded or run; the message names the file and the problem."""


def _check_images(images: np.ndarray) -> None:
    if (
        not isinstance(images, np.ndarray)
        or images.dtype != np.uint8
        or images.ndim != 4
        or images.shape[-1] != 3
    ):
        shape = getattr(images, "shape", None)
        dtype = getattr(images, "dtype", type(images).__name__)
        raise TeacherError(f"teacher input must be uint8 RGB (N, H, W, 3), got {dtype} {shape}")


def _normalised_nchw(images: np.ndarray, height: int, width: int) -> torch.Tensor:
    """ImageNet-normalised float32 (N, 3, height, width) from uint8 (N, H, W, 3)."""
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255.0
    if x.shape[-2:] != (height, width):
        x = F.interpolate(x, size=(height, width), mode="bicubic", align_corners=False).clamp(0, 1)
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    return (x - mean) / std


def _to_disparity(pred: torch.Tensor, output: str) -> torch.Tensor:
    if output == "disparity":
        return pred.clamp_min(0.0)
    return 1.0 / pred.clamp_min(1e-3)


class RelativeDepthTeacher(ABC):
    """A frozen relative-depth model."""

    @property
    @abstractmethod
    def identity(self) -> str:
        """A string that changes whenever the teacher's outputs would (names the cache directory)."""

    @abstractmethod
    def predict(self, images: np.ndarray) -> np.ndarray:
        """Relative disparity (N, H, W) float32 for uint8 RGB images (N, H, W, 3)."""


class DepthAnythingV2Teacher(RelativeDepthTeacher):
    """Depth Anything V2 (or any ``transformers`` depth-estimation model) from a local directory.

    ``input_size`` is the shorter side fed to the network (518 in the paper), rounded to the patch
    size 14. ``output`` says whether the model predicts disparity (the relative DA-V2 models) or
    depth (the metric ones, inverted here).
    """

    def __init__(self, model_dir: str | Path, input_size: int = 518, output: str = "disparity") -> None:
        model_dir = Path(model_dir)
        if not (model_dir / "config.json").is_file():
            raise TeacherError(f"{model_dir}: no config.json, not a transformers model directory")
        if output not in ("disparity", "depth"):
            raise TeacherError(f"{model_dir}: output must be 'disparity' or 'depth', got {output!r}")
        try:
            from transformers import AutoModelForDepthEstimation
        except ImportError as exc:
            raise TeacherError("the Depth Anything V2 teacher needs `pip install transformers`") from exc
        try:
            self.model = AutoModelForDepthEstimation.from_pretrained(
                str(model_dir), local_files_only=True
            ).eval()
        except (OSError, ValueError) as exc:
            raise TeacherError(f"{model_dir}: cannot load the depth model ({exc})") from exc
        self.model_dir, self.input_size, self.output = model_dir, int(input_size), output
        self._id = hashlib.sha256(
            (model_dir / "config.json").read_bytes() + f"{self.input_size}{output}".encode()
        ).hexdigest()[:12]

    @property
    def identity(self) -> str:
        return f"dav2-{self._id}"

    def _network_size(self, height: int, width: int) -> tuple[int, int]:
        scale = self.input_size / min(height, width)
        return max(14, round(height * scale / 14) * 14), max(14, round(width * scale / 14) * 14)

    @torch.no_grad()
    def predict(self, images: np.ndarray) -> np.ndarray:
        _check_images(images)
        H, W = images.shape[1:3]
        x = _normalised_nchw(images, *self._network_size(H, W))
        pred = self.model(pixel_values=x).predicted_depth  # (N, h, w)
        pred = F.interpolate(pred[:, None], size=(H, W), mode="bilinear", align_corners=False)[:, 0]
        return _to_disparity(pred, self.output).numpy().astype(np.float32)


class OnnxTeacher(RelativeDepthTeacher):
    """Any ONNX relative-depth model with one NCHW float image input, ImageNet-normalised, via ONNX Runtime.

    The network input size is read from the model when static, else ``input_size`` (H, W) must be
    given. Output (N, h, w) or (N, 1, h, w) is resized back to the image size.
    """

    def __init__(
        self,
        path: str | Path,
        input_size: tuple[int, int] | None = None,
        output: str = "disparity",
        threads: int = 2,
    ) -> None:
        import onnxruntime as ort

        path = Path(path)
        if not path.is_file():
            raise TeacherError(f"{path}: ONNX teacher file not found")
        if output not in ("disparity", "depth"):
            raise TeacherError(f"{path}: output must be 'disparity' or 'depth', got {output!r}")
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        try:
            self.session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        except Exception as exc:  # ORT raises its own exception types for corrupt files
            raise TeacherError(f"{path}: cannot load ONNX model ({exc})") from exc
        inputs = self.session.get_inputs()
        if len(inputs) != 1 or len(inputs[0].shape) != 4:
            raise TeacherError(
                f"{path}: expected one NCHW image input, got {[(i.name, i.shape) for i in inputs]}"
            )
        self.input_name = inputs[0].name
        shape = inputs[0].shape
        self.static_batch = shape[0] if isinstance(shape[0], int) else None
        if isinstance(shape[2], int) and isinstance(shape[3], int):
            self.input_size = (shape[2], shape[3])
        elif input_size is not None:
            self.input_size = (int(input_size[0]), int(input_size[1]))
        else:
            raise TeacherError(f"{path}: the model's input size is dynamic; give input_size (H, W)")
        self.path, self.output = path, output
        self._id = file_sha256(path)[:12]

    @property
    def identity(self) -> str:
        return f"onnx-{self._id}-{self.input_size[0]}x{self.input_size[1]}-{self.output}"

    def predict(self, images: np.ndarray) -> np.ndarray:
        _check_images(images)
        N, H, W, _ = images.shape
        x = _normalised_nchw(images, *self.input_size).numpy()
        chunks = [x[i : i + 1] for i in range(N)] if self.static_batch == 1 else [x]
        outs = [np.asarray(self.session.run(None, {self.input_name: c})[0], dtype=np.float32) for c in chunks]
        pred = torch.from_numpy(np.concatenate(outs))
        if pred.ndim == 4:
            pred = pred[:, 0]
        if pred.ndim != 3 or pred.shape[0] != N:
            raise TeacherError(f"{self.path}: expected output (N, h, w) with N={N}, got {tuple(pred.shape)}")
        pred = F.interpolate(pred[:, None], size=(H, W), mode="bilinear", align_corners=False)[:, 0]
        return _to_disparity(pred, self.output).numpy().astype(np.float32)


class SynthTeacher(RelativeDepthTeacher):
    """The project's ``TeacherNet`` from a safetensors file written by ``fsmde-train`` (kind: teacher)."""

    def __init__(self, path: str | Path, batch: int = 6) -> None:
        from fsmde_ros.distill.checkpoint import load_weights

        path = Path(path)
        tensors, meta = load_weights(path)
        if meta.get("kind") != "teacher":
            raise TeacherError(f"{path}: not a teacher checkpoint (kind={meta.get('kind')!r})")
        try:
            config = TeacherConfig.from_dict(json.loads(meta["model_config"]))
        except (KeyError, ValueError) as exc:
            raise TeacherError(f"{path}: bad teacher model_config metadata ({exc})") from exc
        self.model = TeacherNet(config).eval()
        missing, unexpected = self.model.load_state_dict(tensors, strict=False)
        if missing or unexpected:
            raise TeacherError(
                f"{path}: weights do not match the teacher config (missing {missing[:3]}, "
                f"unexpected {unexpected[:3]})"
            )
        self.batch = batch
        self._id = file_sha256(path)[:12]

    @property
    def identity(self) -> str:
        return f"synth-{self._id}"

    @torch.no_grad()
    def predict(self, images: np.ndarray) -> np.ndarray:
        _check_images(images)
        outs = [
            self.model(torch.from_numpy(images[i : i + self.batch]))
            for i in range(0, len(images), self.batch)
        ]
        return torch.cat(outs).numpy().astype(np.float32)


def build_teacher(spec: dict) -> RelativeDepthTeacher:
    """A teacher from a recipe mapping ``{type: synth|dav2|onnx, path: ..., ...}``."""
    if not isinstance(spec, dict) or "type" not in spec or "path" not in spec:
        raise TeacherError(f"teacher spec must be a mapping with 'type' and 'path', got {spec!r}")
    kind, path = spec["type"], spec["path"]
    if kind == "synth":
        return SynthTeacher(path)
    if kind == "dav2":
        return DepthAnythingV2Teacher(path, int(spec.get("input_size", 518)), spec.get("output", "disparity"))
    if kind == "onnx":
        size = spec.get("input_size")
        return OnnxTeacher(path, tuple(size) if size else None, spec.get("output", "disparity"))
    raise TeacherError(f"unknown teacher type {kind!r} (synth, dav2 or onnx)")


class TeacherCache:
    """Teacher disparity per sample, float16 .npy under ``root/<teacher identity>/<H>x<W>/``."""

    def __init__(self, root: str | Path, teacher_identity: str, height: int, width: int) -> None:
        self.dir = Path(root) / teacher_identity / f"{height}x{width}"
        self.shape = (height, width)

    @staticmethod
    def key(sequence: str, frame_index: int) -> str:
        safe = re.sub(r"[^A-Za-z0-9_.-]", "_", sequence) or "seq"
        return f"{safe}__{int(frame_index):06d}"

    def path(self, key: str) -> Path:
        return self.dir / f"{key}.npy"

    def has(self, key: str) -> bool:
        return self.path(key).is_file()

    def put(self, key: str, disparity: np.ndarray) -> None:
        if disparity.ndim != 3 or disparity.shape[1:] != self.shape:
            raise TeacherError(
                f"teacher cache {self.dir}: expected (N, {self.shape[0]}, {self.shape[1]}), "
                f"got {disparity.shape}"
            )
        self.dir.mkdir(parents=True, exist_ok=True)
        tmp = self.dir / f".{key}.tmp.npy"
        np.save(tmp, disparity.astype(np.float16))
        tmp.replace(self.path(key))

    def get(self, key: str) -> np.ndarray:
        path = self.path(key)
        try:
            arr = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise TeacherError(f"{path}: unreadable teacher cache entry ({exc})") from exc
        if arr.ndim != 3 or arr.shape[1:] != self.shape:
            raise TeacherError(f"{path}: cached shape {arr.shape} does not match {self.shape}")
        return arr.astype(np.float32)
