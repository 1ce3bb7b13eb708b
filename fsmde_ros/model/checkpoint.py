"""Student checkpoints: safetensors weights with the model configuration in the metadata (no pickle)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch

from fsmde_ros.model.config import ModelConfig, ModelConfigError
from fsmde_ros.model.student import StudentNet

CONFIG_KEY = "fsmde_model_config"
FORMAT_KEY = "fsmde_format"
FORMAT = "fsmde-student-v1"


class CheckpointError(RuntimeError):
    """A checkpoint is missing, corrupt or does not match what the caller expects."""


def weights_sha256(model: StudentNet) -> str:
    """Hash of the state dict (names, dtypes, shapes and bytes), stable across save/load."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        tensor = tensor.detach().cpu().contiguous()
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def save_student(model: StudentNet, path: str | Path, extra_metadata: dict[str, str] | None = None) -> Path:
    """Write ``model`` to ``path`` (.safetensors) with its config and any string metadata."""
    from safetensors.torch import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    metadata = {str(k): str(v) for k, v in (extra_metadata or {}).items()}
    metadata.update({FORMAT_KEY: FORMAT, CONFIG_KEY: model.config.to_json(),
                     "weights_sha256": weights_sha256(model)})
    tensors = {name: t.detach().cpu().contiguous() for name, t in model.state_dict().items()}
    save_file(tensors, str(path), metadata=metadata)
    return path


def read_metadata(path: str | Path) -> dict[str, str]:
    """The string metadata of a student checkpoint, validated to be one."""
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint file not found")
    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
    except Exception as exc:  # safetensors raises its own SafetensorError / OSError on corrupt headers
        raise CheckpointError(f"{path}: not a readable safetensors file ({exc})") from exc
    if metadata.get(FORMAT_KEY) != FORMAT or CONFIG_KEY not in metadata:
        raise CheckpointError(f"{path}: not an fsmde_ros student checkpoint (metadata lacks '{CONFIG_KEY}')")
    return metadata


def load_student(path: str | Path, expected: ModelConfig | None = None,
                 map_location: str = "cpu") -> tuple[StudentNet, dict[str, str]]:
    """Load a student and its metadata; with ``expected``, raise unless the stored config equals it.

    The model is returned in eval mode.
    """
    from safetensors.torch import load_file

    path = Path(path)
    metadata = read_metadata(path)
    try:
        config = ModelConfig.from_json(metadata[CONFIG_KEY], f"{path} metadata '{CONFIG_KEY}'")
    except ModelConfigError as exc:
        raise CheckpointError(str(exc)) from exc
    if expected is not None and config != expected:
        diffs = [f"{name}: file {getattr(config, name)!r} != expected {getattr(expected, name)!r}"
                 for name in config.__dataclass_fields__ if getattr(config, name) != getattr(expected, name)]
        raise CheckpointError(f"{path}: model configuration does not match ({'; '.join(diffs)})")
    try:
        tensors = load_file(str(path), device=map_location)
    except Exception as exc:
        raise CheckpointError(f"{path}: cannot read tensors ({exc})") from exc
    model = StudentNet(config)
    try:
        result = model.load_state_dict(tensors, strict=False)
    except RuntimeError as exc:  # shape mismatches
        raise CheckpointError(f"{path}: weights do not fit the stored configuration ({exc})") from exc
    if result.missing_keys or result.unexpected_keys:
        raise CheckpointError(f"{path}: weights do not fit the stored configuration "
                              f"(missing {result.missing_keys[:5]}, unexpected {result.unexpected_keys[:5]})")
    stored_hash = metadata.get("weights_sha256")
    if stored_hash is not None and stored_hash != weights_sha256(model):
        raise CheckpointError(f"{path}: weights hash does not match the stored 'weights_sha256' "
                              "(corrupt file)")
    return model.eval(), metadata
