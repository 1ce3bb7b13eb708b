"""Exact geometry of self-supervised view synthesis: warping, relative transforms, pose interpolation."""

from __future__ import annotations

import math

import numpy as np
import torch

from fsmde_ros.geometry import backproject as np_backproject
from fsmde_ros.geometry import project as np_project
from fsmde_ros.geometry import transform_points
from fsmde_ros.rig import default_rig_path, load_rig
from fsmde_ros.selfsup.poses import axis_angle_to_matrix, ego_motion_to_camera, relative_transform
from fsmde_ros.selfsup.views import NEXT, PREVIOUS, SurroundClip, source_views
from fsmde_ros.selfsup.warping import inverse_warp

H, W = 12, 16
K = torch.tensor([[10.0, 0.0, 7.5], [0.0, 10.0, 5.5], [0.0, 0.0, 1.0]])


def _image(seed: int = 0, channels: int = 3) -> torch.Tensor:
    return torch.rand((1, channels, H, W), generator=torch.Generator().manual_seed(seed))


def _translation(tx: float, ty: float = 0.0, tz: float = 0.0) -> torch.Tensor:
    T = torch.eye(4)[None].clone()
    T[0, :3, 3] = torch.tensor([tx, ty, tz])
    return T


def test_identity_pose_reproduces_the_image():
    image = _image()
    depth = 1.0 + 9.0 * _image(1, 1)
    warped, valid = inverse_warp(image, depth, K[None], K[None], torch.eye(4)[None])
    assert bool(valid.all())
    torch.testing.assert_close(warped, image, atol=1e-5, rtol=0)


def test_known_translation_shifts_pixels_by_f_t_over_z():
    image = _image()
    depth = torch.full((1, 1, H, W), 5.0)
    # target point X maps to X + 1 m in the source: u_s = u + fx * 1 / 5 = u + 2
    warped, valid = inverse_warp(image, depth, K[None], K[None], _translation(1.0))
    torch.testing.assert_close(warped[..., : W - 2], image[..., 2:], atol=1e-5, rtol=0)
    assert bool(valid[..., : W - 2].all()) and not bool(valid[..., W - 2 :].any())


def test_vertical_translation_and_different_source_intrinsics():
    image = torch.rand((1, 3, 2 * H, 2 * W), generator=torch.Generator().manual_seed(3))
    K_source = torch.tensor([[20.0, 0.0, 15.5], [0.0, 20.0, 11.5], [0.0, 0.0, 1.0]])  # K for 2x the size
    depth = torch.full((1, 1, H, W), 4.0)
    # v_s = 2 * v + 0.5 + 20 * 0.2 / 4 = 2 v + 1.5 ; u_s = 2 u + 0.5
    warped, _ = inverse_warp(image, depth, K[None], K_source[None], _translation(0.0, 0.2))
    u = torch.arange(W) * 2 + 0.5
    v = torch.arange(H - 5) * 2 + 1.5
    # bilinear sample at half-pixel offsets = mean of the 4 neighbours
    vi, ui = v.long()[:, None], u.long()[None]
    expected = 0.25 * (image[..., vi, ui] + image[..., vi + 1, ui] + image[..., vi, ui + 1]
                       + image[..., vi + 1, ui + 1])
    torch.testing.assert_close(warped[..., : H - 5, :], expected, atol=1e-5, rtol=0)


def test_points_behind_the_source_camera_are_invalid():
    depth = torch.full((1, 1, H, W), 2.0)
    _, valid = inverse_warp(_image(), depth, K[None], K[None], _translation(0.0, 0.0, -3.0))
    assert not bool(valid.any())


def test_torch_warp_matches_numpy_geometry():
    rng = np.random.default_rng(0)
    depth = rng.uniform(2.0, 20.0, (H, W)).astype(np.float32)
    T = np.eye(4)
    T[:3, :3] = axis_angle_to_matrix(torch.tensor([[0.02, -0.05, 0.01]], dtype=torch.float64),
                                     torch.zeros(1, 3, dtype=torch.float64))[0, :3, :3].numpy()
    T[:3, 3] = [0.3, -0.1, 0.5]
    pix, _ = np_project(transform_points(T, np_backproject(depth, K.numpy().astype(np.float64))),
                        K.numpy().astype(np.float64))
    # sample an image that is a linear ramp in u and v: bilinear sampling reproduces u_s and v_s exactly
    vv, uu = torch.meshgrid(torch.arange(H, dtype=torch.float32), torch.arange(W, dtype=torch.float32),
                            indexing="ij")
    ramp = torch.stack([uu, vv])[None]
    warped, valid = inverse_warp(ramp, torch.from_numpy(depth)[None, None], K[None], K[None],
                                 torch.from_numpy(T).float()[None])
    inside = valid[0, 0].numpy()
    assert inside.sum() > H * W // 2
    np.testing.assert_allclose(warped[0, 0].numpy()[inside], pix[..., 0][inside], atol=1e-3)
    np.testing.assert_allclose(warped[0, 1].numpy()[inside], pix[..., 1][inside], atol=1e-3)


