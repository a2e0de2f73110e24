"""Albedo: estimate the portrait's original light, divide it out.

Contract
--------
``fit_original_shading(image_linear, normals, fit_mask) -> coefficients (9,) float64``
    Shading of the original light as grey order-2 SH over the normal: S(n) = sh_basis(n) · c,
    where S is E(n)/π in the image's linear units (so image ≈ albedo × S).
``original_shading(normals, coefficients) -> (H, W) float32`` ≥ a floor.
``albedo_from_shading(foreground_linear, shading) -> (H, W, 3) float32`` in [0, 1]: divides by
    the grey shading and by the light's colour (``light_colour``), then compresses specular
    glare (``compress_highlights``).
``fit_light_tint(image_linear, normals, fit_mask) -> coefficients (4, 2) float64``
    How the original light's chromaticity (log r/g, log b/g) varies over the normal, as order-1
    SH, centred so that the fit mask's median pixel is neutral.
``light_tint(normals, coefficients, weight, smooth_px) -> (H, W, 3) float32`` of luminance 1,
    and ``remove_tint(albedo, tint, box)``, which divides it out of a region keeping luminance.

Method and assumptions (each stated, none hidden)
-------------------------------------------------
* On skin the reflectance is roughly uniform, so skin luminance / albedo varies with the normal
  only through the light: a robust (Huber-weighted, ridge-regularised) least-squares fit of
  luminance against the 9 SH basis functions of the normal gives the light up to a scale.
  Without a face, all opaque person pixels are used.
* Colour: photographers white-balance, and skin is warm by nature along the same
  daylight/tungsten locus a warm light lies on (a dark-skinned face in white light and a pale
  one in a 4000 K sun have the same chromaticity), so the light is taken as white unless the
  whole foreground is warmer (or bluer) than any white-balanced portrait we measured; only
  that excess, along the locus, is divided out. A monochrome photo stays grey.
* Scale: albedo and light trade off; we fix the skin's median albedo luminance from its median
  luminance in the photo, weakly: the exposure of a photo (sun, shade, a dim room, a face
  exposed for) says little about reflectance — the synthetic truth in bench/eval_quality.py
  has one albedo under exposures 50× apart and scores best with no dependence at all — but
  darker skin still photographs somewhat darker.
  ``skin_albedo = 0.35 · (median skin luminance / 0.3)^0.25``, kept within [0.1, 0.6].
* The shading is smooth (an order-2 SH of smooth normals), so dividing by it keeps every
  detail (pores, freckles, strands) in the albedo. It is floored so deep original shadows do
  not blow the albedo up, the fitted light is divided out whole, and the albedo is kept ≤ 1
  (physical reflectance) with its hue. Dividing out only part of it (an exponent of 0.6 on its
  variation, until the fourteenth session) left the original key visibly in the albedo and
  scored worse on both measures that see it: the synthetic truth's end-to-end composite error
  (``bench/eval_quality.py``) and the left/right asymmetry of real faces' albedo
  (``bench/bench_albedo.py``); the numbers are in docs/results.md.
* The light's colour changes across a face: a warm window or sun on one side, a cooler fill or
  the sky on the other, and skin's own subsurface glow makes its shade redder. A grey shading
  keeps that in the albedo: the photo's shaded cheek, divided by its dim shading, came out as a
  bright pink patch that every relight then showed in the wrong place. On the face (the mesh's
  weight), the skin's log chromaticity is fitted robustly as a linear function of the normal
  (order-1 SH: it varies from side to side, not in detail), and that variation is divided out,
  its luminance kept (luminance is the grey shading's), at most ``MAX_TINT`` from neutral
  (about a third of the step from daylight to tungsten), because the fit extrapolates beyond
  the normals the skin shows. Its mean cast is ``light_colour``'s.
* Specular reflection is not reflectance: glare more than 3× brighter than its neighbourhood
  (a sheen, a rim where a light grazes the edge) is compressed in log luminance.
"""

from __future__ import annotations

import cv2
import numpy as np

from .envmap import sh_basis
from .io import resize_linear

