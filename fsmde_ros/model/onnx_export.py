"""torch -> ONNX export of the deployed student, with metadata and a parity check against torch."""

from __future__ import annotations

import json
import logging
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from fsmde_ros.model.checkpoint import weights_sha256
from fsmde_ros.model.config import ModelConfig
from fsmde_ros.model.contract import INPUT_NAME, ONNX_FORMAT, OUTPUT_NAMES
from fsmde_ros.model.student import DeployStudent, StudentNet

LOG = logging.getLogger(__name__)

MIN_OPSET = 17
PARITY_TOLERANCE = 1e-4
"""Largest relative error (see ``relative_error``) allowed per output."""


class ExportError(RuntimeError):
    """Export failed or the exported graph does not reproduce torch."""


@dataclass
class ExportReport:
    path: Path
    metadata: dict[str, str]
    parity: dict[str, float]  # output name -> relative error against torch (empty when not checked)


def onnx_metadata(config: ModelConfig, weights_hash: str, dynamic_batch: bool, opset: int,
                  source: str) -> dict[str, str]:
    """Metadata properties stored in every exported graph (all strings, read by the backends)."""
    return {
        "fsmde_format": ONNX_FORMAT,
        "fsmde_model_config": config.to_json(),
        "profile": config.profile,
        "input_height": str(config.input_height),
        "input_width": str(config.input_width),
        "num_cameras": str(config.num_cameras),
        "dynamic_batch": json.dumps(dynamic_batch),
        "min_depth": repr(config.min_depth),
        "max_depth": repr(config.max_depth),
        "num_bins": str(config.num_bins),
        "weights_sha256": weights_hash,
        "opset": str(opset),
        "source": source,
        "input_layout": "uint8 RGB (N, H, W, 3)",
        "outputs": "depth (N,H,W) m; confidence (N,H,W); probabilities (N,H,W,K); bin_centres (N,K) m",
    }


def export_onnx(model: StudentNet, path: str | Path, num_cameras: int | None = None,
                dynamic_batch: bool = False, opset: int = MIN_OPSET, check_parity: bool = True,
                source: str = "", provenance: dict[str, str] | None = None) -> ExportReport:
    """Export ``model`` for uint8 input (num_cameras, H, W, 3); run the parity check unless disabled.

    ``provenance`` (e.g. a checkpoint's training metadata) is stored as ``checkpoint.<key>`` properties.
    """
    import onnx

    if opset < MIN_OPSET:
        raise ExportError(f"opset {opset} is below the supported minimum {MIN_OPSET}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    config = model.config if num_cameras is None else model.config.with_cameras(num_cameras)
    model = model.eval()
    deploy = DeployStudent(model).eval()
    example = torch.zeros(config.input_shape, dtype=torch.uint8)
    dynamic_axes = None
    if dynamic_batch:
        dynamic_axes = {INPUT_NAME: {0: "num_images"}}
        dynamic_axes.update({name: {0: "num_images"} for name in OUTPUT_NAMES})
    # The bin count is static, so the tracer's note about turning it into a constant is expected; the
    # TorchScript exporter (dynamo=False) is chosen on purpose, so its deprecation notice is too.
    with torch.inference_mode(), warnings.catch_warnings():
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(deploy, (example,), str(path), input_names=[INPUT_NAME],
                          output_names=list(OUTPUT_NAMES), opset_version=opset,
                          dynamic_axes=dynamic_axes, do_constant_folding=True, dynamo=False)
    graph = onnx.load(str(path))
    metadata = onnx_metadata(config, weights_sha256(model), dynamic_batch, opset, source)
    metadata.update({f"checkpoint.{key}": str(value) for key, value in (provenance or {}).items()})
    del graph.metadata_props[:]
    for key, value in metadata.items():
        graph.metadata_props.add(key=key, value=value)
    graph.doc_string = "fsmde_ros student network (surround monocular depth), bin head, uint8 RGB input"
    onnx.checker.check_model(graph)
    onnx.save(graph, str(path))
    parity = parity_check(model, path, config.num_cameras) if check_parity else {}
    LOG.info("exported %s (%s, %d cameras, parity %s)", path, config.profile, config.num_cameras, parity)
    return ExportReport(path=path, metadata=metadata, parity=parity)


def parity_check(model: StudentNet, onnx_path: str | Path, num_cameras: int, seed: int = 0,
                 tolerance: float = PARITY_TOLERANCE) -> dict[str, float]:
    """Relative error of each ORT CPU output against torch on random images; raises above tolerance."""
    import onnxruntime as ort

    config = model.config
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (num_cameras, config.input_height, config.input_width, 3), dtype=np.uint8)
    with torch.inference_mode():
        expected = [t.numpy() for t in DeployStudent(model.eval())(torch.from_numpy(images))]
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    actual = session.run(list(OUTPUT_NAMES), {INPUT_NAME: images})
    errors = {name: relative_error(got, want)
              for name, got, want in zip(OUTPUT_NAMES, actual, expected, strict=True)}
    bad = {name: err for name, err in errors.items() if not err <= tolerance}
    if bad:
        raise ExportError(f"{onnx_path}: ONNX Runtime output differs from torch beyond {tolerance:g}: {bad}")
    return errors


def relative_error(actual: np.ndarray, expected: np.ndarray) -> float:
    """max |actual - expected| / max(max |expected|, 1) (inf on a shape mismatch, NaN if either has NaN).

    The floor of 1 keeps outputs whose range is [0, 1] (confidence, probabilities) from turning float32
    rounding into a large ratio when an untrained net makes them all tiny.
    """
    if actual.shape != expected.shape:
        return float("inf")
    scale = max(float(np.max(np.abs(expected))), 1.0)
    return float(np.max(np.abs(actual.astype(np.float64) - expected)) / scale)
