"""The synthetic scene generator and its reference renderer against hand-derived answers."""

from pathlib import Path

import numpy as np
import pytest

from relight_core.evaluation import synthetic

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
SIZE = 64


def _photo() -> np.ndarray:
    rng = np.random.default_rng(3)
    return rng.uniform(0.05, 0.9, (80, 100, 3)).astype(np.float32)


def _pano_with_patch(direction, height=32, radiance=500.0, ambient=0.0) -> np.ndarray:
    """Panorama with one bright pixel toward ``direction`` (world frame)."""
    pano = np.full((height, 2 * height, 3), ambient, np.float32)
    dirs = synthetic.pano_directions(height)
    nearest = np.argmax(dirs @ np.asarray(direction, float))
    row, col = np.unravel_index(nearest, (height, 2 * height))
    pano[row, col] = radiance
    return pano


def test_subject_layers_follow_the_array_contracts():
    subject = synthetic.make_subject("head", _photo(), size=SIZE, ss=2, hair_strands=60)
    assert subject.alpha.shape == (SIZE, SIZE) and subject.alpha.dtype == np.float32
    assert 0.0 <= subject.alpha.min() and subject.alpha.max() <= 1.0
    fractional = (subject.alpha > 0) & (subject.alpha < 1)
    assert fractional.sum() > 50  # anti-aliased edge and hair strands
    inside = subject.alpha > 0
    lengths = np.linalg.norm(subject.normals[inside], axis=-1)
    assert np.allclose(lengths, 1.0, atol=1e-4)
    assert np.all(subject.normals[~inside] == (0, 0, 1))
    assert subject.normals[inside][:, 2].min() >= 0  # visible surfaces face the camera
    assert subject.height.min() == 0 and subject.height.max() > 0
    assert np.all(subject.height[subject.alpha == 0] == 0)


def test_fresnel_runs_from_f0_facing_to_f90_at_grazing():
    assert synthetic.fresnel(np.array(1.0)) == pytest.approx(synthetic.FRESNEL_F0)
    assert synthetic.fresnel(np.array(0.0)) == pytest.approx(synthetic.FRESNEL_F90)
    assert synthetic.fresnel(np.array(0.5)) == pytest.approx(0.04 + 0.31 / 32)


def test_sphere_normals_and_height_match_the_analytic_sphere():
    subject = synthetic.make_subject("sphere", _photo(), size=SIZE, ss=2)
    (cx, cy, _), (radius, _, _) = synthetic.SHAPES["sphere"][0].centre, \
        synthetic.SHAPES["sphere"][0].radii
    coords = (np.arange(SIZE) + 0.5) / SIZE * 2 - 1
    x, y = np.meshgrid(coords, -coords)
    solid = subject.alpha == 1.0
    expected_x = (x - cx) / radius
    expected_y = (y - cy) / radius
    # pixel normals are means over 2×2 sub-samples: allow the curvature across one pixel
    assert np.abs(subject.normals[..., 0][solid] - expected_x[solid]).max() < 0.06
    assert np.abs(subject.normals[..., 1][solid] - expected_y[solid]).max() < 0.06
    # the sphere's top point is one radius (in pixels: radius · SIZE / 2) above its rim
    assert subject.height.max() == pytest.approx(radius * SIZE / 2, rel=0.03)


def test_constant_sky_gives_constant_diffuse_and_specular():
    pano = np.full((32, 64, 3), 0.7, np.float32)
    maps = synthetic.light_maps(pano, np.eye(3), exponent=16, source_height=32)
    normals = synthetic.pano_directions(8).reshape(-1, 3)
    diffuse, specular = maps.shade(normals)
    assert np.allclose(diffuse, 0.7, rtol=1e-4)  # ∫ L cos/π over a hemisphere = L
    assert np.allclose(specular, 0.7, rtol=1e-4)


def test_a_point_light_follows_the_cosine_law():
    light = np.array([0.6, 0.0, 0.8])
    pano = _pano_with_patch(light, height=64)
    maps = synthetic.light_maps(pano, np.eye(3), source_height=64)
    normals = np.array([[0.0, 0.0, 1.0], light, [1.0, 0.0, 0.0], [-0.8, 0.0, -0.6]])
    diffuse = maps.shade(normals)[0][:, 0]
    cosines = np.clip(normals @ light, 0, None)
    assert diffuse[1] > 0
    assert np.allclose(diffuse / diffuse[1], cosines, atol=0.03)
    assert diffuse[3] == pytest.approx(0.0, abs=1e-6)  # facing away: no light at all


