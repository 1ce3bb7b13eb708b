"""The one YAML reader and override syntax of every configuration file."""

import pytest

from fsmde_ros.yaml_io import apply_override, read_yaml_mapping


class ProblemError(ValueError):
    pass


def test_reads_a_mapping_and_an_empty_file_as_empty(tmp_path):
    (tmp_path / "a.yaml").write_text("a: {b: 1}\n")
    (tmp_path / "empty.yaml").write_text("")
    assert read_yaml_mapping(tmp_path / "a.yaml", ProblemError, "recipe") == {"a": {"b": 1}}
    assert read_yaml_mapping(tmp_path / "empty.yaml", ProblemError, "recipe") == {}


@pytest.mark.parametrize(
    ("text", "message"),
    [(None, r"nope\.yaml: recipe file not found"), ("a: [1\n", "not valid YAML"),
     ("- 1\n", "a recipe must be a mapping")],
)
def test_bad_files_raise_the_callers_error_naming_the_file(tmp_path, text, message):
    path = tmp_path / "nope.yaml"
    if text is not None:
        path.write_text(text)
    with pytest.raises(ProblemError, match=message):
        read_yaml_mapping(path, ProblemError, "recipe")


def test_overrides_set_nested_values_parsed_as_yaml():
    data = {"train": {"steps": 1}, "seed": 0}
    apply_override(data, "train.steps=20", ProblemError)
    apply_override(data, "model.taus=[0.5, 1.0]", ProblemError)
    apply_override(data, "seed=3", ProblemError)
    assert data == {"train": {"steps": 20}, "model": {"taus": [0.5, 1.0]}, "seed": 3}
    with pytest.raises(ProblemError, match=r"expected key\.sub=value"):
        apply_override(data, "train.steps", ProblemError)
    with pytest.raises(ProblemError, match="'seed' is not a section"):
        apply_override(data, "seed.x=1", ProblemError)
