"""Student network configuration: the ``cpu`` / ``gpu`` profiles of ``config/model_profiles.yaml``."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from fsmde_ros.yaml_io import read_yaml_mapping

ENCODER_STAGES = 5
"""Stride-2 encoder stages; input height and width must be multiples of 2**ENCODER_STAGES."""

INPUT_MULTIPLE = 2**ENCODER_STAGES


class ModelConfigError(ValueError):
    """A model profile or stored model configuration is invalid; the message names source and field."""


def default_profiles_path() -> Path:
    """``config/model_profiles.yaml`` of the source tree or of the installed ROS share directory."""
    source = Path(__file__).resolve().parents[2] / "config" / "model_profiles.yaml"
    if source.is_file():
        return source
    try:
        from ament_index_python.packages import get_package_share_directory
    except ImportError:
        return source
    return Path(get_package_share_directory("fsmde_ros")) / "config" / "model_profiles.yaml"


@dataclass(frozen=True)
class ModelConfig:
    """Everything that fixes the student's architecture and its input/output contract."""

    profile: str
    input_height: int
    input_width: int
    num_cameras: int
    min_depth: float
    max_depth: float
    num_bins: int
    encoder_channels: tuple[int, ...]
    decoder_channels: tuple[int, ...]
    bin_mlp_hidden: int

    def __post_init__(self) -> None:
        validate_fields(asdict(self), f"profile '{self.profile}'")

    @property
    def input_shape(self) -> tuple[int, int, int, int]:
        """(N, H, W, 3) uint8 shape the deployed network takes."""
        return self.num_cameras, self.input_height, self.input_width, 3

    def with_cameras(self, num_cameras: int) -> ModelConfig:
        """The same network for a different (static) camera count."""
        return ModelConfig(**{**asdict(self), "num_cameras": num_cameras})

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict, source: str) -> ModelConfig:
        """Build from a mapping (YAML profile or stored metadata), naming ``source`` in every error."""
        if not isinstance(data, dict):
            raise ModelConfigError(f"{source}: expected a mapping of fields, got {type(data).__name__}")
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - names)
        missing = sorted(names - set(data))
        if unknown:
            raise ModelConfigError(f"{source}: unknown field(s) {unknown}")
        if missing:
            raise ModelConfigError(f"{source}: missing field(s) {missing}")
        converters = {"profile": str, "min_depth": float, "max_depth": float,
                      "encoder_channels": _int_tuple, "decoder_channels": _int_tuple}
        values = {}
        for name in names:
            try:
                values[name] = converters.get(name, _strict_int)(data[name])
            except (TypeError, ValueError) as exc:
                raise ModelConfigError(
                    f"{source}: field '{name}' has invalid value {data[name]!r}: {exc}") from exc
        validate_fields(values, source)
        return cls(**values)

    @classmethod
    def from_json(cls, text: str, source: str) -> ModelConfig:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ModelConfigError(f"{source}: stored model configuration is not valid JSON ({exc})") from exc
        return cls.from_dict(data, source)


def validate_fields(values: dict, source: str) -> None:
    """Raise ModelConfigError naming ``source`` and the field at fault."""

    def fail(field: str, problem: str) -> None:
        raise ModelConfigError(f"{source}: field '{field}' {problem}")

    for name in ("input_height", "input_width"):
        if values[name] <= 0 or values[name] % INPUT_MULTIPLE:
            fail(name, f"must be a positive multiple of {INPUT_MULTIPLE}, got {values[name]}")
    if values["num_cameras"] < 1:
        fail("num_cameras", f"must be >= 1, got {values['num_cameras']}")
    min_depth, max_depth = values["min_depth"], values["max_depth"]
    if not (math.isfinite(min_depth) and min_depth > 0):
        fail("min_depth", f"must be a finite positive number of metres, got {min_depth}")
    if not (math.isfinite(max_depth) and max_depth > min_depth):
        fail("max_depth", f"must be finite and > min_depth ({min_depth}), got {max_depth}")
    if values["num_bins"] < 2:
        fail("num_bins", f"must be >= 2, got {values['num_bins']}")
    encoder, decoder = values["encoder_channels"], values["decoder_channels"]
    if len(encoder) != ENCODER_STAGES or min(encoder) < 1:
        fail("encoder_channels", f"must list {ENCODER_STAGES} positive widths, got {encoder}")
    if len(decoder) != ENCODER_STAGES - 1 or min(decoder) < 1:
        fail("decoder_channels", f"must list {ENCODER_STAGES - 1} positive widths, got {decoder}")
    if values["bin_mlp_hidden"] < 1:
        fail("bin_mlp_hidden", f"must be >= 1, got {values['bin_mlp_hidden']}")


def _strict_int(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"expected an integer, got {type(value).__name__}")
    return value


def _int_tuple(value: object) -> tuple[int, ...]:
    if not isinstance(value, (list, tuple)):
        raise TypeError(f"expected a list of integers, got {type(value).__name__}")
    return tuple(_strict_int(v) for v in value)


def load_profile(profile: str, path: str | Path | None = None) -> ModelConfig:
    """The named profile (``cpu``, ``gpu``, ...) from ``path`` (default: config/model_profiles.yaml)."""
    path = Path(path) if path is not None else default_profiles_path()
    profiles = read_yaml_mapping(path, ModelConfigError, "model profile")
    if profile not in profiles:
        raise ModelConfigError(f"{path}: no profile '{profile}' (known: {sorted(profiles)})")
    return ModelConfig.from_dict({"profile": profile, **(profiles[profile] or {})}, f"{path} [{profile}]")
