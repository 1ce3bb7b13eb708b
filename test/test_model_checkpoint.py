"""safetensors checkpoints with the configuration in the metadata."""

import dataclasses

import pytest
import torch
from safetensors.torch import save_file

from fsmde_ros.model import CheckpointError, build_student, load_profile, load_student, save_student
from fsmde_ros.model.checkpoint import read_metadata


def tiny_config(**overrides):
    return dataclasses.replace(load_profile("tiny"), **overrides)


def test_round_trip_keeps_weights_config_and_metadata(tmp_path):
    net = build_student(tiny_config(), seed=3)
    path = save_student(net, tmp_path / "student.safetensors", {"trained_on": "unit test"})
    loaded, metadata = load_student(path, expected=tiny_config())
    assert loaded.config == net.config and not loaded.training
    assert metadata["trained_on"] == "unit test"
    for name, tensor in net.state_dict().items():
        assert torch.equal(tensor, loaded.state_dict()[name])


def test_missing_and_corrupt_files(tmp_path):
    with pytest.raises(CheckpointError, match=r"absent\.safetensors: checkpoint file not found"):
        load_student(tmp_path / "absent.safetensors")
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"\x00\x01 not a safetensors header")
    with pytest.raises(CheckpointError, match=r"junk\.safetensors: not a readable safetensors file"):
        load_student(junk)


def test_foreign_safetensors_file_is_rejected(tmp_path):
    path = tmp_path / "foreign.safetensors"
    save_file({"w": torch.zeros(2)}, str(path))
    with pytest.raises(CheckpointError, match="not an fsmde_ros student checkpoint"):
        read_metadata(path)


def test_config_mismatch_names_the_field(tmp_path):
    path = save_student(build_student(tiny_config(), seed=0), tmp_path / "s.safetensors")
    with pytest.raises(CheckpointError, match="num_bins: file 8 != expected 16"):
        load_student(path, expected=tiny_config(num_bins=16))


def test_tampered_weights_fail_the_hash(tmp_path):
    net = build_student(tiny_config(), seed=0)
    path = save_student(net, tmp_path / "s.safetensors")
    metadata = read_metadata(path)
    tensors = {k: v.clone() for k, v in net.state_dict().items()}
    tensors["logits_head.bias"] += 1.0
    save_file(tensors, str(path), metadata=metadata)
    with pytest.raises(CheckpointError, match="weights hash does not match"):
        load_student(path)


def test_weights_that_do_not_fit_the_config(tmp_path):
    net = build_student(tiny_config(), seed=0)
    path = save_student(net, tmp_path / "s.safetensors")
    metadata = read_metadata(path)
    metadata["fsmde_model_config"] = tiny_config(num_bins=4).to_json()
    save_file(dict(net.state_dict()), str(path), metadata=metadata)
    with pytest.raises(CheckpointError, match="weights do not fit the stored configuration"):
        load_student(path)