def test_camera_yaw_moves_the_light_into_the_camera_frame():
    pano = _pano_with_patch([1.0, 0.0, 0.0])  # sun toward world +x (panorama u = 0.75)
    front = np.array([[0.0, 0.0, 1.0]])
    right = np.array([[1.0, 0.0, 0.0]])
    straight = synthetic.light_maps(pano, synthetic.camera_to_world(0, 0), source_height=32)
    assert straight.shade(right)[0].sum() > 10 * straight.shade(front)[0].sum() + 1e-6
    # turning 90° to the right the camera faces the sun: it is behind the subject now
    facing = synthetic.light_maps(pano, synthetic.camera_to_world(90, 0), source_height=32)
    back = np.array([[0.0, 0.0, -1.0]])
    assert facing.shade(back)[0].sum() > 0
    assert facing.shade(front)[0].sum() == pytest.approx(0.0, abs=1e-6)


def test_view_centre_looks_at_the_panorama_centre_and_energy_survives_rotation():
    pano = np.zeros((32, 64, 3), np.float32)
    pano[15:17, 31:33] = 1.0  # the panorama's centre (looks along −z)
    view = synthetic.render_view(pano, np.eye(3), 30.0, 16, 16)
    assert view[7:9, 7:9].min() > 0.1 and view[0, 0].max() == 0.0
    hdri = np.random.default_rng(0).uniform(0, 1, (32, 64, 3)).astype(np.float32)
    hdri[5, 40] = 300.0
    rotated = synthetic.pano_in_camera_frame(hdri, synthetic.camera_to_world(37, 4), height=32)
    solid = synthetic.pano_solid_angles(32)[..., None]
    assert (rotated * solid).sum() == pytest.approx((hdri * solid).sum(), rel=0.03)


def test_rendering_obeys_the_compositing_equation_and_the_lighting():
    subject = synthetic.make_subject("ellipsoid", _photo(), size=SIZE, ss=2, hair_strands=40,
                                     specular_weight=0.1)
    pano = np.full((32, 64, 3), 0.5, np.float32)
    scene = synthetic.Scene("flat", "-", 0, 0, "overcast", "test")
    light = synthetic.prepare_scene(pano, scene, SIZE)
    rendering = synthetic.render(subject, light)
    alpha = subject.alpha[..., None]
    recomposed = alpha * rendering.foreground + (1 - alpha) * rendering.background
    assert np.allclose(rendering.image, recomposed, atol=1e-6)
    # uniform light 0.5: radiance = (albedo + k_s·F) · 0.5 · exposure wherever the subject is;
    # facing the camera F = F0 exactly
    solid = subject.alpha == 1
    facing = solid & (subject.normals[..., 2] > 0.999)
    assert facing.sum() > 4
    expected = (subject.albedo + 0.1 * synthetic.FRESNEL_F0) * 0.5 * rendering.exposure
    assert np.allclose(rendering.foreground[facing], expected[facing], rtol=1e-3)
    assert np.all(rendering.specular[solid] >= 0.1 * synthetic.FRESNEL_F0 * 0.5 *
                  rendering.exposure * (1 - 1e-4))
    expected = subject.albedo * 0.5 * rendering.exposure + rendering.specular
    assert np.allclose(rendering.foreground[solid], expected[solid], rtol=1e-3)
    assert np.allclose(rendering.diffuse_shading[solid], 0.5 * rendering.exposure, rtol=1e-3)


@pytest.mark.skipif(not (DATA / "hdri").is_dir(), reason="shared data folder not present")
def test_every_scene_panorama_loads_and_every_kind_is_covered():
    kinds = {scene.kind for scene in synthetic.SCENES}
    assert kinds == set(synthetic.SCENE_KINDS)
    for scene in synthetic.SCENES:
        pano = synthetic.load_hdri(DATA / scene.hdri)
        assert pano.shape[1] == 2 * pano.shape[0] and pano.dtype == np.float32
        assert np.isfinite(pano).all() and pano.min() >= 0


def test_unreadable_panorama_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="cannot read"):
        synthetic.load_hdri(tmp_path / "missing.hdr")


def test_pixel_shading_equals_the_rendering_where_a_pixel_sees_one_surface():
    subject = synthetic.make_subject("sphere", _photo(), size=SIZE, ss=2)
    pano = _pano_with_patch([0.3, 0.5, 0.8], height=32, radiance=200.0, ambient=0.2)
    scene = synthetic.Scene("patch", "-", 0, 0, "sunny", "test")
    light = synthetic.prepare_scene(pano, scene, SIZE)
    rendering = synthetic.render(subject, light)
    per_pixel = synthetic.shade_pixels(subject, light)
    rows, cols = np.mgrid[:SIZE, :SIZE] - SIZE / 2
    centre = (subject.alpha == 1) & (np.hypot(rows, cols) < 10)
    # the texture varies inside a pixel, the light hardly: mean(ρ·E) ≈ mean(ρ)·E at the centre
    difference = np.abs(per_pixel[centre] - rendering.foreground[centre])
    assert difference.sum() / rendering.foreground[centre].sum() < 0.01
    assert difference.max() < 0.05 * rendering.foreground[centre].max()
    assert np.all(per_pixel[subject.alpha == 0] == 0)
