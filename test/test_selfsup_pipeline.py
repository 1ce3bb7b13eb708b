"""Self-supervision on an exactly rendered toy sequence: clips, reprojection with the true depth, the
reflection mask with the true diffuse image, and short end-to-end runs of the three training stages
and the evaluation."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from fsmde_ros.datasets.sample import SurroundSample
from fsmde_ros.geometry import pixel_rays
from fsmde_ros.model import load_student
from fsmde_ros.rig import default_rig_path, load_rig
from fsmde_ros.selfsup.data import ClipError, clips_from_samples, load_clips, load_diffuse_clips, make_clip
from fsmde_ros.selfsup.evaluate import evaluate_runs, markdown, named_runs, sequence_changes
from fsmde_ros.selfsup.evaluate import main as evaluate_main
from fsmde_ros.selfsup.networks import IntrinsicNet
from fsmde_ros.selfsup.objective import (
    LossWeights,
    baseline_loss,
    decomposition_loss,
    predict_reflection_mask,
    rendered_log_diffuse,
    score_views,
)
from fsmde_ros.selfsup.photometric import masked_mean, masked_planarity
from fsmde_ros.selfsup.recipe import Recipe, RecipeError, load_recipe, recipe_from_dict
from fsmde_ros.selfsup.reflection_mask import reflection_mask
from fsmde_ros.selfsup.train import (
    DEPTH_FILE,
    INTRINSIC_FILE,
    POSE_FILE,
    given_mask,
    load_depth,
    load_intrinsic,
    pseudo_labels,
    save_intrinsic,
    teacher_outputs,
    train,
)
from fsmde_ros.selfsup.train import main as train_main
from fsmde_ros.selfsup.views import TARGET, source_views
from fsmde_ros.synth.dataset import write_frame, write_manifest
from fsmde_ros.synth.lidar import LidarModel

H, W = 64, 96
FRAME_NS = 83_333_333
CAMERA_OFFSET_NS = 4_000_000
SPEED = 1.0  # metres per frame along base_link x
BOX = {"x": (-40.0, 40.0), "y": (-7.0, 7.0), "z": (0.0, 8.0)}
MIRROR = {"x": (3.0, 6.0), "z": (1.0, 3.0)}  # a reflective patch on the wall y = +7


def _diffuse(points: np.ndarray, axis: int) -> np.ndarray:
    """View-invariant texture of the box walls: smooth sinusoids of the world point, per wall axis."""
    a, b = [p for p in range(3) if p != axis]
    u, v = points[..., a], points[..., b]
    base = np.array([0.35, 0.45, 0.55]) + 0.1 * axis
    pattern = 0.2 * np.sin(1.3 * u + axis)[..., None] * np.cos(0.9 * v)[..., None]
    return np.clip(base + pattern * np.array([1.0, -0.7, 0.5]), 0, 1)


def _environment(direction: np.ndarray) -> np.ndarray:
    """What the mirror reflects: a bright pattern that depends on the reflected direction only."""
    az = np.arctan2(direction[..., 1], direction[..., 0])
    return np.clip(0.5 + 0.45 * np.stack([np.sin(9 * az), np.cos(7 * az), np.sin(5 * az + 1)], -1), 0, 1)


def render(rig, ego_x: float) -> tuple[np.ndarray, ...]:
    """Images, diffuse images, z-depth and reflective mask (N, H, W[, 3]) with the vehicle at x = ego_x."""
    images, diffuse, depths, masks = [], [], [], []
    for cam in rig.cameras:
        rays = pixel_rays(cam.K, H, W).astype(np.float64)  # z = 1: the ray parameter is the z-depth
        d = rays @ cam.cam2ego[:3, :3].T
        o = cam.cam2ego[:3, 3] + np.array([ego_x, 0.0, 0.0])
        t = np.full((H, W), np.inf)
        axis_hit = np.zeros((H, W), dtype=int)
        for axis, key in enumerate("xyz"):
            with np.errstate(divide="ignore", invalid="ignore"):
                for bound in BOX[key]:
                    tb = (bound - o[axis]) / d[..., axis]
                    better = (tb > 0) & (tb < t)
                    t = np.where(better, tb, t)
                    axis_hit = np.where(better, axis, axis_hit)
        points = o + t[..., None] * d
        colour = np.zeros((H, W, 3))
        for axis in range(3):
            colour = np.where((axis_hit == axis)[..., None], _diffuse(points, axis), colour)
        mirror = ((axis_hit == 1) & (points[..., 1] > 0) & (points[..., 0] > MIRROR["x"][0])
                  & (points[..., 0] < MIRROR["x"][1]) & (points[..., 2] > MIRROR["z"][0])
                  & (points[..., 2] < MIRROR["z"][1]))
        reflected = d * np.array([1.0, -1.0, 1.0])
        shown = np.where(mirror[..., None], 0.3 * colour + 0.7 * _environment(reflected), colour)
        images.append((shown * 255).round().astype(np.uint8))
        diffuse.append(((colour * 255).round() / 255).astype(np.float32))
        depths.append(t.astype(np.float32))
        masks.append(mirror)
    return np.stack(images), np.stack(diffuse), np.stack(depths), np.stack(masks)


def toy_sequence(frames: int = 4, sequence: str = "toy") -> tuple[list[SurroundSample], list[np.ndarray]]:
    """Samples of a vehicle driving along x; each camera renders at the pose of its own stamp."""
    rig = load_rig(default_rig_path()).resized(W, H)
    n = len(rig)
    samples, diffuse = [], []
    for f in range(frames):
        stamps = f * FRAME_NS + CAMERA_OFFSET_NS * np.arange(n, dtype=np.int64)
        per_camera = [render(rig, SPEED * float(s) / FRAME_NS) for s in stamps]
        images = np.stack([per_camera[c][0][c] for c in range(n)])
        ego = np.stack([np.eye(4)] * n)
        ego[:, 0, 3] = SPEED * stamps / FRAME_NS
        samples.append(SurroundSample(
            images=images, K=rig.intrinsics(), cam2ego=rig.extrinsics(),
            sparse_depth=np.full((n, H, W), np.nan, np.float32), camera_names=tuple(rig.names),
            stamps_ns=stamps, ego_pose=ego[0], camera_ego_poses=ego,
            depth=np.stack([per_camera[c][2][c] for c in range(n)]),
            reflective=np.stack([per_camera[c][3][c] for c in range(n)]), sequence=sequence, frame_index=f))
        diffuse.append(np.stack([per_camera[c][1][c] for c in range(n)]))
    return samples, diffuse


@pytest.fixture(scope="module")
def toy():
    return toy_sequence()


def test_clips_from_samples_group_consecutive_frames(toy):
    samples, _ = toy
    clips = clips_from_samples(list(reversed(samples)), H, W)
    assert [c.name for c in clips] == ["toy/1", "toy/2"]
    clip = clips[0]
    assert clip.images.shape == (3, 6, 3, H, W) and clip.depth.shape == (6, 1, H, W)
    assert clip.adjacent == load_rig(default_rig_path()).adjacent
    # camera 3's image of frame 1 was taken 12 ms after the set's reference stamp: 0.144 m further on
    expected_x = 1.0 + 0.144 + clip.cam2ego[3, 0, 3].item()
    assert clip.cam2world[TARGET, 3][0, 3] == pytest.approx(expected_x, abs=1e-6)
    assert len(clips_from_samples(samples, H, W, max_clips=1)) == 1


def test_make_clip_rejects_missing_per_camera_poses_and_bad_order(toy):
    samples, _ = toy
    broken = SurroundSample(**{**samples[1].__dict__, "camera_ego_poses": None})
    with pytest.raises(ClipError, match="no camera_ego_poses"):
        make_clip(broken, samples[0], samples[2])
    with pytest.raises(ClipError, match="increasing stamps"):
        make_clip(samples[1], samples[2], samples[0])
    # one shared stamp per set: the set's ego pose is every camera's pose
    synced = SurroundSample(**{**broken.__dict__, "stamps_ns": np.full(6, broken.stamps_ns[0])})
    clip = make_clip(synced, samples[0], samples[2])
    np.testing.assert_allclose(clip.cam2world[TARGET], synced.ego_pose @ synced.cam2ego)


def test_true_depth_reprojects_the_lambertian_scene_and_the_mask_finds_the_mirror(toy):
    samples, diffuse = toy
    clip = make_clip(samples[1], samples[0], samples[2])
    views = source_views(clip)
    diffuse_all = torch.from_numpy(np.stack([diffuse[1], diffuse[0], diffuse[2]])).permute(0, 1, 4, 2, 3)
    frames = clip.images.reshape(-1, 3, H, W)
    rgb = score_views(frames, clip.depth, clip, views, 0.85)
    dif = score_views(diffuse_all.reshape(-1, 3, H, W).float(), clip.depth, clip, views, 0.85)
    truth = clip.reflective
    lambertian = rgb.keep & ~truth
    # warping with the true depth and poses explains every Lambertian pixel (up to resampling)
    assert float(masked_mean(rgb.best, lambertian)) < 0.02
    assert float(masked_mean(dif.best, dif.keep)) < 0.02
    assert float(masked_mean(rgb.best, rgb.seen & truth)) > 20 * float(masked_mean(rgb.best, lambertian))
    # the picked source is the warped image itself where the warp is exact
    assert float(masked_mean((dif.picked - frames[:6]).abs().mean(1, keepdim=True), dif.keep & ~truth)) < 0.02
    # the mirror shows a reflection at infinity: it looks the same from the previous frame, so
    # auto-masking drops most of it from the RGB loss, while the reflection mask must still see it
    assert float((rgb.keep & truth).sum() / truth.sum()) < 0.1
    mask = reflection_mask(rgb.best, dif.best, rgb.seen, confidence=0.99)
    recall = float((mask & truth).sum() / (truth & rgb.seen).sum())
    precision = float((mask & truth).sum() / mask.sum())
    near_truth = torch.nn.functional.max_pool2d(truth.float(), 5, 1, 2) > 0  # the SSIM window's reach
    assert recall > 0.95 and precision > 0.8
    assert bool(near_truth[mask].all())
    # the same through the objective's helper, with log L
    log_l = torch.log(diffuse_all.reshape(-1, 3, H, W).float())
    torch.testing.assert_close(predict_reflection_mask(clip.depth, clip, views, log_l, LossWeights()), mask)


def _recipe(tmp_path, stage: str, name: str, **extra) -> Recipe:
    data = {"name": name, "stage": stage, "out": str(tmp_path / name), "seed": 0,
            "data": {"height": H, "width": W}, "model": {"profile": "tiny"},
            "train": {"steps": 2, "log_every": 1, "checkpoint_every": 2, "threads": 1}}
    data.update(extra)
    return recipe_from_dict(data, f"<{name}>")


def test_three_stages_train_save_and_evaluate(tmp_path, toy):
    samples, _ = toy
    clips = clips_from_samples(samples, H, W)
    base = train(_recipe(tmp_path, "baseline", "base"), clips, progress=False)
    decomp = train(_recipe(tmp_path, "decomposition", "decomp", init=str(base),
                           train={"steps": 2, "log_every": 1, "checkpoint_every": 2, "threads": 1,
                                  "mask_warmup": 1}), clips, progress=False)
    posenet = train(_recipe(tmp_path, "baseline", "posenet", pose="network"), clips, progress=False)
    oracle = train(_recipe(tmp_path, "decomposition", "oracle", mask="dataset"), clips, progress=False)
    assert float((oracle / "log.csv").read_text().splitlines()[-1].split(",")[-1]) > 0  # mask_fraction
    teachers = {"baseline": str(base), "decomposition": str(decomp)}
    student = train(_recipe(tmp_path, "distill", "student", teachers=teachers, loss={"mask_confidence": 0.5}),
                    clips, progress=False)
    # the control masks: B's depth everywhere; the branch mask's pixel count per image, moved
    controls = {m: pseudo_labels(_recipe(tmp_path, "distill", m, teachers=teachers, mask=m), clips)
                for m in ("predicted", "shuffled", "everywhere")}
    depth_b = load_depth(decomp)(clips[0].images[TARGET]).depth[:, None].detach()
    torch.testing.assert_close(controls["everywhere"][0], depth_b)
    depth_a = load_depth(base)(clips[0].images[TARGET]).depth[:, None].detach()
    count = {m: [int((labels[0][i] != depth_a[i]).sum()) for i in range(len(depth_a))]
             for m, labels in controls.items() if m != "everywhere"}
    assert count["shuffled"] == count["predicted"]
    for run in (base, decomp, posenet, student):
        model, meta = load_student(run / DEPTH_FILE)
        assert meta["step"] == "2" and model.config.input_height == H
        rows = (run / "log.csv").read_text().splitlines()
        assert len(rows) == 3 and np.isfinite(float(rows[-1].split(",")[3]))
    assert (decomp / INTRINSIC_FILE).is_file() and (posenet / POSE_FILE).is_file()
    # a decomposition run initialised from a decomposition run starts from its branch too
    one_step = {"steps": 1, "lr": 1e-12, "log_every": 1, "checkpoint_every": 1, "threads": 1}
    again = train(_recipe(tmp_path, "decomposition", "again", init=str(decomp), train=one_step), clips,
                  progress=False)
    torch.testing.assert_close(load_intrinsic(again).head.weight, load_intrinsic(decomp).head.weight)
    assert "mask_fraction" in (decomp / "log.csv").read_text().splitlines()[0]
    report = evaluate_runs({**teachers, "distilled student": str(student)}, clips, "toy")
    refl = report["depth"]["baseline"]["reflective"]
    assert refl["pixels"] == int(sum(int(c.reflective.sum()) for c in clips)) and 0 <= refl["a1"] <= 1
    # the mask at the decomposition run's confidence, and at the student's where it fused its labels
    assert [(m["confidence"], m["used_by"]) for m in report["masks"]] == [
        (0.99, "decomposition model's training"), (0.5, "distilled student's pseudo labels")]
    for mask in report["masks"]:
        assert 0.0 <= mask["predicted_fraction"] <= 1.0
        if mask["predicted_fraction"] > 0:
            assert mask["lift"] == pytest.approx(mask["precision"] / mask["true_fraction"])
    assert report["masks"][1]["predicted_fraction"] >= report["masks"][0]["predicted_fraction"]
    assert report["seeds"] == {"baseline": 0, "decomposition": 0, "distilled student": 0}
    assert list(named_runs("b", "d", oracle="o", student="s")) == [
        "baseline", "decomposition", "oracle mask (ablation)", "distilled student"]
    ablations = named_runs("b", "d", diffuse_layer="l", student_diffuse_layer="t")
    assert list(ablations.values()) == ["b", "d", "l", "t"]
    page = markdown(report)
    assert "| distilled student |" in page and "Goal:" in page and "1 = chance" in page
    # one toy sequence: its per-sequence change is the pooled change
    assert list(report["per_sequence"]["baseline"]["non_reflective"]) == ["toy"]
    pooled = {m: report["depth"][m]["non_reflective"]["abs_rel"] for m in ("baseline", "decomposition")}
    assert sequence_changes(report["per_sequence"], "decomposition", "non_reflective") == pytest.approx(
        [100 * (pooled["decomposition"] - pooled["baseline"]) / pooled["baseline"]])
    assert "- decomposition: reflective median" in page and "worse in" in page


def test_resume_continues_from_the_checkpoint(tmp_path, toy):
    samples, _ = toy
    clips = clips_from_samples(samples, H, W, max_clips=1)
    recipe = _recipe(tmp_path, "baseline", "resume")
    train(recipe, clips, progress=False)
    longer = recipe_from_dict({**asdict(recipe), "loss": asdict(recipe.loss), "data": asdict(recipe.data),
                               "train": {**asdict(recipe.train), "steps": 3}, "model": asdict(recipe.model),
                               "teachers": asdict(recipe.teachers)}, "<resume>")
    out = train(longer, clips, resume=True, progress=False)
    rows = (out / "log.csv").read_text().splitlines()
    assert [r.split(",")[0] for r in rows] == ["step", "1", "2", "3"]
    assert load_student(out / DEPTH_FILE)[1]["step"] == "3"


def test_recipes_in_config_load_and_bad_recipes_are_named(tmp_path):
    for path in sorted(Path("config/recipes").glob("selfsup_*.yaml")):
        assert load_recipe(path).name == path.stem
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nstage: baseline\nout: o\ndata: {height: 100}\n")
    with pytest.raises(RecipeError, match=r"bad.yaml: data.height and data.width must be positive multiples"):
        load_recipe(bad)
    bad.write_text("name: x\nstage: distill\nout: o\n")
    with pytest.raises(RecipeError, match=r"teachers\.baseline"):
        load_recipe(bad)
    bad.write_text("name: x\nstage: baseline\nout: o\ntrain: {stepz: 3}\n")
    with pytest.raises(RecipeError, match=r"train: unknown key\(s\) \['stepz'\]"):
        load_recipe(bad)
    with pytest.raises(RecipeError, match="expected an integer"):
        load_recipe(bad, ["train.stepz=", "train={steps: 1.5}"])
    bad.write_text("name: x\nstage: decomposition\nout: o\nmask: true\n")
    with pytest.raises(RecipeError, match="mask: expected a string"):
        load_recipe(bad)
    with pytest.raises(RecipeError, match="mask must be one of"):
        load_recipe(bad, ["mask=oracle"])
    with pytest.raises(RecipeError, match="mask 'dataset' applies to decomposition runs only"):
        load_recipe(bad, ["mask=dataset", "stage=baseline"])
    with pytest.raises(RecipeError, match=r"mask 'shuffled' .* applies to distill runs only"):
        load_recipe(bad, ["mask=shuffled"])
    with pytest.raises(RecipeError, match="recipe file not found"):
        load_recipe(tmp_path / "missing.yaml")


def _write_split(root: Path, samples: list[SurroundSample], reflections: bool = True) -> Path:
    rig = load_rig(default_rig_path()).resized(W, H)
    write_manifest(root, rig, {"test": (1, len(samples))}, LidarModel(), 12.0, "toy", reflections)
    seq = root / "test" / "test_00000"
    seq.mkdir(parents=True)
    for s in samples:
        write_frame(seq / f"frame_{s.frame_index:04d}.npz", {
            "images": s.images, "depth": s.depth, "sparse_depth": s.sparse_depth,
            "semantic": np.zeros(s.depth.shape, np.uint8), "reflective": s.reflective,
            "stamps_ns": s.stamps_ns, "ego_pose": s.ego_pose, "camera_ego_poses": s.camera_ego_poses,
            "K": s.K, "cam2ego": s.cam2ego})
    return seq


def _diffuse_samples(samples: list[SurroundSample], diffuse: list[np.ndarray]) -> list[SurroundSample]:
    return [SurroundSample(**{**s.__dict__, "images": (d * 255).round().astype(np.uint8)})
            for s, d in zip(samples, diffuse, strict=True)]


def test_load_clips_reads_a_synthsurround_split(tmp_path, toy):
    samples, diffuse = toy
    seq = _write_split(tmp_path / "rgb", samples)
    clips = load_clips(tmp_path / "rgb", "test", H // 2 * 2, W, max_clips=5)
    assert len(clips) == 2 and clips[1].name == "test_00000/2"
    torch.testing.assert_close(clips[0].images, clips_from_samples(samples, H, W)[0].images)
    # the diffuse layer of the same split, clip for clip, from a rendering without reflections
    _write_split(tmp_path / "diffuse", _diffuse_samples(samples, diffuse), reflections=False)
    layer = load_diffuse_clips(tmp_path / "diffuse", "test", clips, max_clips=5)
    assert [c.name for c in layer] == [c.name for c in clips]
    torch.testing.assert_close(layer[0].images[TARGET, :, :, 0, 0],
                               torch.from_numpy(diffuse[1][:, 0, 0]).float(), atol=1 / 255, rtol=0)
    with pytest.raises(ClipError, match="not a rendering without reflections"):
        load_diffuse_clips(tmp_path / "rgb", "test", clips)
    with pytest.raises(ClipError, match="differ from the RGB clips'"):
        load_diffuse_clips(tmp_path / "diffuse", "test", clips, max_clips=1)
    with pytest.raises(ClipError, match="no sequence has three consecutive frames"):
        load_clips(tmp_path / "rgb", "val", H, W)
    (seq / "frame_0001.npz").write_bytes(b"broken")
    with pytest.raises(ClipError, match=r"frame_0001\.npz: not a readable frame file"):
        load_clips(tmp_path / "rgb", "test", H, W)[0]


def test_diffuse_layer_mask_source_trains_with_the_renderers_decomposition(tmp_path, toy):
    samples, diffuse = toy
    clips = clips_from_samples(samples, H, W)
    layer = clips_from_samples(_diffuse_samples(samples, diffuse), H, W)
    with pytest.raises(RecipeError, match=r"needs data\.diffuse_root"):
        _recipe(tmp_path, "decomposition", "x", mask="diffuse-layer")
    recipe = _recipe(tmp_path, "decomposition", "ideal", mask="diffuse-layer",
                     data={"height": H, "width": W, "diffuse_root": "rendered-without-reflections"})
    with pytest.raises(ValueError, match="diffuse layer of every clip"):
        train(recipe, clips, progress=False)
    run = train(recipe, clips, progress=False, diffuse_clips=layer)
    header, *rows = (run / "log.csv").read_text().splitlines()
    assert header.split(",")[-1] == "mask_fraction" and 0 < float(rows[-1].split(",")[-1]) < 0.5
    # the given mask is the Mahalanobis test on the rendered diffuse layer at the current depth
    clip, views = clips[0], source_views(clips[0])
    expected = predict_reflection_mask(clip.depth, clip, views, rendered_log_diffuse(layer[0]), recipe.loss)
    assert torch.equal(given_mask(recipe, clip, layer[0], clip.depth, views), expected)
    assert float((expected & clip.reflective).sum()) > 0.5 * float(expected.sum())
    # the distill stage with the same mask source: the pseudo labels follow the rendered layer's mask
    teachers = (load_depth(run), load_depth(run), load_intrinsic(run))
    depth_b = teachers[1](clip.images[TARGET]).depth[:, None].detach()
    _, _, mask = teacher_outputs(*teachers, clip, recipe.loss, layer[0])
    with pytest.raises(ValueError, match="needs the decomposition branch or the rendered diffuse layer"):
        teacher_outputs(teachers[0], teachers[1], None, clip, recipe.loss)
    assert torch.equal(mask, predict_reflection_mask(depth_b, clip, views, rendered_log_diffuse(layer[0]),
                                                     recipe.loss))
    student = _recipe(tmp_path, "distill", "student", mask="diffuse-layer",
                      data={"height": H, "width": W, "diffuse_root": "rendered-without-reflections"},
                      teachers={"baseline": str(run), "decomposition": str(run)})
    assert (train(student, clips, progress=False, diffuse_clips=layer) / DEPTH_FILE).is_file()


def _mirror_error(net: IntrinsicNet, clips, layer) -> float:
    """Mean |L - true diffuse| over the reflective pixels of the clips' target images."""
    errors = []
    with torch.no_grad():
        for clip, diffuse in zip(clips, layer, strict=True):
            log_l, _ = net.eval()(clip.images[TARGET])
            mirror = clip.reflective.expand(-1, 3, -1, -1)
            errors.append((torch.exp(log_l) - diffuse.images[TARGET]).abs()[mirror])
    return float(torch.cat(errors).mean())


