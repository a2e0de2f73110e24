"""relight_core.composite: linear-light over, exact at α ∈ {0, 1}; background covers the canvas."""

from pathlib import Path

import numpy as np

from relight_core import composite, io

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def test_over_is_exact_for_opaque_and_transparent():
    background = io.read_image(DATA / "backgrounds" / "kiara_dawn.png")
    relit = io.read_image(DATA / "portraits" / "07_man_outdoor_open_shade_cc0.png")[..., :3]
    canvas = composite.cover(background, *relit.shape[:2])
    alpha = np.zeros(relit.shape[:2], np.float32)
    alpha[:, 200:] = 1.0
    alpha[:, 100:110] = 0.5
    out = composite.over(relit, alpha, canvas)
    assert out.dtype == np.float32
    assert np.array_equal(out[:, 200:], relit[:, 200:])
    assert np.array_equal(out[:, :100], canvas[:, :100])
    np.testing.assert_allclose(out[:, 100:110], 0.5 * relit[:, 100:110] + 0.5 * canvas[:, 100:110],
                               atol=1e-6)  # linear mixing, not sRGB


def test_cover_scales_to_fill_and_crops_the_centre():
    background = np.zeros((50, 100, 3), np.float32)
    background[:, 45:55] = 1.0  # a bright stripe in the middle
    out = composite.cover(background, 80, 40)  # tall canvas: scale 1.6 → 160×80, crop x 60..100
    assert out.shape == (80, 40, 3)
    stripe = np.flatnonzero(out[40, :, 0] > 0.5)
    assert 10 <= stripe[0] and stripe[-1] <= 29  # stripe 72..88 of 160 → 12..28 of the crop
    wide = composite.cover(background, 10, 300)
    assert wide.shape == (10, 300, 3)
    real = io.read_image(DATA / "backgrounds" / "st_fagans_hall.png")
    assert composite.cover(real, 1000, 700).shape == (1000, 700, 3)


def test_over_in_place_into_the_background_equals_the_copy():
    rng = np.random.default_rng(5)
    relit = rng.random((600, 40, 3), dtype=np.float32)  # > 256 rows: several bands
    background = rng.random((600, 40, 3), dtype=np.float32)
    alpha = rng.random((600, 40), dtype=np.float32)
    expected = composite.over(relit, alpha, background)
    buffer = background.copy()
    result = composite.over(relit, alpha, buffer, out=buffer)
    assert result is buffer
    assert np.array_equal(result, expected)
    np.testing.assert_allclose(expected, relit * alpha[..., None]
                               + background * (1 - alpha[..., None]), atol=1e-6)
