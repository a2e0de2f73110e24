"""relight_core.albedo: the original light is recovered and divided out, detail stays."""

from pathlib import Path

import cv2
import numpy as np

from relight_core import albedo, detect, envmap, geometry, io

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
PORTRAIT = DATA / "portraits" / "05_woman_long_wavy_hair_window_light_cc0.png"


def test_known_light_on_textured_sphere_is_divided_out():
    size = 161
    centre = (size - 1) / 2
    rows, cols = np.mgrid[0:size, 0:size]
    x, y = (cols - centre) / (centre - 1), -(rows - centre) / (centre - 1)
    inside = x * x + y * y < 0.95
    normals = np.stack([x, y, np.sqrt(np.clip(1 - x * x - y * y, 0, 1))], -1).astype(np.float32)
    normals[~inside] = (0, 0, 1)
    rng = np.random.default_rng(3)
    texture = np.clip(0.45 + 0.05 * rng.standard_normal((size, size, 1)), 0.3, 0.6)
    true_albedo = (texture * np.array([1.0, 0.7, 0.55])).astype(np.float32)
    light = np.zeros(9)
    light[[0, 3, 1]] = (1.0, 0.4, 0.25)  # ambient + light from the upper right
    true_shading = np.maximum(envmap.sh_basis(normals) @ light, 0.05)
    image = true_albedo * true_shading[..., None]
    coefficients = albedo.fit_original_shading(image, normals, inside)
    full = albedo.original_shading(normals, coefficients, strength=1.0)
    recovered = albedo.albedo_from_shading(image, full)
    lit = inside & (true_shading > 0.3)
    ratio = (recovered / true_albedo)[lit]
    assert ratio.std() / ratio.mean() < 0.02  # the same up to one global scale
    partial = albedo.albedo_from_shading(image, albedo.original_shading(normals, coefficients))
    partial_ratio = (partial / true_albedo)[lit]
    spread = partial_ratio.std() / partial_ratio.mean()
    assert 0.02 < spread < (image / true_albedo)[lit].std() / (image / true_albedo)[lit].mean()


def test_portrait_albedo_removes_the_window_light_and_keeps_detail():
    image = io.read_image(PORTRAIT)[..., :3]
    image = cv2.resize(image, (349, 395), interpolation=cv2.INTER_AREA)
    srgb8 = io.to_srgb8(image)
    alpha = np.clip((detect.person_mask(srgb8) - 0.3) / 0.4, 0, 1).astype(np.float32)
    landmarks = [detect.face_landmarks(srgb8, f) for f in detect.detect_faces(srgb8)]
    geo = geometry.person_geometry(alpha, landmarks)
    coefficients = albedo.fit_original_shading(image, geo.normals, geo.skin)
    original = albedo.original_shading(geo.normals, coefficients)
    result = albedo.albedo_from_shading(image, original)
    assert result.dtype == np.float32 and 0 <= result.min() and result.max() <= 1.0
    # the window is on the picture's left: the fitted light says so
    assert coefficients[3] < 0  # Y11 (x) term: brighter toward −x
    skin = geo.skin
    left = skin & (np.arange(skin.shape[1])[None, :] < np.median(np.nonzero(skin)[1]))
    right = skin & ~left
    lum_image = image @ albedo.LUMINANCE
    lum_albedo = result @ albedo.LUMINANCE
    before = lum_image[left].mean() / lum_image[right].mean()
    after = lum_albedo[left].mean() / lum_albedo[right].mean()
    assert abs(np.log(after)) < abs(np.log(before))  # sides more alike once light is removed
    # detail: the fine relative contrast (pores, freckles, strands) of the albedo is the image's
    log_image, log_albedo = np.log(lum_image + 1e-4), np.log(lum_albedo + 1e-4)
    high_image = log_image - cv2.GaussianBlur(log_image, (0, 0), 2)
    high_albedo = log_albedo - cv2.GaussianBlur(log_albedo, (0, 0), 2)
    correlation = np.corrcoef(high_image[skin], high_albedo[skin])[0, 1]
    assert correlation > 0.95