LUMINANCE = np.array([0.2126, 0.7152, 0.0722], np.float32)
# band-2 terms are the least constrained by a face's half-sphere of normals
RIDGE = (0.0, 0.005, 0.005, 0.005, 0.05, 0.05, 0.05, 0.05, 0.05)
HUBER_K = 1.345
IRLS_ITERATIONS = 6
MAX_FIT_SAMPLES = 40_000
SHADING_FLOOR_FRACTION = 0.3  # of the frontal shading: deep shadows do not blow albedo up
TYPICAL_SKIN_ALBEDO = 0.35
TYPICAL_SKIN_LUMINANCE = 0.3
SKIN_ALBEDO_RANGE = (0.1, 0.6)
SKIN_LUMINANCE_EXPONENT = 0.25  # how much a darker photographed face means a darker skin
# light colour: log chromaticity (log r/g, log b/g) of linear sRGB
NEUTRAL_PORTRAIT_CHROMA = np.array([0.45, -0.15])  # median of white-balanced portraits
WARM_LOCUS = np.array([0.53, -0.85])  # unit step toward tungsten along the blackbody locus
CAST_DEADZONE = (-0.6, 0.35)  # warmth a portrait's own colours explain: dark skin, orange clothes
CAST_REMOVED = 1.0
MAX_CAST = 0.6  # ≈ the step from daylight to 3500 K
MIN_CHROMA_LEVEL = 0.005  # darker pixels have no reliable chromaticity (8-bit noise)
# the light's colour across the face: log-chromaticity over order-1 SH of the normal
TINT_RIDGE = (0.0, 0.005, 0.005, 0.005)
MAX_TINT = 0.2  # log-chromaticity distance from neutral (daylight → 3500 K is ≈ 0.6)
MAX_TINT_SAMPLES = 10_000  # 8 coefficients: more pixels do not change them
MONOCHROME_CHROMA = 0.03
# specular glare: brighter than HIGHLIGHT_KNEE × the neighbourhood (HIGHLIGHT_NEIGHBOURHOOD of
# the long side) is compressed with this slope in log luminance
HIGHLIGHT_KNEE = 3.0
HIGHLIGHT_SLOPE = 0.3
HIGHLIGHT_NEIGHBOURHOOD = 0.03
HIGHLIGHT_LEVEL_SIDE = 256


def luminance(rgb: np.ndarray) -> np.ndarray:
    return rgb @ LUMINANCE


def _robust_fit(basis: np.ndarray, target: np.ndarray,
                ridge_weights: tuple[float, ...] = RIDGE) -> np.ndarray:
    """Ridge + Huber IRLS solve of basis @ c ≈ target → c (basis columns,)."""
    weights = np.ones_like(target)
    scale = max(float(np.mean(target ** 2)), 1e-12)
    ridge = np.diag(ridge_weights) * scale * len(target)
    coefficients = np.zeros(basis.shape[1])
    for _ in range(IRLS_ITERATIONS):
        weighted = basis * weights[:, None]
        coefficients = np.linalg.solve(basis.T @ weighted + ridge, weighted.T @ target)
        residual = target - basis @ coefficients
        sigma = 1.4826 * np.median(np.abs(residual)) + 1e-9
        r = np.abs(residual) / (HUBER_K * sigma)
        weights = np.where(r <= 1.0, 1.0, 1.0 / np.maximum(r, 1e-9))
    return coefficients


def fit_original_shading(image_linear: np.ndarray, normals: np.ndarray,
                         fit_mask: np.ndarray) -> np.ndarray:
    """Fit the original light as grey SH shading coefficients (9,) (see module doc for scale)."""
    selected = np.flatnonzero(fit_mask.reshape(-1))
    if selected.size < 32:
        return np.array([1.0 / 0.282095] + [0.0] * 8)  # flat shading of 1
    rng = np.random.default_rng(0)
    if selected.size > MAX_FIT_SAMPLES:
        selected = rng.choice(selected, MAX_FIT_SAMPLES, replace=False)
    target = luminance(image_linear.reshape(-1, 3)[selected]).astype(np.float64)
    basis = sh_basis(normals.reshape(-1, 3)[selected].astype(np.float64))
    coefficients = _robust_fit(basis, target)
    fitted = basis @ coefficients
    median_fitted = float(np.median(fitted))
    median_luminance = float(np.median(target))
    if median_fitted <= 1e-6 or median_luminance <= 1e-6:
        return np.array([1.0 / 0.282095] + [0.0] * 8)
    relative = median_luminance / TYPICAL_SKIN_LUMINANCE
    skin_albedo = TYPICAL_SKIN_ALBEDO * relative ** SKIN_LUMINANCE_EXPONENT
    skin_albedo = float(np.clip(skin_albedo, *SKIN_ALBEDO_RANGE))
    # fitted ≈ albedo·S on skin, so S = fitted / skin_albedo
    return coefficients / skin_albedo


