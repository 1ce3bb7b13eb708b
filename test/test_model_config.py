"""Bad model profiles raise errors naming the file and the field."""

import pytest
import yaml

from fsmde_ros.model import ModelConfigError, load_profile


def write_profiles(tmp_path, **overrides):
    profile = dict(input_height=64, input_width=96, num_cameras=6, min_depth=0.5, max_depth=80.0,
                   num_bins=8, encoder_channels=[4, 4, 8, 8, 8], decoder_channels=[8, 8, 4, 4],
                   bin_mlp_hidden=8)
    profile.update(overrides)
    path = tmp_path / "profiles.yaml"
    path.write_text(yaml.safe_dump({"tiny": profile}))
    return path


def test_valid_profile_loads(tmp_path):
    config = load_profile("tiny", write_profiles(tmp_path))
    assert config.profile == "tiny" and config.encoder_channels == (4, 4, 8, 8, 8)


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"input_height": 100}, "input_height"),
        ({"input_width": 0}, "input_width"),
        ({"num_cameras": 0}, "num_cameras"),
        ({"min_depth": -1.0}, "min_depth"),
        ({"max_depth": 0.4}, "max_depth"),
        ({"num_bins": 1}, "num_bins"),
        ({"encoder_channels": [4, 4]}, "encoder_channels"),
        ({"decoder_channels": [8, 8, 4, 0]}, "decoder_channels"),
        ({"num_bins": "many"}, "num_bins"),
        ({"bin_mlp_hidden": 2.5}, "bin_mlp_hidden"),
    ],
)
def test_bad_field_is_named(tmp_path, overrides, field):
    path = write_profiles(tmp_path, **overrides)
    with pytest.raises(ModelConfigError, match=rf"profiles\.yaml.*'{field}'"):
        load_profile("tiny", path)


def test_unknown_and_missing_fields(tmp_path):
    with pytest.raises(ModelConfigError, match=r"unknown field\(s\) \['colour'\]"):
        load_profile("tiny", write_profiles(tmp_path, colour="red"))
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump({"tiny": {"input_height": 64}}))
    with pytest.raises(ModelConfigError, match="missing field"):
        load_profile("tiny", path)


def test_missing_file_unknown_profile_and_bad_yaml(tmp_path):
    with pytest.raises(ModelConfigError, match="not found"):
        load_profile("cpu", tmp_path / "absent.yaml")
    with pytest.raises(ModelConfigError, match="no profile 'huge'"):
        load_profile("huge", write_profiles(tmp_path))
    bad = tmp_path / "bad.yaml"
    bad.write_text("cpu: [unclosed")
    with pytest.raises(ModelConfigError, match="not valid YAML"):
        load_profile("cpu", bad)
