"""BriGeS on the project's own models: the TeacherNet split, the segmentation network, data, both
training loops, the one-pass evaluation of variants, the results table, recipes and the CLI."""

import json

import numpy as np
import onnxruntime as ort
import pytest
import torch

from fsmde_ros.briges import build, cli
from fsmde_ros.briges.adapters import NoSegmentation
from fsmde_ros.briges.data import CameraFrames, collate_cameras, hflip
from fsmde_ros.briges.evaluate import TEACHER, Variant, evaluate_segmentation, evaluate_variants
from fsmde_ros.briges.gate import GateConfig
from fsmde_ros.briges.metrics import headline
from fsmde_ros.briges.recipe import BrigesRecipeError, load_recipe
from fsmde_ros.briges.segnet import SegNet, SegNetAdapter, load_segnet, save_segnet
from fsmde_ros.briges.teacher import BrigesTeacher
from fsmde_ros.briges.train import cosine_lr, median_frequency_weights, train_gate, train_segnet
from fsmde_ros.briges.unet_adapter import TeacherNetAdapter
from fsmde_ros.datasets.sample import SurroundSample
from fsmde_ros.distill.checkpoint import save_weights
from fsmde_ros.distill.teacher_net import TeacherConfig, TeacherNet
from fsmde_ros.evaluation import EvalConfig

H, W, CAMS = 32, 48, 2
COLOURS = np.array([[90, 90, 90], [200, 60, 60], [60, 200, 60], [120, 160, 230]], np.float32)


def toy_sample(index: int) -> SurroundSample:
    """Road below, a box and a thin pole in front of a far wall, sky on top; colours follow classes."""
    rng = np.random.default_rng(index)
    rows = np.arange(H, dtype=np.float32)[:, None]
    road = np.where(rows > 12, 60.0 / np.maximum(rows - 11.0, 1.0), 30.0)
    depth = np.broadcast_to(road, (CAMS, H, W)).copy()
    semantic = np.zeros((CAMS, H, W), np.uint8)
    depth[:, :5] = np.nan
    semantic[:, :5] = 3
    for c in range(CAMS):
        x0 = int(rng.integers(4, 30))
        depth[c, 8:26, x0 : x0 + 10] = rng.uniform(4, 8)
        semantic[c, 8:26, x0 : x0 + 10] = 1
        xp = (x0 + 20) % (W - 2)
        depth[c, 6:28, xp : xp + 2] = rng.uniform(3, 5)
        semantic[c, 6:28, xp : xp + 2] = 2
    shade = np.nan_to_num(np.clip(20.0 / depth, 0.3, 1.0), nan=1.0)[..., None]
    images = COLOURS[semantic] * (0.6 + 0.4 * shade) + rng.normal(0, 6, (CAMS, H, W, 3))
    return SurroundSample(
        images=np.clip(images, 0, 255).astype(np.uint8),
        K=np.repeat(np.eye(3)[None], CAMS, 0),
        cam2ego=np.repeat(np.eye(4)[None], CAMS, 0),
        sparse_depth=np.full((CAMS, H, W), np.nan, np.float32),
        camera_names=tuple(f"CAM_{c}" for c in range(CAMS)),
        stamps_ns=np.zeros(CAMS, np.int64),
        depth=depth.astype(np.float32),
        semantic=semantic,
        sequence="toy",
        frame_index=index,
    )


SOURCE = [toy_sample(i) for i in range(6)]


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny models run fastest single-threaded, above all on a shared, loaded machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def tiny_teacher_net() -> TeacherNet:
    torch.manual_seed(0)
    return TeacherNet(TeacherConfig(widths=(4, 8, 12), blocks=1)).eval()


def toy_teacher(levels=(1, 2), temperature="fixed") -> BrigesTeacher:
    torch.manual_seed(1)
    seg = SegNetAdapter(SegNet(4, width=4).eval())
    return BrigesTeacher(
        TeacherNetAdapter(tiny_teacher_net()),
        seg,
        GateConfig(levels, dim=8, heads=2, temperature=temperature),
    )


