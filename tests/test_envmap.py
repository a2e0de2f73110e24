"""Panorama maths: SH projection against the shared ground truth, rotation, Phong prefilter."""

import json
import math
from pathlib import Path

import cv2
import numpy as np
import pytest

from relight_core import envmap

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def _read_hdr(path: Path) -> np.ndarray:
    bgr = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    return np.ascontiguousarray(bgr[..., ::-1], dtype=np.float32)


def _spot_pano(height: int, direction, colour, width_deg: float = 6.0, ambient=0.05):
    """Panorama: uniform ambient plus one Gaussian spot (a compact light)."""
    dirs = envmap.direction_grid(height)
    direction = np.asarray(direction, np.float64) / np.linalg.norm(direction)
    angle = np.arccos(np.clip(dirs @ direction, -1, 1))
    spot = np.exp(-0.5 * (angle / math.radians(width_deg)) ** 2)
    return (ambient + spot[..., None] * np.asarray(colour, np.float32)).astype(np.float32)


def test_direction_grid_matches_convention():
    dirs = envmap.direction_grid(8)
    assert dirs.shape == (8, 16, 3) and dirs.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(dirs, axis=-1), 1, atol=1e-6)
    # centre column looks along -z, u = 0.75 along +x, top row near +y
    assert dirs[4, 8, 2] < -0.9
    assert dirs[4, 12, 0] > 0.9
    assert dirs[0, 0, 1] > 0.9
    u, v = envmap.dirs_to_uv(dirs)
    np.testing.assert_allclose(u, (np.arange(16) + 0.5)[None, :] / 16 * np.ones((8, 1)), atol=1e-6)


def test_solid_angles_sum_to_sphere():
    assert envmap.solid_angles(37).sum() == pytest.approx(4 * math.pi, rel=1e-9)


@pytest.mark.parametrize("name", ["rooitou_park_towards_sun", "potsdamer_platz"])
def test_project_sh_reproduces_shared_ground_truth(name):
    meta = json.loads((DATA / "backgrounds" / f"{name}.json").read_text())
    pano = _read_hdr(DATA / meta["gt_lighting_panorama"])
    camera_to_world = np.array(meta["camera_to_world"])
    sh = envmap.project_sh(pano, to_frame=camera_to_world.T)
    truth = np.array(meta["sh_radiance_camera_frame_rgb"])
    scale = np.abs(truth).max()
    np.testing.assert_allclose(sh, truth, atol=2e-3 * scale)


def test_irradiance_of_constant_radiance_is_pi():
    pano = np.full((32, 64, 3), 2.0, np.float32)
    normals = envmap.direction_grid(5).reshape(-1, 3)
    e = envmap.irradiance_sh(envmap.project_sh(pano), normals)
    np.testing.assert_allclose(e, 2.0 * math.pi, rtol=1e-3)


def test_rotate_pano_then_project_equals_rotate_sh():
    pano = _spot_pano(64, (0.3, 0.5, -0.8), (5, 3, 1))
    for yaw in (90.0, 37.0, -120.0):
        a = envmap.project_sh(envmap.rotate_pano(pano, yaw))
        b = envmap.rotate_sh(envmap.project_sh(pano), yaw)
        np.testing.assert_allclose(a, b, atol=0.01 * np.abs(b).max())


def test_rotation_sense_moves_front_light_to_the_right():
    pano = _spot_pano(64, (0, 0, -1), (10, 10, 10))
    rotated = envmap.project_sh(envmap.rotate_pano(pano, 90))
    direction = envmap.dominant_direction(rotated)
    assert direction[0] > 0.95
    np.testing.assert_allclose(envmap.rotation_y(90) @ [0, 0, -1], [1, 0, 0], atol=1e-12)


def test_rotate_sh_matrix_matches_projection_in_rotated_frame():
    pano = _spot_pano(64, (0.6, 0.2, 0.3), (4, 2, 1))
    c, s = math.cos(0.4), math.sin(0.4)
    pitch = np.array([[1, 0, 0], [0, c, -s], [0, s, c]])
    direct = envmap.project_sh(pano, to_frame=pitch)
    fitted = envmap.rotate_sh_matrix(envmap.project_sh(pano), pitch)
    np.testing.assert_allclose(direct, fitted, atol=1e-3 * np.abs(direct).max())


@pytest.mark.parametrize("exponent", [1, 16, 32, 64])
def test_phong_prefilter_of_constant_is_constant(exponent):
    pano = np.full((64, 128, 3), 0.7, np.float32)
    out = envmap.phong_prefilter(pano, exponent, out_height=16)
    assert out.shape == (16, 32, 3) and out.dtype == np.float32
    np.testing.assert_allclose(out, 0.7, rtol=1e-4)


@pytest.mark.parametrize("exponent", [1, 16, 64])
def test_phong_prefilter_preserves_energy(exponent):
    pano = _spot_pano(128, (0.2, 0.4, -0.9), (20, 10, 5), width_deg=3)
    out = envmap.phong_prefilter(pano, exponent, out_height=32)
    total_in = np.einsum("hw,hwc->c", envmap.solid_angles(128), pano)
    total_out = np.einsum("hw,hwc->c", envmap.solid_angles(32), out)
    np.testing.assert_allclose(total_out, total_in, rtol=0.03)


def test_phong_prefilter_lobe_width_grows_as_exponent_falls():
    direction = np.array([0.0, 0.0, -1.0])
    pano = _spot_pano(128, direction, (50, 50, 50), width_deg=2, ambient=0.0)
    peaks = []
    for exponent in (1, 16, 64):
        out = envmap.phong_prefilter(pano, exponent, out_height=32)
        peaks.append(float(envmap.sample_pano(out, direction)[0]))
        # n = 1 at 90° off the light is ~0 (cosine lobe), never negative
        assert float(envmap.sample_pano(out, [1.0, 0.0, 0.0])[0]) < 0.05 * peaks[-1] + 1e-6
    assert peaks[0] < peaks[1] < peaks[2]
    # n = 1: the peak is (n+1)/2π × flux of the spot
    flux = np.einsum("hw,hw->", envmap.solid_angles(128), pano[..., 0])
    assert peaks[0] == pytest.approx(2 / (2 * math.pi) * flux, rel=0.05)


def test_sample_pano_bilinear_matches_pixel_centres():
    rng = np.random.default_rng(0)
    pano = rng.random((8, 16, 3)).astype(np.float32)
    dirs = envmap.direction_grid(8)
    np.testing.assert_allclose(envmap.sample_pano(pano, dirs[2:6]), pano[2:6], atol=1e-5)


def test_bad_panorama_shape_is_a_clear_error():
    with pytest.raises(ValueError, match="h×2h×3"):
        envmap.project_sh(np.zeros((10, 10, 3), np.float32))