def test_intrinsic_stage_pretrains_the_branch_on_the_diffuse_layer(tmp_path, toy):
    samples, diffuse = toy
    clips = clips_from_samples(samples, H, W)
    layer = clips_from_samples(_diffuse_samples(samples, diffuse), H, W)
    data = {"height": H, "width": W, "diffuse_root": "rendered-without-reflections"}
    for extra, message in (({"data": {"height": H, "width": W}}, "needs data.diffuse_root"),
                           ({"data": data, "init": "runs/x"}, "takes no mask or init"),
                           ({"data": data, "mask": "diffuse-layer"}, "takes no mask or init")):
        with pytest.raises(RecipeError, match=message):
            _recipe(tmp_path, "intrinsic", "x", **extra)
    with pytest.raises(RecipeError, match="intrinsic_init applies to intrinsic and decomposition runs"):
        _recipe(tmp_path, "baseline", "x", intrinsic_init="runs/x")
    with pytest.raises(RecipeError, match="intrinsic_lr must be >= 0"):
        _recipe(tmp_path, "decomposition", "x", train={"intrinsic_lr": -1.0})
    steps = {"steps": 60, "lr": 0.001, "log_every": 10, "checkpoint_every": 20, "threads": 1}
    recipe = _recipe(tmp_path, "intrinsic", "intrinsic", data=data, train=steps)
    with pytest.raises(ValueError, match="needs the diffuse layer of every clip"):
        train(recipe, clips, progress=False)
    run = train(recipe, clips, progress=False, diffuse_clips=layer)
    assert not (run / DEPTH_FILE).exists()
    header = (run / "log.csv").read_text().splitlines()[0]
    assert header.split(",")[3:] == ["loss", "diffuse_regression", "reconstruction"]
    # the branch moved from the identity split towards the true diffuse layer on the mirror
    branch = load_intrinsic(run)
    assert _mirror_error(branch, clips, layer) < 0.7 * _mirror_error(IntrinsicNet(), clips, layer)
    # resuming continues the step count from the branch's checkpoint
    longer = _recipe(tmp_path, "intrinsic", "intrinsic", data=data, train={**steps, "steps": 70})
    train(longer, clips, resume=True, progress=False, diffuse_clips=layer)
    assert [r.split(",")[0] for r in (run / "log.csv").read_text().splitlines()[-2:]] == ["60", "70"]
    # a decomposition run starts its branch from intrinsic_init; intrinsic_lr 0 keeps it bit for bit
    frozen = train(_recipe(tmp_path, "decomposition", "frozen", intrinsic_init=str(run),
                           train={"steps": 2, "log_every": 1, "checkpoint_every": 2, "threads": 1,
                                  "intrinsic_lr": 0.0}), clips, progress=False)
    before, after = load_intrinsic(run).state_dict(), load_intrinsic(frozen).state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    tuned = train(_recipe(tmp_path, "decomposition", "tuned", intrinsic_init=str(run),
                          train={"steps": 2, "log_every": 1, "checkpoint_every": 2, "threads": 1,
                                 "intrinsic_lr": 1.0}), clips, progress=False)
    assert not torch.equal(load_intrinsic(tuned).head.weight, before["head.weight"])
    # a branch saved without the current format (log L without the input skip) is refused
    old = tmp_path / "old"
    old.mkdir()
    save_file({k: v.contiguous() for k, v in branch.state_dict().items()}, str(old / INTRINSIC_FILE))
    with pytest.raises(ValueError, match="format 1, this IntrinsicNet reads format 2"):
        load_intrinsic(old)
    save_intrinsic(branch, old)
    assert torch.equal(load_intrinsic(old).head.weight, branch.head.weight)