def test_teacher_net_split_reproduces_the_network():
    net = tiny_teacher_net()
    adapter = TeacherNetAdapter(net)
    images = torch.randint(0, 256, (2, H, W, 3), dtype=torch.uint8)
    with torch.no_grad():
        expected = net(images)
        got = adapter(images.permute(0, 3, 1, 2).float() / 255.0)
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)
    assert adapter.feature_channels == (4, 8, 12)
    assert [f.shape[1:] for f in adapter.encode(torch.rand(1, 3, H, W))] == [
        (4, 16, 24),
        (8, 8, 12),
        (12, 4, 6),
    ]


def test_teacher_net_checkpoint_loads(tmp_path):
    net = tiny_teacher_net()
    path = tmp_path / "teacher.safetensors"
    save_weights(
        path, net.state_dict(), {"kind": "teacher", "model_config": json.dumps(net.config.to_dict())}
    )
    adapter = TeacherNetAdapter.from_checkpoint(path)
    images = torch.rand(1, 3, H, W)
    with torch.no_grad():
        torch.testing.assert_close(adapter(images), TeacherNetAdapter(net)(images))


def test_images_must_be_float_nchw():
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        TeacherNetAdapter(tiny_teacher_net()).encode(torch.zeros(1, H, W, 3, dtype=torch.uint8))
    with pytest.raises(ValueError, match="uint8"):
        toy_teacher().infer(np.zeros((1, 3, H, W), np.float32))


def test_infer_takes_the_project_image_convention():
    teacher = toy_teacher()
    out = teacher.infer(SOURCE[0].images, batch_size=1)
    assert out.shape == (CAMS, H, W) and out.dtype == np.float32 and (out > 0).all()


