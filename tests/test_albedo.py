"""relight_core.albedo: the original light is recovered and divided out, detail stays."""

from pathlib import Path

import cv2
import numpy as np

from relight_core import albedo, detect, envmap, geometry, io

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
PORTRAIT = DATA / "portraits" / "05_woman_long_wavy_hair_window_light_cc0.png"


def _sphere(size: int = 161) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A camera-facing sphere filling the frame → (x, y, normals (H, W, 3), inside (H, W))."""
    centre = (size - 1) / 2
    rows, cols = np.mgrid[0:size, 0:size]
    x, y = (cols - centre) / (centre - 1), -(rows - centre) / (centre - 1)
    inside = x * x + y * y < 0.95
    normals = np.stack([x, y, np.sqrt(np.clip(1 - x * x - y * y, 0, 1))], -1).astype(np.float32)
    normals[~inside] = (0, 0, 1)
    return x, y, normals, inside


def test_known_light_on_textured_sphere_is_divided_out():
    size = 161
    _, _, normals, inside = _sphere(size)
    rng = np.random.default_rng(3)
    texture = np.clip(0.45 + 0.05 * rng.standard_normal((size, size, 1)), 0.3, 0.6)
    true_albedo = (texture * np.array([1.0, 0.7, 0.55])).astype(np.float32)
    light = np.zeros(9)
    light[[0, 3, 1]] = (1.0, 0.4, 0.25)  # ambient + light from the upper right
    true_shading = np.maximum(envmap.sh_basis(normals) @ light, 0.05)
    image = true_albedo * true_shading[..., None]
    coefficients = albedo.fit_original_shading(image, normals, inside)
    recovered = albedo.albedo_from_shading(image, albedo.original_shading(normals, coefficients))
    lit = inside & (true_shading > 0.3)
    ratio = (recovered / true_albedo)[lit]
    assert ratio.std() / ratio.mean() < 0.02  # the same up to one global scale
    photo_ratio = (image / true_albedo)[lit]
    assert photo_ratio.std() / photo_ratio.mean() > 0.1  # the photo: 0.14


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
    # the window's side and the shaded side differ in colour too (the shade is redder): on
    # the face, the light's change of colour across the normals is divided out
    tint = albedo.light_tint(geo.normals, albedo.fit_light_tint(image, geo.normals, skin),
                             geo.face_weight)
    untinted = result.copy()
    albedo.remove_tint(untinted, tint, (0, 0, skin.shape[1], skin.shape[0]))

    def side_difference(rgb: np.ndarray) -> float:
        logs = np.log(np.maximum(rgb, 1e-4))
        redness = logs[..., 0] - logs[..., 1]
        return abs(float(np.median(redness[left]) - np.median(redness[right])))

    assert side_difference(untinted) < 0.6 * side_difference(result)


def _face_like_subject(size: int = 161) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A sphere 'head': skin-coloured, with darker 'hair' on top and a 'shirt' band at the
    bottom, each finely textured → (albedo (H, W, 3), normals (H, W, 3), inside (H, W))."""
    _, y, normals, inside = _sphere(size)
    rng = np.random.default_rng(5)
    texture = np.clip(1 + 0.08 * rng.standard_normal((size, size, 1)), 0.7, 1.3)
    skin, hair, shirt = (0.45, 0.29, 0.22), (0.12, 0.08, 0.06), (0.30, 0.33, 0.40)
    colour = np.where((y > 0.6)[..., None], hair, np.where((y < -0.6)[..., None], shirt, skin))
    return (texture * colour).astype(np.float32), normals, inside


def _warmth(rgb: np.ndarray) -> float:
    """Median log(r/g) − log(b/g) over pixels: how warm (orange) the colours are."""
    logs = np.log(np.maximum(rgb.reshape(-1, 3), 1e-4))
    return float(np.median(logs[:, 0] - logs[:, 2]))


def test_coloured_light_cast_is_removed_and_grey_stays_grey():
    true_albedo, normals, inside = _face_like_subject()
    light = np.zeros(9)
    light[[0, 3, 1]] = (1.0, 0.4, 0.25)
    shading = np.maximum(envmap.sh_basis(normals) @ light, 0.05)
    sunset = np.array([1.0, 0.62, 0.33], np.float32)  # a warm, low sun (≈ 3000 K)
    image = true_albedo * shading[..., None] * sunset
    image[~inside] = image[inside].mean(axis=0)  # matted foreground: edge colours spread out
    coefficients = albedo.fit_original_shading(image, normals, inside)
    recovered = albedo.albedo_from_shading(image, albedo.original_shading(normals, coefficients))
    cast_before = _warmth(image[inside]) - _warmth(true_albedo[inside])
    cast_after = _warmth(recovered[inside]) - _warmth(true_albedo[inside])
    assert cast_before > 1.0
    assert abs(cast_after) < 0.6 * cast_before  # the excess over a portrait's own warmth is gone
    # under white light the same subject keeps its colours (skin is warm by nature)
    white_lit = true_albedo * shading[..., None]
    white_lit[~inside] = white_lit[inside].mean(axis=0)
    neutral = albedo.albedo_from_shading(
        white_lit, albedo.original_shading(normals, coefficients))
    assert abs(_warmth(neutral[inside]) - _warmth(true_albedo[inside])) < 0.05
    # a black-and-white photo stays exactly grey
    grey = np.repeat(white_lit.mean(axis=-1, keepdims=True), 3, axis=-1)
    grey_albedo = albedo.albedo_from_shading(grey, albedo.original_shading(normals, coefficients))
    assert np.abs(grey_albedo - grey_albedo.mean(axis=-1, keepdims=True)).max() < 1e-6
    assert np.allclose(albedo.light_colour(grey), 1.0)


