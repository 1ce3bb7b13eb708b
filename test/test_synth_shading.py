"""Shadows, mirrors and the sky of the SynthSurround shading."""

from dataclasses import replace

import numpy as np

from fsmde_ros.synth.scene import FACADE, PrimitiveBuilder, generate_scene
from fsmde_ros.synth.shading import SHADOW_CELL_M, Surface, shade, shadow_map, sky_colour


def _one_box_scene(sun_dir, bottom=0.0):
    """A 2 x 4 x (4 - bottom) m box over x in [9, 11], y in [-2, 2], z in [bottom, 4]."""
    scene = generate_scene(0)
    boxes = PrimitiveBuilder("box")
    boxes.add((10.0, 0.0, (4.0 + bottom) / 2), (1.0, 2.0, (4.0 - bottom) / 2), 2, FACADE, (0.5, 0.5, 0.5))
    light = replace(scene.lighting, sun_dir=np.asarray(sun_dir, float) / np.linalg.norm(sun_dir))
    return replace(scene, lighting=light), (boxes.build(),)


def test_a_box_casts_its_exact_shadow():
    # Sun straight overhead, box floating 2 m up: the shadow is its footprint x in [9, 11], y in [-2, 2].
    scene, groups = _one_box_scene((0.0, 0.0, 1.0), bottom=2.0)
    shadows = shadow_map(scene, groups, centre_x=0.0)
    assert shadows.sample(np.array([10.0]), np.array([0.0]))[0] == 0.0
    assert shadows.sample(np.array([11.5]), np.array([0.0]))[0] == 1.0
    dark = (1 - shadows.lit).sum() * SHADOW_CELL_M**2
    assert abs(dark - 2.0 * 4.0) < 0.5
    # Sun at 45 degrees from +x: a 4 m tall box on the ground throws a shadow over x in [5, 9].
    scene, groups = _one_box_scene((1.0, 0.0, 1.0))
    shadows = shadow_map(scene, groups, centre_x=0.0)
    assert shadows.sample(np.array([6.5]), np.array([0.0]))[0] == 0.0
    assert shadows.sample(np.array([4.5]), np.array([0.0]))[0] == 1.0


def test_mirror_pixels_depend_on_the_viewpoint_and_matte_ones_do_not():
    scene = generate_scene(1)
    point = np.array([[5.0, scene.street.facade_y[1], 3.0]] * 2, np.float32)
    normal = np.array([[0.0, -1.0, 0.0]] * 2, np.float32)
    views = np.array([[0.3, 1.0, 0.0], [-0.8, 1.0, -0.3]], np.float32)  # two directions onto the wall
    matte = Surface(
        point,
        normal,
        np.full((2, 3), 0.5, np.float32),
        np.zeros(2, np.uint8),
        np.zeros(2, np.float32),
        np.zeros(2, np.float32),
        np.zeros(2, bool),
    )
    shadows = shadow_map(scene, (), centre_x=0.0)
    lambert = shade(scene, matte, views, shadows)
    np.testing.assert_allclose(lambert[0], lambert[1], rtol=1e-6)
    mirror = replace(matte, mirror=np.full(2, 0.22, np.float32))
    glass = shade(scene, mirror, views, shadows)
    assert np.abs(glass[0] - glass[1]).max() > 0.02


def test_sky_is_brighter_towards_the_sun():
    scene, _ = _one_box_scene((0.3, 0.2, 0.9))
    towards, away = sky_colour(scene, np.array([[0.3, 0.2, 0.9], [-0.3, -0.2, 0.9]], np.float32))
    assert towards.sum() > away.sum()
