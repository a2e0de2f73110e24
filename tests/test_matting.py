"""relight_core.matting on real images: PyMatting's lemur (true alpha known) and a portrait."""

from pathlib import Path

import cv2
import numpy as np
import pytest

from relight_core import io, matting
from relight_core.io import RelightError

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
LEMUR = DATA / "matting" / "pymatting_lemur"
SYNTHETIC = DATA / "matting" / "synthetic_lemur"
PORTRAIT = DATA / "portraits" / "05_woman_long_wavy_hair_window_light_cc0.png"


def _plain(path: Path) -> np.ndarray:
    """8-bit mask file → [0, 1] without sRGB decoding (alpha and trimaps are data)."""
    from PIL import Image

    return np.asarray(Image.open(path).convert("L"), np.float32) / 255.0


@pytest.fixture(scope="module")
def lemur():
    image = io.read_image(LEMUR / "lemur.png")[..., :3]
    return image, _plain(LEMUR / "lemur_trimap.png"), _plain(LEMUR / "lemur_alpha.png")


def test_closed_form_alpha_matches_ground_truth(lemur):
    image, trimap, truth = lemur
    alpha = matting.closed_form_alpha(io.linear_to_srgb(image), trimap)
    assert alpha.dtype == np.float32 and alpha.shape == truth.shape
    assert 0.0 <= alpha.min() and alpha.max() <= 1.0
    unknown = (trimap > 0.1) & (trimap < 0.9)
    error = np.abs(alpha - truth)[unknown].mean()
    assert error < 0.06, error
    soft = ((alpha > 0.05) & (alpha < 0.95)).sum()
    assert soft > 0.2 * unknown.sum()  # fur is soft, not a binary cut


def test_trimap_band_scales_with_image():
    mask = np.zeros((400, 400), np.float32)
    mask[100:300, 100:300] = 1.0
    outer, inner = matting.band_widths(400)
    trimap = matting.trimap_from_mask(mask, outer, inner)
    row = trimap[200]
    assert row[100 - outer + 1] == 0.5 and row[100 - outer - 2] == 0.0
    assert row[100 + inner - 1] == 0.5 and row[100 + inner + 2] == 1.0
    assert matting.band_widths(2000)[0] > 4 * outer


def test_matte_from_coarse_mask_with_upsampling():
    """A blurred, shrunken 'segmentation' of the composite → a matte close to the truth."""
    image = io.read_image(SYNTHETIC / "qwantani_sky_image.png")[..., :3]
    truth = _plain(SYNTHETIC / "qwantani_sky_alpha.png")
    coarse = cv2.resize(cv2.resize(truth, (64, 42), interpolation=cv2.INTER_AREA),
                        truth.shape[::-1], interpolation=cv2.INTER_LINEAR)
    alpha, foreground = matting.matte(image, coarse, max_size=340)  # solve at half size
    assert alpha.shape == truth.shape and foreground.shape == image.shape
    assert np.abs(alpha - truth).mean() < 0.03
    band = (truth > 0.05) & (truth < 0.95)
    assert ((alpha > 0.02) & (alpha < 0.98))[band].mean() > 0.5
    # decontamination: foreground colours nearer the true ones than the raw image in the fur
    true_fg = io.read_image(LEMUR / "lemur_foreground.png")[..., :3]
    fur = (truth > 0.3) & (truth < 0.9)
    raw_error = np.abs(image - true_fg)[fur].mean()
    fg_error = np.abs(foreground - true_fg)[fur].mean()
    assert fg_error < 0.8 * raw_error


def test_portrait_matte_is_soft_and_no_person_is_an_error():
    from relight_core import detect

    image = io.read_image(PORTRAIT)[..., :3]
    image = cv2.resize(image, (349, 395), interpolation=cv2.INTER_AREA)
    mask = detect.person_mask(io.to_srgb8(image))
    alpha, foreground = matting.matte(image, mask)
    assert 0.0 <= alpha.min() and alpha.max() <= 1.0
    assert alpha[200, 175] > 0.99 and alpha[5, 5] < 0.01  # face opaque, corner background
    soft = (alpha > 0.05) & (alpha < 0.95)
    assert soft.sum() > 300  # hair strands
    assert np.isfinite(foreground).all() and foreground.min() >= 0
    landscape = io.read_image(DATA / "backgrounds" / "qwantani_sky.jpg")
    with pytest.raises(RelightError) as raised:
        matting.matte(landscape, detect.person_mask(io.to_srgb8(landscape)))
    assert raised.value.code == "no_person"


def test_warm_up_runs():
    assert matting.warm_up() >= 0.0


def test_unsure_mask_inside_the_contour_is_unknown():
    mask = np.ones((100, 100), np.float32)
    mask[:, :30] = 0.0
    mask[40:60, 70:90] = 0.7  # the segmentation hesitates deep inside the person (hair gaps)
    trimap = matting.trimap_from_mask(mask, 4, 2, unsure=matting.MASK_UNSURE)
    assert (trimap[40:60, 70:90] == 0.5).all() and trimap[20, 80] == 1.0
    assert trimap[50, 10] == 0.0  # outside the band the background stays known
    assert (matting.trimap_from_mask(mask, 4, 2)[40:60, 70:90] == 1.0).all()


def test_unsure_band_improves_matte_from_low_res_segmentation():
    """A 256-px soft 'segmentation' of the synthetic composite: the unsure band lowers SAD."""
    from relight_core.evaluation import metrics

    image = io.read_image(SYNTHETIC / "spruit_sunrise_pylons_image.png")[..., :3]
    truth = _plain(SYNTHETIC / "spruit_sunrise_pylons_alpha.png")
    height, width = truth.shape
    scale = 256 / max(height, width)
    low = cv2.resize(truth, (round(width * scale), round(height * scale)),
                     interpolation=cv2.INTER_AREA)
    mask = cv2.resize(low, (width, height), interpolation=cv2.INTER_LINEAR)
    outer, inner = matting.band_widths(max(height, width))
    srgb = io.linear_to_srgb(image)
    band = metrics.unknown_band(truth)
    errors = []
    for unsure in (None, matting.MASK_UNSURE):
        trimap = matting.trimap_from_mask(mask, outer, inner, unsure=unsure)
        errors.append(metrics.sad(matting.closed_form_alpha(srgb, trimap), truth, band))
    assert errors[1] < 0.95 * errors[0], errors
