"""What an exported student graph declares about itself (ONNX metadata), validated against its I/O."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from fsmde_ros.backends.base import BackendError
from fsmde_ros.model.config import ModelConfig, ModelConfigError
from fsmde_ros.model.contract import INPUT_NAME, ONNX_FORMAT, OUTPUT_NAMES


@dataclass(frozen=True)
class ModelInfo:
    """Contract of one exported student: its configuration and the batch it takes."""

    path: Path
    config: ModelConfig
    weights_sha256: str
    dynamic_batch: bool
    provenance: dict[str, str]  # the exported checkpoint's metadata ('checkpoint.<key>' properties)

    def input_shape(self, num_cameras: int | None = None) -> tuple[int, int, int, int]:
        """(N, H, W, 3); N may differ from the exported one only for a dynamic-batch graph."""
        n = self.config.num_cameras if num_cameras is None else num_cameras
        return n, self.config.input_height, self.config.input_width, 3

    def check_expected(self, num_cameras: int | None, input_size: tuple[int, int] | None) -> None:
        """Raise BackendError unless the model takes ``num_cameras`` images of ``input_size`` (H, W)."""
        if num_cameras is not None and num_cameras != self.config.num_cameras and not self.dynamic_batch:
            raise BackendError(f"{self.path}: model was exported for {self.config.num_cameras} cameras "
                               f"(static batch), the caller expects {num_cameras}")
        size = (self.config.input_height, self.config.input_width)
        if input_size is not None and tuple(input_size) != size:
            raise BackendError(f"{self.path}: model input is {size[0]}x{size[1]} (HxW), the caller expects "
                               f"{input_size[0]}x{input_size[1]}")


def info_from_metadata(path: Path, metadata: dict[str, str]) -> ModelInfo:
    """Parse and cross-check the metadata properties written by ``fsmde-export``."""
    if metadata.get("fsmde_format") != ONNX_FORMAT:
        raise BackendError(f"{path}: not an fsmde_ros student graph (metadata 'fsmde_format' is "
                           f"{metadata.get('fsmde_format')!r}, expected {ONNX_FORMAT!r})")
    try:
        config = ModelConfig.from_json(metadata.get("fsmde_model_config", ""), f"{path} metadata")
        dynamic_batch = json.loads(metadata.get("dynamic_batch", "false"))
    except (ModelConfigError, json.JSONDecodeError) as exc:
        raise BackendError(f"{path}: invalid metadata ({exc})") from exc
    flat = {"input_height": config.input_height, "input_width": config.input_width,
            "num_cameras": config.num_cameras, "num_bins": config.num_bins,
            "min_depth": config.min_depth, "max_depth": config.max_depth, "profile": config.profile}
    for key, value in flat.items():
        stored = metadata.get(key)
        if stored is None or stored != (repr(value) if isinstance(value, float) else str(value)):
            raise BackendError(f"{path}: metadata '{key}' = {stored!r} contradicts the stored model "
                               f"configuration ({value!r})")
    provenance = {key.removeprefix("checkpoint."): value for key, value in metadata.items()
                  if key.startswith("checkpoint.")}
    return ModelInfo(path=path, config=config, weights_sha256=metadata.get("weights_sha256", ""),
                     dynamic_batch=bool(dynamic_batch), provenance=provenance)


def check_graph_io(info: ModelInfo, inputs: list[tuple[str, str, list]], outputs: list[str]) -> None:
    """Check the graph's inputs [(name, element type, shape)] and output names against the metadata."""
    if len(inputs) != 1 or inputs[0][0] != INPUT_NAME:
        raise BackendError(f"{info.path}: graph inputs {[i[0] for i in inputs]} != ['{INPUT_NAME}']")
    _, element_type, shape = inputs[0]
    if element_type not in ("tensor(uint8)", "uint8"):
        raise BackendError(f"{info.path}: input '{INPUT_NAME}' has type {element_type}, expected uint8")
    expected = list(info.input_shape())
    static = [dim if isinstance(dim, int) else None for dim in shape]
    if info.dynamic_batch:
        static[0] = expected[0] = None
    if static != expected:
        raise BackendError(f"{info.path}: input '{INPUT_NAME}' has shape {shape}, metadata says {expected}")
    missing = [name for name in OUTPUT_NAMES if name not in outputs]
    if missing:
        raise BackendError(f"{info.path}: graph lacks output(s) {missing}")


def read_onnx_info(path: str | Path) -> ModelInfo:
    """ModelInfo of an ONNX file, read with ONNX Runtime (a CPU session without graph optimisation)."""
    session = open_session_for_metadata(Path(path))
    return info_from_session(Path(path), session)


def info_from_session(path: Path, session) -> ModelInfo:
    """ModelInfo of an open ``onnxruntime.InferenceSession`` (metadata and I/O cross-checked)."""
    info = info_from_metadata(path, session.get_modelmeta().custom_metadata_map)
    check_graph_io(info, [(i.name, i.type, list(i.shape)) for i in session.get_inputs()],
                   [o.name for o in session.get_outputs()])
    return info


def open_session_for_metadata(path: Path):
    import onnxruntime as ort

    check_model_file(path)
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    return create_session(path, options, ["CPUExecutionProvider"])


def check_model_file(path: Path) -> None:
    if not path.exists():
        raise BackendError(f"{path}: model file not found")
    if not path.is_file():
        raise BackendError(f"{path}: model path is not a file")


def create_session(path: Path, options, providers: list):
    """An ``onnxruntime.InferenceSession``; ORT's load errors become BackendError naming the file."""
    import onnxruntime as ort

    try:
        return ort.InferenceSession(str(path), options, providers=providers)
    except Exception as exc:  # ORT raises its own Fail / InvalidProtobuf / InvalidGraph types
        raise BackendError(f"{path}: cannot load as an ONNX model ({type(exc).__name__}: {exc})") from exc
