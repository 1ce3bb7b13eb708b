"""Inference backends behind one interface (``DepthBackend``), opened with ``create_backend``."""

from fsmde_ros.backends.base import BackendError, DepthBackend, InferenceResult
from fsmde_ros.backends.checks import InputError
from fsmde_ros.backends.factory import BACKEND_KINDS, PRECISIONS, backend_candidates, create_backend

__all__ = [
    "BACKEND_KINDS",
    "PRECISIONS",
    "BackendError",
    "DepthBackend",
    "InferenceResult",
    "InputError",
    "backend_candidates",
    "create_backend",
]
