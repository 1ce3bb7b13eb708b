"""I/O contract of the deployed student graph, shared by the exporter and every backend (no torch)."""

INPUT_NAME = "images"
"""uint8 RGB (N, H, W, 3)."""

OUTPUT_NAMES = ("depth", "confidence", "probabilities", "bin_centres")
"""depth (N, H, W) metres; confidence (N, H, W) in [0, 1]; probabilities (N, H, W, K); centres (N, K)."""

ONNX_FORMAT = "fsmde-student-onnx-v1"
"""Value of the 'fsmde_format' metadata property of every exported graph."""