def test_relative_transform_between_adjacent_rig_cameras_maps_a_shared_point():
    rig = load_rig(default_rig_path())
    i, j = rig.adjacent[0]
    ci, cj = rig.cameras[i], rig.cameras[j]
    # a point 10 m out along the bisector of the two optical axes, in base_link
    axis = ci.cam2ego[:3, 2] + cj.cam2ego[:3, 2]
    p_ego = np.append(ci.cam2ego[:3, 3] + 10.0 * axis / np.linalg.norm(axis), 1.0)
    p_i = np.linalg.inv(ci.cam2ego) @ p_ego
    p_j = np.linalg.inv(cj.cam2ego) @ p_ego
    T = relative_transform(ci.cam2ego, cj.cam2ego)
    np.testing.assert_allclose(T @ p_i, p_j, atol=1e-6)  # rig rotations are orthonormal to ~1e-8


def test_axis_angle_to_matrix_is_rodrigues():
    T = axis_angle_to_matrix(torch.tensor([[0.0, 0.0, math.pi / 2]]), torch.tensor([[1.0, 2.0, 3.0]]))[0]
    torch.testing.assert_close(T[:3, :3], torch.tensor([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]),
                               atol=1e-6, rtol=0)
    torch.testing.assert_close(T[:3, 3], torch.tensor([1.0, 2.0, 3.0]))


def test_ego_motion_to_camera_matches_pose_composition():
    rig = load_rig(default_rig_path())
    cam2ego = torch.from_numpy(rig.extrinsics())
    motion = axis_angle_to_matrix(torch.tensor([[0.0, 0.0, 0.1]], dtype=torch.float64),
                                  torch.tensor([[1.5, 0.2, 0.0]], dtype=torch.float64))[0]
    # world: ego at target = identity, ego at source = inv(motion) so that motion maps target -> source
    ego_src = torch.linalg.inv(motion).numpy()
    per_camera = ego_motion_to_camera(motion, cam2ego).numpy()
    for c in range(len(rig)):
        expected = relative_transform(rig.cameras[c].cam2ego, ego_src @ rig.cameras[c].cam2ego)
        np.testing.assert_allclose(per_camera[c], expected, atol=1e-6)


def test_source_views_transforms_and_layout():
    rig = load_rig(default_rig_path()).resized(16, 8)
    n = len(rig)
    cam2world = np.stack([rig.extrinsics()] * 3)
    cam2world[1, :, 0, 3] -= 1.0  # previous frame: the whole rig 1 m further back along x
    cam2world[2, :, 0, 3] += 1.0
    cam2world[0, 3, 0, 3] += 0.1  # camera 3 fired later than the others at frame t
    clip = SurroundClip(torch.zeros(3, n, 3, 8, 16), torch.from_numpy(rig.intrinsics()).float(),
                        torch.from_numpy(rig.extrinsics()).float(), cam2world, rig.adjacent)
    views = source_views(clip)
    assert views.index.shape == (n, 4) and bool(views.exists.all())
    assert views.index[0, :2].tolist() == [PREVIOUS * n, NEXT * n]
    assert sorted(views.camera[0, 2:].tolist()) == sorted(j for pair in rig.adjacent if 0 in pair
                                                           for j in pair if j != 0)
    # a point fixed in the world seen by camera 0 at t maps to where the previous camera 0 saw it
    p_world = np.array([12.0, 0.5, 1.0, 1.0])
    p_t = np.linalg.inv(cam2world[0, 0]) @ p_world
    p_prev = np.linalg.inv(cam2world[1, 0]) @ p_world
    np.testing.assert_allclose(views.transforms[0, 0].double().numpy() @ p_t, p_prev, atol=1e-4)
    k = views.camera[2].tolist().index(3)  # camera 2's neighbour 3 includes its later firing
    np.testing.assert_allclose(views.transforms[2, k].double().numpy(),
                               relative_transform(cam2world[0, 2], cam2world[0, 3]), atol=1e-5)


def test_source_views_from_a_pose_network_motion_use_the_extrinsics():
    rig = load_rig(default_rig_path()).resized(16, 8)
    n = len(rig)
    clip = SurroundClip(torch.zeros(3, n, 3, 8, 16), torch.from_numpy(rig.intrinsics()).float(),
                        torch.from_numpy(rig.extrinsics()).float(), np.stack([rig.extrinsics()] * 3),
                        rig.adjacent)
    motion = axis_angle_to_matrix(torch.tensor([[0.0, 0.0, 0.05]]), torch.tensor([[-1.0, 0.0, 0.0]]))[0]
    views = source_views(clip, {PREVIOUS: motion, NEXT: torch.linalg.inv(motion)})
    torch.testing.assert_close(views.transforms[:, 0], ego_motion_to_camera(motion, clip.cam2ego))
    backward = ego_motion_to_camera(torch.linalg.inv(motion), clip.cam2ego)
    torch.testing.assert_close(views.transforms[:, 1], backward)
