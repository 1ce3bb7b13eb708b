"""SynthSurround on disk: generation, manifest, READY.json, resuming, the loader and its errors, the CLI."""

import json

import numpy as np
import pytest

from fsmde_ros.bagio import IMAGE, bag_info, deserialize, image_rgb, read_messages
from fsmde_ros.datasets.sample import SurroundSample
from fsmde_ros.datasets.synthsurround import DatasetError, SynthSurroundDataset, load_frame
from fsmde_ros.rig import default_rig_path, load_rig
from fsmde_ros.synth import cli
from fsmde_ros.synth.dataset import Sequence, SynthError, generate_dataset, generation_order, sequence_seed

W, H = 64, 36
PLAN = {"val": (2, 3), "test": (1, 2)}


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    root = tmp_path_factory.mktemp("synth")
    rig = load_rig(default_rig_path()).resized(W, H)
    generate_dataset(root, rig, PLAN, "nuscenes.yaml", log=lambda line: None)
    return root


def test_layout_manifest_and_ready(root):
    manifest = json.loads((root / "manifest.json").read_text())
    assert manifest["resolution"] == {"height": H, "width": W}
    assert manifest["splits"]["val"]["seed_range"] == [200000, 300000]
    assert manifest["rig"]["cameras"][0]["name"] == "CAM_FRONT"
    ready = json.loads((root / "READY.json").read_text())
    assert ready["splits"]["val"]["frames"] == 6 and ready["splits"]["test"]["frames"] == 2
    assert sorted(p.name for p in (root / "val").iterdir()) == ["val_00000", "val_00001"]
    seq = json.loads((root / "val" / "val_00001" / "sequence.json").read_text())
    assert seq["seed"] == sequence_seed("val", 1) and seq["frames"] == 3
    assert not list(root.rglob("*.tmp"))
    assert manifest["reflections"] is True


def test_generate_without_reflections_renders_the_diffuse_layer(tmp_path):
    assert cli.main(["--width", str(W), "--height", str(H), "generate", "--out", str(tmp_path),
                     "--sequences", "test=1", "--frames-per-sequence", "1", "--no-reflections"]) == 0
    assert json.loads((tmp_path / "manifest.json").read_text())["reflections"] is False
    rig = load_rig(default_rig_path()).resized(W, H)
    expected = Sequence(sequence_seed("test", 0), rig, reflections=False).frame(0).frame.images
    np.testing.assert_array_equal(SynthSurroundDataset(tmp_path, "test")[0].images, expected)
    assert (expected != Sequence(sequence_seed("test", 0), rig).frame(0).frame.images).any()


def test_loader_yields_surround_samples(root):
    ds = SynthSurroundDataset(root, "val")
    assert len(ds) == 6 and ds.ready and ds.planned_frames == 6
    sample = ds[4]
    assert isinstance(sample, SurroundSample)
    assert (sample.sequence, sample.frame_index) == ("val_00001", 1) == ds.frame_id(4)
    assert sample.images.shape == (6, H, W, 3) and sample.image_size == (H, W)
    assert sample.camera_names[0] == "CAM_FRONT" and sample.K.shape == (6, 3, 3)
    np.testing.assert_allclose(sample.K, ds.rig.intrinsics())
    assert sample.camera_ego_poses.shape == (6, 4, 4)
    # The stored frame is the one the generator renders for that seed and index.
    again = Sequence(sequence_seed("val", 1), ds.rig).frame(1)
    np.testing.assert_array_equal(sample.images, again.frame.images)
    np.testing.assert_array_equal(sample.stamps_ns, again.stamps_ns)
    assert ds.temporal_indices((-1, 0, 1)) == [(0, 1, 2), (3, 4, 5)]
    assert len(list(ds)) == 6


def test_loader_sees_frames_as_they_appear_and_generation_resumes(root):
    ds = SynthSurroundDataset(root, "test")
    assert len(ds) == 2
    victim = root / "test" / "test_00000" / "frame_0001.npz"
    kept = root / "test" / "test_00000" / "frame_0000.npz"
    mtime = kept.stat().st_mtime_ns
    victim.unlink()
    assert ds.refresh() == 1 and ds.temporal_indices((0, 1)) == []
    generate_dataset(root, ds.rig, PLAN, "nuscenes.yaml", log=lambda line: None)
    assert ds.refresh() == 2 and kept.stat().st_mtime_ns == mtime