def original_shading(normals: np.ndarray, coefficients: np.ndarray,
                     smooth_px: float = 0.0) -> np.ndarray:
    """Normals (H, W, 3) → grey shading (H, W) float32 of the fitted original light, floored.

    ``smooth_px`` blurs the normals first: our normals are a coarse estimate (a face mesh, an
    inflated silhouette), and dividing the photo by their sharpest features (the side of the
    nose, the eye sockets) paints the error into the albedo as bright or dark patches; a blurred
    normal map divides out only the broad original light, a conservative de-lighting.
    """
    full_shape = normals.shape[:2]
    normals = _smoothed_normals(normals, smooth_px)
    shading = sh_basis(normals) @ coefficients.astype(np.float32)
    floor = SHADING_FLOOR_FRACTION * shading_reference(coefficients)
    shading = np.maximum(shading, floor).astype(np.float32)
    return resize_linear(shading, full_shape[1], full_shape[0])


def _smoothed_normals(normals: np.ndarray, smooth_px: float) -> np.ndarray:
    """Normals (H, W, 3) blurred by ``smooth_px``, float32, renormalised; smaller than (H, W)
    when the blur exceeds 2 px (smooth normals need no more samples: upsample what is made of
    them)."""
    normals = normals.astype(np.float32, copy=False)
    if smooth_px > 2:
        factor = smooth_px / 2.0
        small = (max(1, round(normals.shape[1] / factor)),
                 max(1, round(normals.shape[0] / factor)))
        normals = cv2.resize(normals, small, interpolation=cv2.INTER_AREA)
        smooth_px = 2.0
    if smooth_px > 0:
        normals = cv2.GaussianBlur(normals, (0, 0), smooth_px)
        normals /= np.maximum(np.linalg.norm(normals, axis=-1, keepdims=True), 1e-6)
    return normals


def shading_reference(coefficients: np.ndarray) -> float:
    """Shading of the fitted light on a surface facing the camera (n = +z), at least the mean."""
    frontal = float(sh_basis(np.array([0.0, 0.0, 1.0])) @ coefficients)
    return max(frontal, 0.282095 * float(coefficients[0]), 1e-6)


def _log_chromaticity(rgb: np.ndarray) -> np.ndarray:
    """Linear RGB (..., 3), positive → (log r/g, log b/g) (..., 2)."""
    logs = np.log(rgb)
    return np.stack([logs[..., 0] - logs[..., 1], logs[..., 2] - logs[..., 1]], axis=-1)


def _is_monochrome(chroma: np.ndarray) -> bool:
    """Log chromaticities (N, 2) of a black-and-white (or toned-grey) photo's pixels?"""
    return bool(np.percentile(np.abs(chroma).max(axis=1), 90) < MONOCHROME_CHROMA)


def light_colour(foreground_linear: np.ndarray) -> np.ndarray:
    """Foreground (H, W, 3) linear → colour (3,) of the original light, luminance 1.

    Grey-world on the log chromaticity of the person's colours (the matted foreground: outside
    the person it is the person's own edge colours spread out, so no mask is needed), measured
    against a typical white-balanced portrait and projected on the daylight/tungsten locus: a
    warm or blue cast is light, a green or magenta one is not (clothes, greenery). Skin is
    warm by nature and its warmth runs along the same locus, so only the excess beyond
    ``CAST_DEADZONE`` counts, and only ``CAST_REMOVED`` of it is removed, at most
    ``MAX_CAST``. A monochrome photo has no cast.
    """
    pixels = foreground_linear.reshape(-1, 3)
    if pixels.shape[0] > MAX_FIT_SAMPLES:
        step = pixels.shape[0] // MAX_FIT_SAMPLES
        pixels = pixels[::step]
    lit = pixels[np.min(pixels, axis=1) > MIN_CHROMA_LEVEL]
    white = np.ones(3, np.float32)
    if lit.shape[0] < 32:
        return white
    chroma = _log_chromaticity(lit.astype(np.float64))
    if _is_monochrome(chroma):
        return white  # a black-and-white (or toned-grey) photo stays grey
    deviation = np.median(chroma, axis=0) - NEUTRAL_PORTRAIT_CHROMA
    warmth = float(deviation @ WARM_LOCUS)
    low, high = CAST_DEADZONE
    excess = max(warmth - high, 0.0) + min(warmth - low, 0.0)
    excess = float(np.clip(CAST_REMOVED * excess, -MAX_CAST, MAX_CAST))
    log_rg, log_bg = excess * WARM_LOCUS
    colour = np.exp(np.array([log_rg, 0.0, log_bg]))
    return (colour / float(colour @ LUMINANCE)).astype(np.float32)


