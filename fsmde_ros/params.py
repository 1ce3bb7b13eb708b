"""Configuration of the surround depth node: ``config/surround_depth.yaml``, validated at start-up.

Every key has a type, a default, a check and a one-line description in ``SCHEMA``; ``load_config``
refuses an unknown key, a wrong type, a value out of range or a missing file with a ``ConfigError``
naming the file and the key. ``parameter_table`` renders the schema as the Markdown table of
docs/node.md. Relative paths in the file are relative to the file's directory.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fsmde_ros.backends.factory import BACKEND_KINDS, PRECISIONS
from fsmde_ros.core.cloud import OVERLAP_MODES
from fsmde_ros.core.pipeline import CloudSettings
from fsmde_ros.core.preprocess import MODES as PREPROCESS_MODES
from fsmde_ros.rig import Rig, RigError, load_rig
from fsmde_ros.yaml_io import read_yaml_mapping


class ConfigError(ValueError):
    """The node configuration is invalid; the message names the file, the key and the problem."""


@dataclass(frozen=True)
class Key:
    """One configuration key: Python type, default, check (returns a problem or None), description."""

    type: type | tuple[type, ...]
    default: Any
    check: Callable[[Any], str | None] | None
    help: str


def _positive(v: float) -> str | None:
    return None if v > 0 else "must be > 0"


def _non_negative(v: float) -> str | None:
    return None if v >= 0 else "must be >= 0"


def _at_least_one(v: int) -> str | None:
    return None if v >= 1 else "must be >= 1"


def _fraction(v: float) -> str | None:
    return None if 0 <= v <= 1 else "must be in [0, 1]"


def _one_of(options: tuple[str, ...]) -> Callable[[str], str | None]:
    return lambda v: None if v in options else f"must be one of {', '.join(options)}"


def _topic(v: str) -> str | None:
    return None if v and " " not in v else "must be a non-empty topic name without spaces"


def _domain(v: int) -> str | None:
    return None if 1 <= v <= 1000 else "must be in 1-1000"


SCHEMA: dict[str, dict[str, Key]] = {
    "": {
        "rig": Key(str, "rigs/nuscenes.yaml", None,
                   "rig YAML: camera names and order, extrinsics camera -> base_link"),
    },
    "model": {
        "path": Key(str, "../models/student_cpu.onnx", None,
                    "ONNX model (or .safetensors for backend torch); must exist"),
        "backend": Key(str, "auto", _one_of(BACKEND_KINDS), "inference backend"),
        "precision": Key(str, "fp32", _one_of(PRECISIONS), "TensorRT precision"),
        "threads": Key(int, 0, _non_negative, "CPU intra-op threads, 0 = library default"),
        "engine_dir": Key(str, "", None, "TensorRT engine cache directory ('' = beside the model)"),
        "retry_s": Key((int, float), 5.0, _positive, "retry period while the model cannot be loaded"),
    },
    "input": {
        "transport": Key(str, "raw", _one_of(("raw", "compressed")),
                         "raw: sensor_msgs/Image on image_topic; compressed: CompressedImage on image_topic"),
        "preprocess": Key(str, "resize", _one_of(PREPROCESS_MODES),
                          "resize to the network input, or resize + centre crop keeping the aspect ratio"),
        "check_frame_id": Key(bool, True, None, "drop images whose frame_id is not the camera's frame_id"),
        "qos_depth": Key(int, 5, _at_least_one, "subscription queue depth (best effort, keep last)"),
    },
    "sync": {
        "slop_s": Key((int, float), 0.06, _non_negative, "max spread of the stamps of one set"),
        "queue_size": Key(int, 5, _at_least_one, "pending messages per camera"),
        "timeout_s": Key((int, float), 0.5, _positive,
                         "message time after which an incomplete set is given up"),
        "partial_sets": Key(bool, False, None, "publish sets with missing cameras instead of dropping them"),
        "min_cameras": Key(int, 1, _at_least_one, "cameras a partial set needs to be published"),
        "reset_jump_s": Key((int, float), 1.0, _positive,
                            "a stamp this far back resets the sync (looping bag)"),
    },
    "output": {
        "confidence": Key(bool, True, None, "publish <camera>/depth/confidence"),
        "cloud": Key(bool, True, None, "publish the fused cloud"),
        "cloud_topic": Key(str, "points", _topic, "topic of the fused sensor_msgs/PointCloud2"),
        "reliable": Key(bool, True, None, "reliable (else best effort) output publishers"),
        "qos_depth": Key(int, 2, _at_least_one, "output publisher queue depth"),
        "max_invalid_fraction": Key((int, float), 0.5, _fraction,
                                    "drop a set whose depth has more invalid pixels than this share"),
    },
    "cloud": {
        "stride": Key(int, 2, _at_least_one, "use every stride-th pixel row and column"),
        "min_range": Key((int, float), 0.5, _non_negative, "min distance from the camera, m"),
        "max_range": Key((int, float), 80.0, _positive, "max distance from the camera, m"),
        "min_confidence": Key((int, float), 0.0, _fraction, "drop points with a lower confidence"),
        "overlap": Key(str, "split", _one_of(OVERLAP_MODES),
                       "split: each direction from the nearest camera; all: every camera's points"),
        "voxel_size": Key((int, float), 0.0, _non_negative, "voxel downsampling edge, m (0 = off)"),
    },
    "diagnostics": {
        "period_s": Key((int, float), 1.0, _positive, "period of /diagnostics"),
        "consistency_period_s": Key((int, float), 1.0, _non_negative,
                                    "period of the cross-view consistency check (0 = off)"),
        "consistency_warn": Key((int, float), 0.15, _positive, "pair disagreement (median rel.) for WARN"),
        "consistency_error": Key((int, float), 0.3, _positive, "pair disagreement (median rel.) for ERROR"),
    },
}

CAMERA_KEYS: dict[str, Key] = {
    "name": Key(str, None, None, "camera name of the rig (required)"),
    "image_topic": Key(str, "/cameras/{name}/image_raw", _topic, "image topic"),
    "camera_info_topic": Key(str, "/cameras/{name}/camera_info", _topic, "CameraInfo topic"),
    "frame_id": Key(str, "{name}", None, "optical frame of the camera's images"),
}
"""Keys of one ``cameras`` entry; ``{name}`` in a default is the camera name."""


@dataclass(frozen=True)
class CameraParams:
    name: str
    image_topic: str
    camera_info_topic: str
    frame_id: str


@dataclass(frozen=True)
class NodeConfig:
    """The validated configuration: sections as dicts of typed values, the rig and the cameras."""

    source: Path
    rig: Rig
    rig_path: Path
    cameras: tuple[CameraParams, ...]
    model: dict[str, Any]
    input: dict[str, Any]
    sync: dict[str, Any]
    output: dict[str, Any]
    cloud: CloudSettings
    diagnostics: dict[str, Any]

    @property
    def model_path(self) -> Path:
        return Path(self.model["path"])


def _value(source: str, where: str, key: Key, value: Any) -> Any:
    types = key.type if isinstance(key.type, tuple) else (key.type,)
    if (isinstance(value, bool) and bool not in types) or not isinstance(value, types):
        names = " or ".join(t.__name__ for t in types)
        raise ConfigError(f"{source}: {where}: expected {names}, got {type(value).__name__} {value!r}")
    problem = key.check(value) if key.check else None
    if problem:
        raise ConfigError(f"{source}: {where}: {value!r} {problem}")
    return float(value) if float in types else value


def _section(source: str, name: str, data: Any, overrides: dict[str, Any]) -> dict[str, Any]:
    schema = SCHEMA[name]
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: {name}: must be a mapping, got {type(data).__name__}")
    unknown = sorted(set(data) - set(schema))
    if unknown:
        raise ConfigError(f"{source}: {name}: unknown key(s) {unknown}; known: {sorted(schema)}")
    merged = {k: data.get(k, key.default) for k, key in schema.items()} | overrides
    return {k: _value(source, f"{name}.{k}", schema[k], v) for k, v in merged.items()}


def _resolve(base: Path, value: str) -> Path:
    path = Path(value).expanduser()
    return path if path.is_absolute() else (base / path).resolve()


def _cameras(source: str, data: Any, rig: Rig) -> tuple[CameraParams, ...]:
    if data is None:
        data = [{"name": n} for n in rig.names]
    if not isinstance(data, list) or not data:
        raise ConfigError(f"{source}: cameras: must be a non-empty list of mappings")
    by_name: dict[str, CameraParams] = {}
    for i, entry in enumerate(data):
        where = f"cameras[{i}]"
        if not isinstance(entry, dict):
            raise ConfigError(f"{source}: {where}: must be a mapping, got {type(entry).__name__}")
        unknown = sorted(set(entry) - set(CAMERA_KEYS))
        if unknown:
            raise ConfigError(f"{source}: {where}: unknown key(s) {unknown}; known: {sorted(CAMERA_KEYS)}")
        if "name" not in entry:
            raise ConfigError(f"{source}: {where}: missing key 'name'")
        name = _value(source, f"{where}.name", CAMERA_KEYS["name"], entry["name"])
        if name not in rig.names:
            raise ConfigError(f"{source}: {where}.name: unknown camera {name!r}; the rig has {rig.names}")
        if name in by_name:
            raise ConfigError(f"{source}: {where}.name: camera {name!r} is listed twice")
        values = {k: _value(source, f"{where}.{k}", key, entry.get(k, key.default.format(name=name)))
                  for k, key in CAMERA_KEYS.items() if k != "name"}
        by_name[name] = CameraParams(name=name, **values)
    missing = [n for n in rig.names if n not in by_name]
    if missing:
        raise ConfigError(f"{source}: cameras: the rig's camera(s) {missing} are not configured; the model "
                          "takes every camera of the rig")
    return tuple(by_name[n] for n in rig.names)


def load_config(path: str | Path, model_path: str | None = None, backend: str | None = None) -> NodeConfig:
    """Load and validate a node configuration; ``model_path`` / ``backend`` override the file's."""
    path = Path(path).expanduser().resolve()
    source = str(path)
    data = read_yaml_mapping(path, ConfigError, "configuration")
    known = {k for k in SCHEMA if k} | set(SCHEMA[""]) | {"cameras"}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(f"{source}: unknown key(s) {unknown}; known: {sorted(known)}")
    top = _section(source, "", {k: data[k] for k in SCHEMA[""] if k in data}, {})
    model_overrides = {k: v for k, v in (("path", model_path), ("backend", backend)) if v}
    sections = {name: _section(source, name, data.get(name), model_overrides if name == "model" else {})
                for name in SCHEMA if name}
    rig_path = _resolve(path.parent, top["rig"])
    try:
        rig = load_rig(rig_path)
    except RigError as exc:
        raise ConfigError(f"{source}: rig: {exc}") from exc
    cameras = _cameras(source, data.get("cameras"), rig)
    model = sections["model"]
    model_base = Path.cwd() if model_path else path.parent
    model["path"] = str(_resolve(model_base, model["path"]))
    if not Path(model["path"]).is_file():
        raise ConfigError(f"{source}: model.path: model file {model['path']} not found")
    if model["engine_dir"]:
        model["engine_dir"] = str(_resolve(path.parent, model["engine_dir"]))
    cloud = sections["cloud"]
    if cloud["min_range"] >= cloud["max_range"]:
        raise ConfigError(f"{source}: cloud.min_range {cloud['min_range']} must be below cloud.max_range "
                          f"{cloud['max_range']}")
    diag = sections["diagnostics"]
    if diag["consistency_warn"] > diag["consistency_error"]:
        raise ConfigError(f"{source}: diagnostics.consistency_warn must not exceed consistency_error")
    if sections["sync"]["min_cameras"] > len(rig):
        raise ConfigError(f"{source}: sync.min_cameras {sections['sync']['min_cameras']} exceeds the rig's "
                          f"{len(rig)} cameras")
    return NodeConfig(path, rig, rig_path, cameras, model, sections["input"], sections["sync"],
                      sections["output"], CloudSettings(**cloud), diag)


def default_config_path() -> Path:
    """The shipped ``config/surround_depth.yaml`` of the source tree or of the installed share."""
    here = Path(__file__).resolve().parent.parent / "config" / "surround_depth.yaml"
    if here.is_file():
        return here
    from ament_index_python.packages import get_package_share_directory  # only in an installed ROS package

    return Path(get_package_share_directory("fsmde_ros")) / "config" / "surround_depth.yaml"


def parameter_table() -> str:
    """Markdown table of every configuration key (docs/node.md holds it verbatim)."""
    rows = ["| key | type | default | meaning |", "|---|---|---|---|"]
    for section, keys in SCHEMA.items():
        for name, key in keys.items():
            types = key.type if isinstance(key.type, tuple) else (key.type,)
            type_name = "float" if float in types else types[0].__name__
            full = f"{section}.{name}" if section else name
            rows.append(f"| `{full}` | {type_name} | `{key.default!r}` | {key.help} |")
    for name, key in CAMERA_KEYS.items():
        default = "required" if key.default is None else f"`{key.default!r}`"
        rows.append(f"| `cameras[].{name}` | str | {default} | {key.help} |")
    return "\n".join(rows) + "\n"
