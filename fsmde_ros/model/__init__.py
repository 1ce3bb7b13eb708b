"""The student network: configuration profiles, the bin-head network, checkpoints.

Names load lazily, so ``fsmde_ros.model.config`` and ``fsmde_ros.model.contract`` (all the inference
backends need) import without torch, which only training and export require.
"""

from importlib import import_module

_EXPORTS = {
    "CheckpointError": "checkpoint",
    "load_student": "checkpoint",
    "save_student": "checkpoint",
    "ModelConfig": "config",
    "ModelConfigError": "config",
    "load_profile": "config",
    "DeployStudent": "student",
    "StudentNet": "student",
    "StudentOutput": "student",
    "build_student": "student",
    "images_to_tensor": "student",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f"{__name__}.{_EXPORTS[name]}"), name)
