"""The student network: configuration profiles, the bin-head network, checkpoints."""

from fsmde_ros.model.checkpoint import CheckpointError, load_student, save_student
from fsmde_ros.model.config import ModelConfig, ModelConfigError, load_profile
from fsmde_ros.model.student import DeployStudent, StudentNet, StudentOutput, build_student, images_to_tensor

__all__ = [
    "CheckpointError",
    "DeployStudent",
    "ModelConfig",
    "ModelConfigError",
    "StudentNet",
    "StudentOutput",
    "build_student",
    "images_to_tensor",
    "load_profile",
    "load_student",
    "save_student",
]
