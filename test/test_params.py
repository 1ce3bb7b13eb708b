"""Start-up validation of config/surround_depth.yaml: every bad input is named with file and key."""

from pathlib import Path

import pytest
import yaml

from fsmde_ros.params import ConfigError, default_config_path, load_config, parameter_table

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def model_file(tmp_path):
    path = tmp_path / "model.onnx"
    path.write_bytes(b"not read at validation time")
    return path


def write(tmp_path, data, model_file):
    """A config in tmp_path next to a copy of the rig; model path pointing at ``model_file``."""
    (tmp_path / "rigs").mkdir(exist_ok=True)
    (tmp_path / "rigs" / "nuscenes.yaml").write_text((ROOT / "config/rigs/nuscenes.yaml").read_text())
    data.setdefault("model", {}).setdefault("path", str(model_file))
    path = tmp_path / "node.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def shipped():
    return yaml.safe_load(default_config_path().read_text())


def test_shipped_config_is_valid_and_complete(model_file):
    config = load_config(default_config_path(), model_path=str(model_file), backend="ort-cpu")
    assert [c.name for c in config.cameras] == config.rig.names and len(config.cameras) == 6
    assert config.cameras[0].image_topic == "/cameras/CAM_FRONT/image_raw"
    assert config.model["backend"] == "ort-cpu" and config.model_path == model_file
    assert config.sync["slop_s"] == 0.06 and config.cloud.stride == 2 and config.cloud.overlap == "split"
    assert config.rig_path == ROOT / "config/rigs/nuscenes.yaml"
    # The shipped file spells out every key of the schema, so it documents itself.
    data = shipped()
    table = parameter_table()
    for section, values in data.items():
        if isinstance(values, dict):
            for key in values:
                assert f"`{section}.{key}`" in table


def test_camera_defaults_follow_the_bag_layout(tmp_path, model_file):
    config = load_config(write(tmp_path, {"cameras": None}, model_file))
    assert config.cameras[3].camera_info_topic == "/cameras/CAM_BACK/camera_info"
    assert config.cameras[3].frame_id == "CAM_BACK"


@pytest.mark.parametrize(("data", "message"), [
    ({"modle": {}}, r"unknown key\(s\) \['modle'\]"),
    ({"sync": {"slop": 0.1}}, r"sync: unknown key\(s\) \['slop'\]"),
    ({"sync": {"slop_s": "fast"}}, "sync.slop_s: expected int or float, got str"),
    ({"sync": {"queue_size": 2.5}}, "sync.queue_size: expected int, got float"),
    ({"output": {"cloud": 1}}, "output.cloud: expected bool, got int"),
    ({"sync": {"queue_size": True}}, "sync.queue_size: expected int, got bool"),
    ({"sync": {"queue_size": 0}}, "sync.queue_size: 0 must be >= 1"),
    ({"cloud": {"min_confidence": 1.5}}, r"cloud.min_confidence: 1.5 must be in \[0, 1\]"),
    ({"cloud": {"overlap": "blend"}}, "cloud.overlap: 'blend' must be one of split, all"),
    ({"model": {"backend": "cuda"}}, "model.backend: 'cuda' must be one of auto"),
    ({"cloud": {"min_range": 50.0, "max_range": 10.0}}, "min_range 50.0 must be below"),
    ({"sync": {"min_cameras": 7}}, "min_cameras 7 exceeds the rig's 6 cameras"),
    ({"diagnostics": {"consistency_warn": 0.5, "consistency_error": 0.2}}, "must not exceed"),
    ({"output": {"cloud_topic": ""}}, "output.cloud_topic: '' must be a non-empty topic"),
    ({"sync": []}, "sync: must be a mapping"),
    ({"rig": "rigs/missing.yaml"}, "rig: .*missing.yaml: rig file not found"),
    ({"model": {"path": "nope.onnx"}}, "model.path: model file .*nope.onnx not found"),
    ({"cameras": [{"name": "CAM_ROOF"}]}, r"cameras\[0\].name: unknown camera 'CAM_ROOF'"),
    ({"cameras": [{"name": "CAM_FRONT", "topic": "/x"}]}, r"cameras\[0\]: unknown key\(s\) \['topic'\]"),
    ({"cameras": [{"image_topic": "/x"}]}, r"cameras\[0\]: missing key 'name'"),
    ({"cameras": [{"name": "CAM_FRONT"}, {"name": "CAM_FRONT"}]}, "listed twice"),
    ({"cameras": [{"name": "CAM_FRONT"}]}, r"the rig's camera\(s\) \['CAM_FRONT_RIGHT'"),
    ({"cameras": [{"name": "CAM_FRONT", "image_topic": 3}]}, r"cameras\[0\].image_topic: expected str"),
])
def test_bad_config_is_refused_naming_file_and_key(tmp_path, model_file, data, message):
    path = write(tmp_path, data, model_file)
    with pytest.raises(ConfigError, match=message) as info:
        load_config(path)
    assert str(path) in str(info.value)


def test_missing_and_malformed_files(tmp_path):
    with pytest.raises(ConfigError, match="configuration file not found"):
        load_config(tmp_path / "absent.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("sync: [unclosed")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)
    bad.write_text("- a list")
    with pytest.raises(ConfigError, match="must be a mapping"):
        load_config(bad)


def test_model_override_is_relative_to_the_working_directory(tmp_path, model_file, monkeypatch):
    monkeypatch.chdir(model_file.parent)
    config = load_config(write(tmp_path, {}, model_file), model_path=model_file.name)
    assert config.model_path == model_file


def test_docs_hold_the_parameter_table():
    assert parameter_table() in (ROOT / "docs/node.md").read_text()
