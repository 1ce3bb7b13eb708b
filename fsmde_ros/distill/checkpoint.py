"""Safetensors files of training: teacher weights and resumable training state (never pickle).

A training state holds the model (``model.*``), the optimizer's tensors (``optim.<param>.<name>``)
and JSON metadata (step, optimizer param groups, recipe). The student's deployable weights are
written with ``fsmde_ros.model.save_student`` so ``fsmde-export`` and the node read them.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch


class TrainCheckpointError(RuntimeError):
    """A training checkpoint is missing, corrupt or does not fit the model; the message names the file."""


def save_weights(path: str | Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str]) -> Path:
    """Write tensors and string metadata atomically (temporary file, then rename)."""
    from safetensors.torch import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    save_file(
        {k: v.detach().cpu().contiguous() for k, v in tensors.items()},
        str(tmp),
        metadata={str(k): str(v) for k, v in metadata.items()},
    )
    tmp.replace(path)
    return path


def load_weights(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Tensors and metadata of a safetensors file."""
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise TrainCheckpointError(f"{path}: checkpoint file not found")
    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = dict(handle.metadata() or {})
            tensors = {k: handle.get_tensor(k) for k in handle.keys()}  # noqa: SIM118 - safe_open has no iterator
    except Exception as exc:  # safetensors raises SafetensorError / OSError on corrupt files
        raise TrainCheckpointError(f"{path}: not a readable safetensors file ({exc})") from exc
    return tensors, metadata


def save_training_state(
    path: str | Path,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    step: int,
    metadata: dict[str, str],
) -> Path:
    """Model, optimizer and step, resumable with ``load_training_state``."""
    tensors = {f"model.{k}": v for k, v in model.state_dict().items()}
    opt = optimizer.state_dict()
    for index, state in opt["state"].items():
        for name, value in state.items():
            tensors[f"optim.{index}.{name}"] = torch.as_tensor(value)
    meta = dict(metadata)
    meta.update({"step": str(step), "param_groups": json.dumps(opt["param_groups"])})
    return save_weights(path, tensors, meta)


def load_training_state(
    path: str | Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer
) -> tuple[int, dict[str, str]]:
    """Restore model and optimizer in place from ``path``; returns (step, metadata)."""
    tensors, meta = load_weights(path)
    try:
        step = int(meta["step"])
        groups = json.loads(meta["param_groups"])
    except (KeyError, ValueError) as exc:
        raise TrainCheckpointError(
            f"{path}: not a training state (metadata lacks step/param_groups)"
        ) from exc
    model_state = {k[len("model.") :]: v for k, v in tensors.items() if k.startswith("model.")}
    try:
        model.load_state_dict(model_state, strict=True)
    except RuntimeError as exc:
        raise TrainCheckpointError(f"{path}: model weights do not fit this recipe's model ({exc})") from exc
    state: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in tensors.items():
        if key.startswith("optim."):
            _, index, name = key.split(".", 2)
            state.setdefault(int(index), {})[name] = value
    try:
        optimizer.load_state_dict({"state": state, "param_groups": groups})
    except (ValueError, KeyError) as exc:
        raise TrainCheckpointError(f"{path}: optimizer state does not fit this recipe ({exc})") from exc
    return step, meta