def fit_light_tint(image_linear: np.ndarray, normals: np.ndarray,
                   fit_mask: np.ndarray) -> np.ndarray:
    """How the original light's colour varies over the normal → coefficients (4, 2) float64.

    The log chromaticity of the masked pixels (skin) is fitted robustly against the order-1 SH
    of their normals; the fit is centred so its median over those pixels is 0 (neutral: the
    light's mean colour is :func:`light_colour`'s). Zero where the pixels are too few, too
    dark, or grey (a monochrome photo has no tint).
    """
    no_tint = np.zeros((4, 2))
    selected = np.flatnonzero(fit_mask.reshape(-1))
    if selected.size > 2 * MAX_TINT_SAMPLES:  # twice: some are too dark to count
        selected = np.random.default_rng(0).choice(selected, 2 * MAX_TINT_SAMPLES,
                                                   replace=False)
    pixels = image_linear.reshape(-1, 3)[selected]
    reliable = np.min(pixels, axis=1) > MIN_CHROMA_LEVEL
    selected, pixels = selected[reliable], pixels[reliable]
    if selected.size < 32:
        return no_tint
    chroma = _log_chromaticity(pixels.astype(np.float64))
    if _is_monochrome(chroma):
        return no_tint
    basis = sh_basis(normals.reshape(-1, 3)[selected].astype(np.float64))[:, :4]
    coefficients = np.stack([_robust_fit(basis, chroma[:, channel], TINT_RIDGE)
                             for channel in range(2)], axis=1)
    centre = np.median(basis @ coefficients, axis=0)
    coefficients[0] -= centre / basis[0, 0]  # the constant band: Y00 everywhere
    return coefficients


def light_tint(normals: np.ndarray, coefficients: np.ndarray, weight: np.ndarray,
               smooth_px: float = 0.0) -> np.ndarray:
    """Normals (H, W, 3) + :func:`fit_light_tint`'s coefficients → the light's colour relative
    to its mean, (H, W, 3) float32 of luminance 1; at most ``MAX_TINT`` from neutral and scaled
    (in log terms) by ``weight`` (H, W) in [0, 1]: 0 is neutral. The normals are smoothed as
    :func:`original_shading` smooths them."""
    full_shape = normals.shape[:2]
    normals = _smoothed_normals(normals, smooth_px)
    chroma = sh_basis(normals)[..., :4] @ coefficients.astype(np.float32)
    distance = np.linalg.norm(chroma, axis=-1, keepdims=True)
    chroma *= np.minimum(1.0, MAX_TINT / np.maximum(distance, 1e-9))
    chroma = resize_linear(chroma, full_shape[1], full_shape[0])
    chroma *= weight[..., None].astype(np.float32)
    tint = np.exp(np.stack([chroma[..., 0], np.zeros(full_shape, np.float32), chroma[..., 1]],
                           axis=-1))
    return (tint / (tint @ LUMINANCE)[..., None]).astype(np.float32)


def remove_tint(albedo: np.ndarray, tint: np.ndarray, box: tuple[int, int, int, int]) -> None:
    """Divide ``tint`` (h, w, 3), the light's colour over ``box`` = (x, y, w, h) of ``albedo``
    (H, W, 3) float32, out of that region in place, keeping each pixel's luminance and the
    albedo ≤ 1."""
    x, y, width, height = box
    region = albedo[y:y + height, x:x + width]
    if region.size == 0:
        return
    tint = resize_linear(tint, region.shape[1], region.shape[0])
    before = luminance(region)
    region /= tint
    region *= (before / np.maximum(luminance(region), 1e-8))[..., None]
    peak = np.maximum(np.maximum(region[..., 0], region[..., 1]), region[..., 2])
    region /= np.maximum(peak, 1.0)[..., None]  # as albedo_from_shading: hue kept