def test_specular_glare_is_compressed_and_texture_kept():
    true_albedo, normals, inside = _face_like_subject()
    light = np.zeros(9)
    light[[0, 2]] = (1.0, 0.3)
    shading = envmap.sh_basis(normals) @ light
    matte_only = (true_albedo * shading[..., None]).astype(np.float32)
    rows, cols = np.mgrid[0:161, 0:161]
    glare = np.exp(-((rows - 80) ** 2 + (cols - 60) ** 2) / (2 * 4.0 ** 2))
    image = (matte_only + 2.0 * glare[..., None]).astype(np.float32)  # a white sheen on skin
    coefficients = albedo.fit_original_shading(image, normals, inside)
    result = albedo.albedo_from_shading(image, albedo.original_shading(normals, coefficients))
    lum = result @ albedo.LUMINANCE
    skin = inside & (glare < 1e-4) & (np.abs(rows - 80) < 30)
    plain = albedo.original_shading(normals, coefficients)
    uncompressed = (image / plain[..., None]) @ albedo.LUMINANCE
    assert uncompressed[80, 60] / np.median(uncompressed[skin]) > 8
    assert lum[80, 60] / np.median(lum[skin]) < 5  # the glare is mostly gone
    # away from the glare, texture (pores, freckles) comes out as without any glare
    without = albedo.albedo_from_shading(matte_only, plain) @ albedo.LUMINANCE
    assert np.abs(lum[skin] / without[skin] - 1).max() < 0.02


def _two_coloured_lights(size: int = 161):
    """A textured skin-coloured sphere lit by a warm light from the right and a cool one from
    the left → (image, true albedo, normals, inside)."""
    _, _, normals, inside = _sphere(size)
    rng = np.random.default_rng(5)
    texture = np.clip(0.45 + 0.05 * rng.standard_normal((size, size, 1)), 0.3, 0.6)
    true_albedo = (texture * np.array([1.0, 0.7, 0.55])).astype(np.float32)
    warm, cool = np.array([1.3, 1.0, 0.7]), np.array([0.7, 0.9, 1.4])
    facing_right = np.clip(normals[..., :1], 0, None)
    facing_left = np.clip(-normals[..., :1], 0, None)
    light = 0.4 + facing_right * warm + facing_left * cool
    return (true_albedo * light).astype(np.float32), true_albedo, normals, inside


def _chroma_spread(rgb: np.ndarray, mask: np.ndarray) -> float:
    logs = np.log(rgb[mask])
    return float(np.std(logs[:, 0] - logs[:, 2]))


def test_the_lights_change_of_colour_across_a_face_is_divided_out_keeping_luminance():
    image, true_albedo, normals, inside = _two_coloured_lights()
    coefficients = albedo.fit_original_shading(image, normals, inside)
    grey = albedo.albedo_from_shading(image, albedo.original_shading(normals, coefficients))
    tint_fit = albedo.fit_light_tint(image, normals, inside)
    weight = inside.astype(np.float32)
    tint = albedo.light_tint(normals, tint_fit, weight)
    assert np.allclose(tint @ albedo.LUMINANCE, 1.0, atol=1e-4)
    # the warm side's tint is redder than the cool side's
    size = inside.shape[1]
    assert tint[80, size - 30, 0] > tint[80, 30, 0] and tint[80, size - 30, 2] < tint[80, 30, 2]
    result = grey.copy()
    albedo.remove_tint(result, tint, (0, 0, size, size))
    assert np.allclose(albedo.luminance(result)[inside], albedo.luminance(grey)[inside],
                       rtol=1e-3, atol=1e-5)
    assert result.max() <= 1.0
    truth_spread = _chroma_spread(true_albedo, inside)
    # the grey de-lighting keeps the two lights' colours (0.32); the tint takes most out (0.10)
    assert truth_spread < 0.01 and _chroma_spread(grey, inside) > 0.2
    assert _chroma_spread(result, inside) < 0.6 * _chroma_spread(grey, inside)


def test_light_tint_is_bounded_neutral_without_weight_and_absent_in_grey_photos():
    image, _, normals, inside = _two_coloured_lights()
    tint_fit = albedo.fit_light_tint(image, normals, inside)
    tint = albedo.light_tint(normals, tint_fit, inside.astype(np.float32))
    logs = np.log(tint[inside])
    distance = np.hypot(logs[:, 0] - logs[:, 1], logs[:, 2] - logs[:, 1])
    assert distance.max() <= albedo.MAX_TINT + 1e-4
    assert np.allclose(albedo.light_tint(normals, tint_fit, np.zeros_like(inside, np.float32)),
                       1.0, atol=1e-6)
    grey = np.repeat(albedo.luminance(image)[..., None], 3, axis=-1)
    assert not albedo.fit_light_tint(grey, normals, inside).any()
    assert not albedo.fit_light_tint(image, normals, np.zeros_like(inside)).any()