def test_segnet_checkpoint_round_trip_and_errors(tmp_path):
    net = SegNet(4, width=4).eval()
    save_segnet(net, tmp_path / "seg.safetensors", {"seed": 3})
    loaded = load_segnet(tmp_path / "seg.safetensors")
    x = torch.rand(1, 3, H, W)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), net(x))
    assert SegNetAdapter(loaded).encode(x).shape == (1, 8, H // 4, W // 4)
    with pytest.raises(FileNotFoundError, match="no segmentation"):
        load_segnet(tmp_path / "missing.safetensors")
    save_weights(tmp_path / "other.safetensors", {"w": torch.zeros(1)}, {"kind": "teacher"})
    with pytest.raises(ValueError, match="not a SegNet"):
        load_segnet(tmp_path / "other.safetensors")
    with pytest.raises(ValueError, match="at least 2 classes"):
        SegNet(1)


def test_camera_frames_choose_seeded_camera_subsets():
    frames = CameraFrames(SOURCE, 16, 24, cameras=1, seed=5)
    item = frames[0]
    assert item["images"].shape == (1, 3, 16, 24) and item["images"].dtype == torch.float32
    assert item["depth"].shape == (1, 16, 24) and item["semantic"].dtype == torch.int64
    assert float(item["images"].max()) <= 1.0
    torch.testing.assert_close(frames[0]["images"], item["images"])
    whole = CameraFrames(SOURCE, H, W)[1]
    assert whole["images"].shape[0] == CAMS
    batch = collate_cameras([whole, whole])
    assert batch["images"].shape == (2 * CAMS, 3, H, W)


def test_camera_frames_reject_bad_sources():
    with pytest.raises(ValueError, match="no samples"):
        CameraFrames([], H, W)
    with pytest.raises(ValueError, match="cameras per sample"):
        CameraFrames(SOURCE, H, W, cameras=0)
    sample = toy_sample(0)
    sample.semantic = None
    with pytest.raises(ValueError, match="'toy' frame 0"):
        CameraFrames([sample], H, W)[0]


def test_hflip_mirrors_images_depth_and_classes_together():
    batch = collate_cameras([CameraFrames(SOURCE, H, W)[i] for i in range(3)])
    out = hflip(batch, torch.Generator().manual_seed(0))
    for i in range(batch["images"].shape[0]):
        flipped = torch.equal(out["semantic"][i], batch["semantic"][i].flip(-1))
        assert torch.equal(out["images"][i], batch["images"][i].flip(-1) if flipped else batch["images"][i])
        assert torch.equal(
            out["depth"][i].nan_to_num(),
            (batch["depth"][i].flip(-1) if flipped else batch["depth"][i]).nan_to_num(),
        )


def test_cosine_schedule():
    assert cosine_lr(0, 100, 1.0, 10) == pytest.approx(0.1)
    assert cosine_lr(10, 100, 1.0, 10) == pytest.approx(1.0)
    assert cosine_lr(100, 100, 1.0, 10) == pytest.approx(0.05)


def test_segnet_learns_the_toy_classes(tmp_path):
    torch.manual_seed(0)
    net = SegNet(4, width=8)
    frames = CameraFrames(SOURCE, H, W)
    rows = train_segnet(
        net, frames, steps=60, lr=5e-3, batch_frames=2, log_path=tmp_path / "log.csv", log_every=1
    )
    assert float(rows[-1]["loss"]) < 0.3 * float(rows[0]["loss"])
    scores = evaluate_segmentation(net, frames, ("road", "box", "pole", "sky"))
    assert scores["pixel_accuracy"] > 0.8 and set(scores["iou"]) == {"road", "box", "pole", "sky"}
    assert (tmp_path / "log.csv").read_text().startswith("step,lr,loss,pixel_accuracy")


def test_median_frequency_weights_favour_rare_classes():
    weights = median_frequency_weights(CameraFrames(SOURCE, H, W), 5, max_weight=8.0)
    # toy scenes: road and sky are large, the pole is thin, class 4 never occurs
    assert weights.shape == (5,) and float(weights[4]) == 8.0
    assert float(weights[2]) > float(weights[1]) > float(weights[0])


def test_gate_training_lowers_the_loss_and_touches_only_the_gate(tmp_path):
    teacher = toy_teacher(temperature="learnable")
    frozen = {k: v.clone() for k, v in teacher.state_dict().items() if not k.startswith("gate.")}
    saved = []
    rows = train_gate(
        teacher,
        CameraFrames(SOURCE, H, W),
        steps=40,
        lr=1e-2,
        max_depth=80.0,
        warmup_steps=2,
        batch_frames=2,
        log_path=tmp_path / "log.csv",
        log_every=5,
        checkpoint=saved.append,
        checkpoint_every=20,
    )
    assert saved == [20, 40]
    first, last = float(rows[0]["loss"]), float(rows[-1]["loss"])
    assert last < first
    assert float(rows[-1]["tau_mean"]) != 1.0
    for key, value in teacher.state_dict().items():
        if not key.startswith("gate."):
            assert torch.equal(value, frozen[key]), key


def test_evaluate_variants_one_pass(tmp_path):
    teacher = toy_teacher()
    fresh = tmp_path / "fresh.safetensors"
    teacher.save_gate(fresh)
    with torch.no_grad():
        for p in teacher.gate.parameters():
            p.add_(torch.randn_like(p) * 0.3)
    moved = tmp_path / "moved.safetensors"
    teacher.save_gate(moved)
    variants = [Variant("fresh", fresh), Variant("moved", moved), Variant("moved@tau=0.5", moved, 0.5)]
    results = evaluate_variants(
        teacher.depth,
        teacher.seg,
        CameraFrames(SOURCE[:2], H, W),
        SOURCE[0].camera_names,
        variants,
        EvalConfig(max_depth=80.0),
        thin_width=3,
    )
    assert set(results) == {TEACHER, "fresh", "moved", "moved@tau=0.5"}
    assert headline(results["fresh"]) == headline(results[TEACHER])
    assert headline(results["moved"]) != headline(results[TEACHER])
    assert headline(results["moved"]) != headline(results["moved@tau=0.5"])
    assert results["moved@tau=0.5"]["taus"] == [0.5] * 4 and results["moved"]["taus"] == [1.0] * 4
    assert results[TEACHER]["thin"]["mean"]["abs_rel"] >= 0
    with pytest.raises(ValueError, match="distinct"):
        evaluate_variants(
            teacher.depth,
            teacher.seg,
            CameraFrames(SOURCE[:1], H, W),
            SOURCE[0].camera_names,
            [Variant(TEACHER, fresh)],
            EvalConfig(),
        )


def test_recipe_defaults_overrides_and_errors(tmp_path):
    recipe = load_recipe(None, ["gate.temperature=learnable", "train.steps=7", "gate.levels=[1, 2]"])
    assert recipe["gate"]["temperature"] == "learnable" and recipe["train"]["steps"] == 7
    assert build.gate_config(recipe).levels == (1, 2)
    with pytest.raises(BrigesRecipeError, match="unknown field 'stepz'"):
        load_recipe(None, ["train.stepz=3"])
    with pytest.raises(BrigesRecipeError, match=r"gate\.temperature"):
        load_recipe(None, ["gate.temperature=annealed"])
    with pytest.raises(BrigesRecipeError, match=r"depth_model\.type"):
        load_recipe(None, ["depth_model.type=midas"])
    with pytest.raises(BrigesRecipeError, match=r"eval\.taus"):
        load_recipe(None, ["eval.taus=[0, 1]"])
    with pytest.raises(BrigesRecipeError, match="size"):
        load_recipe(None, ["size=[224]"])
    with pytest.raises(BrigesRecipeError, match=r"train\.steps"):
        load_recipe(None, ["train.steps=0"])
    with pytest.raises(BrigesRecipeError, match=r"key\.sub=value"):
        load_recipe(None, ["train.steps"])
    bad = tmp_path / "bad.yaml"
    bad.write_text("- a list\n")
    with pytest.raises(BrigesRecipeError, match="mapping"):
        load_recipe(bad)
    with pytest.raises(BrigesRecipeError, match=r"missing\.yaml: recipe file not found"):
        load_recipe(tmp_path / "missing.yaml")


def test_cli_end_to_end(tmp_path, monkeypatch, capsys):
    """train-seg, train-gate (fixed and learnable tau), evaluate --sweep on val and test, results, export."""
    monkeypatch.setattr(build, "open_split", lambda recipe, split, max_frames: SOURCE[: max_frames or None])
    net = tiny_teacher_net()
    teacher_path = tmp_path / "teacher.safetensors"
    save_weights(
        teacher_path, net.state_dict(), {"kind": "teacher", "model_config": json.dumps(net.config.to_dict())}
    )
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(
        f"size: [{H}, {W}]\n"
        f"depth_model: {{type: synth, path: {teacher_path}}}\n"
        f"segmentation_model: {{type: segnet, path: {tmp_path / 'seg' / 'segnet.safetensors'}}}\n"
        "segnet: {width: 4, steps: 4, cameras: 1}\n"
        "gate: {levels: [1, 2], dim: 8, heads: 2}\n"
        "train: {steps: 4, cameras: 1, warmup_steps: 1, log_every: 2, threads: 1}\n"
        "eval: {val_frames: 2, taus: [0.5, 1.0], thin_width: 3}\n"
    )
    common = ["--recipe", str(recipe), "--quiet"]
    cli.main(["train-seg", *common])
    assert json.loads((tmp_path / "seg" / "segnet_val.json").read_text())["frames"] == 2
    cli.main(["train-gate", *common, "--out", str(tmp_path / "fixed")])
    cli.main(["train-gate", *common, "--out", str(tmp_path / "learn"), "--set", "gate.temperature=learnable"])
    cli.main(
        ["train-gate", *common, "--out", str(tmp_path / "ctrl"), "--set", "segmentation_model.type=none"]
    )
    params = json.loads((tmp_path / "fixed" / "parameters.json").read_text())
    assert params["trainable"] == params["gate"] > 0
    gates = [
        "--gate",
        f"fixed={tmp_path / 'fixed' / 'gate.safetensors'}",
        "--gate",
        f"learn={tmp_path / 'learn' / 'gate.safetensors'}",
        "--control",
        f"ctrl={tmp_path / 'ctrl' / 'gate.safetensors'}",
        "--sweep",
        "fixed",
        "--sweep",
        "learn",
    ]
    for split in ("val", "test"):
        cli.main(
            [
                "evaluate",
                *common,
                *gates,
                "--split",
                split,
                "--max-frames",
                "2",
                "--json",
                str(tmp_path / f"{split}.json"),
            ]
        )
    test = json.loads((tmp_path / "test.json").read_text())
    assert set(test["results"]) == {
        TEACHER,
        "fixed",
        "fixed@tau=0.5",
        "fixed@tau=1",
        "learn",
        "learn@tau=0.5",
        "learn@tau=1",
        "ctrl",
    }
    out = tmp_path / "briges.md"
    metric_json = tmp_path / "student_eval.json"
    metric = {"abs_rel": 0.1, "sq_rel": 0.2, "rmse": 3.0, "a1": 0.9}
    metric_json.write_text(json.dumps({"mean": metric, "frames": 2, "cross_view": {"abs_rel": 0.05}}))
    cli.main(
        [
            "results",
            *common,
            "--val",
            str(tmp_path / "val.json"),
            "--test",
            str(tmp_path / "test.json"),
            "--fixed",
            "fixed",
            "--learnable",
            "learn",
            "--parameters",
            f"fixed={tmp_path / 'fixed' / 'parameters.json'}",
            "--out",
            str(out),
            "--command",
            "make it so",
            "--control",
            "ctrl",
            "--extra",
            "learn@tau=0.5",
            "--metric-eval",
            f"student (tau = 1)={metric_json}",
        ]
    )
    text = out.read_text()
    assert "| teacher alone | - |" in text and "best fixed tau (val)" in text and "make it so" in text
    assert "control: gate without segmentation" in text and "| gate `learn@tau=0.5` | 0.50 |" in text
    assert "| student (tau = 1) | 2 | 0.1000 | 0.2000 | 3.000 | 0.900 | 0.0500 |" in text
    onnx_path = tmp_path / "briges.onnx"
    cli.main(
        [
            "export-onnx",
            *common,
            "--gate",
            str(tmp_path / "fixed" / "gate.safetensors"),
            "--out",
            str(onnx_path),
        ]
    )
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    image = np.random.default_rng(0).normal(size=(2, 3, H, W)).astype(np.float32)
    disparity = session.run(None, {"image": image})[0]
    assert disparity.shape == (2, H, W) and np.isfinite(disparity).all()
    capsys.readouterr()


def test_no_segmentation_control_gives_the_gate_nothing_to_read():
    teacher = BrigesTeacher(
        TeacherNetAdapter(tiny_teacher_net()), NoSegmentation(), GateConfig((1, 2), dim=8, heads=2)
    )
    images = torch.rand(2, 3, H, W)
    assert torch.equal(teacher.seg.encode(images), torch.zeros(2, 1, 1, 1))
    assert teacher.parameter_counts()["segmentation_model"] == 0
    with torch.no_grad():
        assert teacher(images).shape == (2, H, W)
    assert load_recipe(None, ["segmentation_model.type=none"])["segmentation_model"]["type"] == "none"


def test_frame_subset_spreads_frames_evenly():
    subset = build.FrameSubset(list(range(10)), 4)
    assert subset.indices == [0, 3, 6, 9] and len(subset) == 4 and subset[1] == 3
    assert len(build.FrameSubset(list(range(3)), None)) == 3
    assert len(build.FrameSubset(list(range(3)), 8)) == 3


def _fake(abs_rel: float, taus: list[float]) -> dict:
    subset = {"mean": {"abs_rel": abs_rel, "a1": 1.0 - abs_rel}}
    return {"all": subset, "boundary": subset, "thin": subset, "taus": taus}


def test_best_fixed_tau_is_chosen_on_val_including_the_gates_own_tau():
    from fsmde_ros.briges.report import best_tau, results_markdown

    def split(name: str, fixed_own: float, swept: dict[float, float]) -> dict:
        results = {TEACHER: _fake(0.3, []), "g": _fake(fixed_own, [1.0, 1.0]), "l": _fake(0.2, [0.9, 1.1])}
        results.update({f"g@tau={t:g}": _fake(v, [t, t]) for t, v in swept.items()})
        return {
            "split": name,
            "frames": 3,
            "seed": 0,
            "boundary_log_ratio": 0.15,
            "thin_width": 5,
            "results": results,
        }

    val = split("val", 0.25, {0.5: 0.27, 2.0: 0.22})
    assert best_tau(val, "g") == 2.0
    assert best_tau(split("val", 0.2, {0.5: 0.27, 2.0: 0.22}), "g") == 1.0
    test = split("test", 0.24, {0.5: 0.26, 2.0: 0.21})
    text = results_markdown(val, test, {}, "g", "l", "cmd")
    assert "| + gate, best fixed tau (val) = 2 | 2 | 0.2100 |" in text
    assert "| + gate, tau = 1 | 1 | 0.2400 |" in text and "-20.0%" in text
    with pytest.raises(ValueError, match="no temperature sweep"):
        best_tau(split("val", 0.2, {}) | {"results": {"g": _fake(0.2, [0.9, 1.1])}}, "g")