def compress_highlights(albedo: np.ndarray, in_place: bool = False) -> np.ndarray:
    """Albedo (H, W, 3) → the same with specular glare compressed, float32.

    Specular reflection (sheen on skin, a bright rim where a light grazes the edge) is not
    reflectance, yet the division by a smooth diffuse shading keeps it. Where a pixel is more
    than ``HIGHLIGHT_KNEE`` times as bright as its neighbourhood (a robust local level: the
    blurred log luminance of the non-black pixels), the excess is compressed in log terms by
    ``HIGHLIGHT_SLOPE``, hue kept. Texture (pores, strands, freckles) lies well below the knee.
    ``in_place``: scale ``albedo`` itself (a float32 array) instead of a copy.

    Full-size work is kept to a luminance, its log and a comparison: only the few pixels over
    the knee get a gain (at 12 MP the former full-size gain and product arrays cost ~2 s and
    set the pipeline's peak memory).
    """
    albedo = albedo if in_place and albedo.dtype == np.float32 else albedo.astype(np.float32)
    height, width = albedo.shape[:2]
    lum = cv2.transform(albedo, LUMINANCE[None, :])  # (H, W): albedo @ LUMINANCE, vectorised
    np.maximum(lum, np.float32(1e-4), out=lum)
    log_lum = cv2.log(lum)
    del lum
    valid = (log_lum > np.float32(np.log(1e-3))).astype(np.float32)
    # the local level is smooth: measure it on a small copy, blur 2-3 px there, upsample
    factor = max(1.0, max(height, width) / HIGHLIGHT_LEVEL_SIDE)
    small = (max(1, round(width / factor)), max(1, round(height / factor)))
    sigma = HIGHLIGHT_NEIGHBOURHOOD * max(small)
    small_valid = cv2.resize(valid, small, interpolation=cv2.INTER_AREA)
    np.multiply(valid, log_lum, out=valid)
    weighted = cv2.GaussianBlur(cv2.resize(valid, small, interpolation=cv2.INTER_AREA),
                                (0, 0), sigma)
    del valid
    coverage = cv2.GaussianBlur(small_valid, (0, 0), sigma)
    knee = weighted / np.maximum(coverage, 1e-6) + np.float32(np.log(HIGHLIGHT_KNEE))
    if small != (width, height):
        knee = cv2.resize(knee, (width, height), interpolation=cv2.INTER_LINEAR)
    np.subtract(log_lum, knee, out=log_lum)  # the excess over the knee, where positive
    del knee
    over = np.flatnonzero(log_lum > 0)
    gain = np.exp(np.float32(HIGHLIGHT_SLOPE - 1.0) * log_lum.reshape(-1)[over])
    flat = albedo.reshape(-1, 3)
    flat[over] *= gain[:, None]
    return albedo


def albedo_from_shading(foreground_linear: np.ndarray, shading: np.ndarray) -> np.ndarray:
    """Foreground (H, W, 3) linear ÷ (grey shading (H, W) × light colour) → albedo (H, W, 3)
    float32 in [0, 1]. The light's colour is estimated from the foreground (``light_colour``);
    specular glare is compressed (``compress_highlights``)."""
    colour = light_colour(foreground_linear).astype(np.float32)
    albedo = foreground_linear.astype(np.float32, copy=True)
    albedo /= shading.astype(np.float32, copy=False)[..., None]
    albedo /= colour
    # above 1 no surface reflects: scale the colour down as a whole, so its hue survives.
    # (channel-wise maximum: numpy's reduction over a length-3 last axis is ~10× slower)
    peak = np.maximum(np.maximum(albedo[..., 0], albedo[..., 1]), albedo[..., 2])
    np.maximum(peak, 1.0, out=peak)
    albedo /= peak[..., None]
    np.maximum(albedo, 0.0, out=albedo)
    return compress_highlights(albedo, in_place=True)
