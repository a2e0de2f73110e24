"""The fast paths of matting and envmap compute the same numbers as the plain methods."""

from pathlib import Path

import numpy as np
import pytest

from relight_core import envmap, io, matting

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
PORTRAIT = DATA / "portraits" / "05_woman_long_wavy_hair_window_light_cc0.png"


def brute_force_phong(pano: np.ndarray, exponent: float, out_height: int) -> np.ndarray:
    source = envmap.downsample_pano(pano, envmap._phong_source_height(exponent))
    source_dirs = envmap.direction_grid(source.shape[0]).reshape(-1, 3).astype(np.float64)
    weights = (np.clip(envmap.direction_grid(out_height).reshape(-1, 3) @ source_dirs.T, 0, None)
               ** exponent) * envmap.solid_angles(source.shape[0]).reshape(-1)
    weights /= weights.sum(axis=1, keepdims=True)
    return (weights @ source.reshape(-1, 3)).reshape(out_height, 2 * out_height, 3)


@pytest.mark.parametrize("exponent", [1.0, 16.0, 64.0])
@pytest.mark.parametrize("pano_height", [16, 32, 48])
def test_fft_phong_prefilter_equals_the_direct_sum(exponent, pano_height):
    rng = np.random.default_rng(3)
    pano = (rng.random((pano_height, 2 * pano_height, 3)) ** 8 * 50).astype(np.float32)
    fast = envmap.phong_prefilter(pano, exponent, 32)
    slow = brute_force_phong(pano, exponent, 32)
    assert np.abs(fast - slow).max() <= 1e-5 * slow.max()


def test_band_laplacian_alpha_equals_pymatting():
    pymatting = matting._pymatting()
    image = io.read_image(PORTRAIT)[200:320, 250:370, :3]
    srgb = io.linear_to_srgb(image)
    trimap = np.zeros(image.shape[:2])
    trimap[:, 40:] = 0.5
    trimap[:, 80:] = 1.0
    trimap[10:30, 10:30] = 0.5  # a second, separate unknown region, near the border
    ours = matting.closed_form_alpha(srgb, trimap)
    theirs = pymatting.estimate_alpha_cf(srgb.astype(np.float64), trimap,
                                         laplacian_kwargs={"epsilon": 1e-6},
                                         cg_kwargs={"maxiter": 2000})
    assert np.abs(ours - theirs).max() < 1e-4
    assert 0.05 < ours[trimap == 0.5].mean() < 0.95