def test_decomposition_terms_do_not_move_the_depth_outside_the_mask(toy):
    samples, diffuse = toy
    clip = make_clip(samples[1], samples[0], samples[2])
    views = source_views(clip)
    depth = (clip.depth * 1.1).requires_grad_()
    log_l = torch.log(torch.from_numpy(np.stack([diffuse[1], diffuse[0], diffuse[2]])).permute(0, 1, 4, 2, 3)
                      .reshape(-1, 3, H, W).float().clamp(min=1e-3)).requires_grad_()
    log_r = torch.zeros_like(log_l, requires_grad=True)
    decomposition_loss(depth, clip, views, log_l, log_r, LossWeights(), use_mask=False)["loss"].backward()
    grad_decomposition = depth.grad.clone()
    assert float(log_l.grad.abs().sum()) > 0
    depth.grad = None
    baseline_loss(depth, clip, views, LossWeights())["loss"].backward()
    torch.testing.assert_close(grad_decomposition, depth.grad)
    # masked pixels give the depth no photometric gradient: with the true mirror as the mask, the
    # depth loss is the baseline's RGB loss over the other pixels
    depth.grad = None
    out = decomposition_loss(depth, clip, views, log_l.detach(), log_r.detach(), LossWeights(),
                             mask=clip.reflective)
    rgb = score_views(clip.images.reshape(-1, 3, H, W), depth, clip, views, 0.85)
    torch.testing.assert_close(out["photometric"], masked_mean(rgb.best, rgb.keep & ~clip.reflective))
    out["loss"].backward()
    assert float(depth.grad[clip.reflective].abs().max()) < float(depth.grad[~clip.reflective].abs().max())
    predicted = decomposition_loss(depth.detach(), clip, views, log_l.detach(), log_r.detach(), LossWeights())
    assert 0 < float(predicted["mask_fraction"]) < 0.2