def test_generation_order_grows_splits_in_proportion():
    order = generation_order({"teacher-train": (4, 10), "val": (2, 10)})
    assert [s for s, _ in order[:3]] == ["teacher-train", "val", "teacher-train"]
    assert sorted(order) == [("teacher-train", i) for i in range(4)] + [("val", 0), ("val", 1)]


def test_loader_errors_name_the_problem(root, tmp_path):
    with pytest.raises(DatasetError, match="unknown split 'train'"):
        SynthSurroundDataset(root, "train")
    with pytest.raises(DatasetError, match="manifest not found"):
        SynthSurroundDataset(tmp_path, "val")
    (tmp_path / "manifest.json").write_text("{nope")
    with pytest.raises(DatasetError, match="not valid JSON"):
        SynthSurroundDataset(tmp_path, "val")
    names = [f"C{i}" for i in range(6)]
    good = dict(np.load(root / "val" / "val_00000" / "frame_0000.npz"))
    bad = dict(good)
    bad.pop("sparse_depth")
    np.savez(tmp_path / "missing.npz", **bad)
    with pytest.raises(DatasetError, match=r"missing array\(s\) \['sparse_depth'\]"):
        load_frame(tmp_path / "missing.npz", names)
    bad = dict(good, depth=good["depth"].astype(np.float64))
    np.savez(tmp_path / "dtype.npz", **bad)
    with pytest.raises(DatasetError, match="array depth is float64"):
        load_frame(tmp_path / "dtype.npz", names)
    with pytest.raises(DatasetError, match=r"expected \(5, H, W, 3\)"):
        load_frame(root / "val" / "val_00000" / "frame_0000.npz", names[:5])
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(DatasetError, match="not a readable frame file"):
        load_frame(tmp_path / "junk.npz", names)
    with pytest.raises(DatasetError, match="frame file not found"):
        load_frame(tmp_path / "nope.npz", names)


def test_cli_bag_bench_and_bad_arguments(tmp_path, capsys):
    size = ["--width", str(W), "--height", str(H)]
    assert cli.main([*size, "bag", "--out", str(tmp_path / "bag"), "--frames", "2"]) == 0
    info = bag_info(tmp_path / "bag")
    assert info.message_count == 2 * 6 * 2
    assert info.topics["/cameras/CAM_BACK/image_raw"] == (IMAGE, 2)
    first = deserialize(next(read_messages(tmp_path / "bag", ["/cameras/CAM_FRONT/image_raw"])))
    expected = Sequence(sequence_seed("test", 0), load_rig(default_rig_path()).resized(W, H)).frame(0)
    np.testing.assert_array_equal(image_rgb(first), expected.frame.images[0])
    assert cli.main([*size, "bench", "--frames", "1", "--json", str(tmp_path / "bench.json")]) == 0
    assert "s per frame" in capsys.readouterr().out
    assert json.loads((tmp_path / "bench.json").read_text())["seconds_per_frame_median"] > 0
    assert cli.main([*size, "generate", "--out", str(tmp_path / "d"), "--sequences", "train=3"]) == 2
    assert "expected SPLIT=COUNT" in capsys.readouterr().err
    assert cli.main(["--rig", str(tmp_path / "none.yaml"), "bench"]) == 2
    assert "rig file not found" in capsys.readouterr().err
    assert cli.main([*size, "bag", "--out", str(tmp_path / "bag"), "--frames", "1"]) == 2
    assert "already exists" in capsys.readouterr().err
    assert cli.main([*size, "bench", "--frames", "0"]) == 2
    assert "--frames must be positive" in capsys.readouterr().err
    args = [
        *size,
        "generate",
        "--out",
        str(tmp_path / "d"),
        "--sequences",
        "val=1",
        "--frames-per-sequence",
        "0",
    ]
    assert cli.main(args) == 2
    assert "frames per sequence > 0" in capsys.readouterr().err
    with pytest.raises(SynthError, match="frame rate must be positive"):
        Sequence(1, load_rig(default_rig_path()).resized(W, H), frame_rate_hz=0.0)