def test_planarity_prior_acts_on_the_masked_pixels_only(toy):
    samples, _ = toy
    clip = make_clip(samples[1], samples[0], samples[2])
    views = source_views(clip)
    log_l = torch.log(clip.images.reshape(-1, 3, H, W).clamp(min=1e-3))
    log_r = torch.zeros_like(log_l)
    bumpy = clip.depth * (1 + 0.2 * torch.rand(clip.depth.shape, generator=torch.Generator().manual_seed(0)))
    grads = {}
    for weight in (0.0, 1.0):
        depth = bumpy.clone().requires_grad_()
        out = decomposition_loss(depth, clip, views, log_l, log_r, LossWeights(planarity=weight),
                                 mask=clip.reflective)
        out["loss"].backward()
        grads[weight] = depth.grad
    torch.testing.assert_close(out["planarity"], masked_planarity(1.0 / bumpy, clip.reflective))
    assert float(out["planarity"].detach()) > 0
    change = (grads[1.0] - grads[0.0]).abs()
    # the prior acts on the masked pixels and their 3x3 neighbourhood (the second differences); further
    # away only through the per-image mean of the normalised disparity, orders of magnitude less
    near = torch.nn.functional.max_pool2d(clip.reflective.float(), 3, 1, 1) > 0
    assert float(change[clip.reflective].max()) > 100 * float(change[~near].max())


def test_command_lines_report_bad_input_and_exit_2(tmp_path, capsys):
    assert train_main([str(tmp_path / "missing.yaml")]) == 2
    assert "missing.yaml: recipe file not found" in capsys.readouterr().err
    assert evaluate_main(["--baseline", str(tmp_path), "--decomposition", str(tmp_path), "--root",
                          str(tmp_path), "--split", "test"]) == 2
    assert "manifest not found" in capsys.readouterr().err
