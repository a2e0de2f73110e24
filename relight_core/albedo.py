"""Albedo: estimate the portrait's original light, divide it out.

Contract
--------
``fit_original_shading(image_linear, normals, fit_mask) -> coefficients (9,) float64``
    Shading of the original light as grey order-2 SH over the normal: S(n) = sh_basis(n) · c,
    where S is E(n)/π in the image's linear units (so image ≈ albedo × S).
``original_shading(normals, coefficients) -> (H, W) float32`` ≥ a floor.
``albedo_from_shading(foreground_linear, shading) -> (H, W, 3) float32`` in [0, 1].

Method and assumptions (each stated, none hidden)
-------------------------------------------------
* On skin the reflectance is roughly uniform, so skin luminance / albedo varies with the normal
  only through the light: a robust (Huber-weighted, ridge-regularised) least-squares fit of
  luminance against the 9 SH basis functions of the normal gives the light up to a scale.
  Without a face, all opaque person pixels are used.
* The original light is taken as white (photographers white-balance): the fitted shading is
  grey, so skin and cloth keep their colour in the albedo.
* Scale: albedo and light trade off; we fix the skin's median albedo luminance from its median
  luminance in the photo, partly: photographers expose for the face, so a face's brightness in
  the photo says little about its reflectance — but darker skin still photographs darker.
  ``skin_albedo = 0.35 · (median skin luminance / 0.3)^0.5``, kept within [0.1, 0.6].
* The shading is smooth (an order-2 SH of smooth normals), so dividing by it keeps every
  detail (pores, freckles, strands) in the albedo. It is floored so deep original shadows do
  not blow the albedo up, only ``DELIGHT_STRENGTH`` of its variation (in log terms) is divided
  out (a conservative de-lighting: our normals are coarse and shadowed skin is redder, so a
  full division over-corrects), and the albedo is kept ≤ 1 (physical reflectance) with its hue.
"""

from __future__ import annotations

import cv2
import numpy as np

from .envmap import sh_basis

LUMINANCE = np.array([0.2126, 0.7152, 0.0722], np.float32)
# band-2 terms are the least constrained by a face's half-sphere of normals
RIDGE = (0.0, 0.005, 0.005, 0.005, 0.05, 0.05, 0.05, 0.05, 0.05)
HUBER_K = 1.345
IRLS_ITERATIONS = 6
MAX_FIT_SAMPLES = 40_000
DELIGHT_STRENGTH = 0.6  # exponent on the fitted shading's variation (1 = divide it all out)
SHADING_FLOOR_FRACTION = 0.3  # of the frontal shading: deep shadows do not blow albedo up
TYPICAL_SKIN_ALBEDO = 0.35
TYPICAL_SKIN_LUMINANCE = 0.3
SKIN_ALBEDO_RANGE = (0.1, 0.6)


def luminance(rgb: np.ndarray) -> np.ndarray:
    return rgb @ LUMINANCE


def _robust_fit(basis: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Ridge + Huber IRLS solve of basis @ c ≈ target → c (9,)."""
    weights = np.ones_like(target)
    scale = max(float(np.mean(target ** 2)), 1e-12)
    ridge = np.diag(RIDGE) * scale * len(target)
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
    skin_albedo = TYPICAL_SKIN_ALBEDO * (median_luminance / TYPICAL_SKIN_LUMINANCE) ** 0.5
    skin_albedo = float(np.clip(skin_albedo, *SKIN_ALBEDO_RANGE))
    # fitted ≈ albedo·S on skin, so S = fitted / skin_albedo
    return coefficients / skin_albedo


def original_shading(normals: np.ndarray, coefficients: np.ndarray, smooth_px: float = 0.0,
                     strength: float = DELIGHT_STRENGTH) -> np.ndarray:
    """Normals (H, W, 3) → grey shading (H, W) float32 of the fitted original light, floored.

    ``smooth_px`` blurs the normals first: our normals are a coarse estimate (a face mesh, an
    inflated silhouette), and dividing the photo by their sharpest features (the side of the
    nose, the eye sockets) paints the error into the albedo as bright or dark patches; a blurred
    normal map divides out only the broad original light, a conservative de-lighting.
    """
    full_shape = normals.shape[:2]
    if smooth_px > 2:
        # the blurred normals are smooth: evaluate at a size where the blur is 2 px, upsample
        factor = smooth_px / 2.0
        small = (max(1, round(full_shape[1] / factor)), max(1, round(full_shape[0] / factor)))
        normals = cv2.resize(normals.astype(np.float32), small, interpolation=cv2.INTER_AREA)
        smooth_px = 2.0
    if smooth_px > 0:
        normals = cv2.GaussianBlur(normals.astype(np.float32), (0, 0), smooth_px)
        normals /= np.maximum(np.linalg.norm(normals, axis=-1, keepdims=True), 1e-6)
    shading = sh_basis(normals.astype(np.float32)) @ coefficients.astype(np.float32)
    reference = shading_reference(coefficients)
    shading = np.maximum(shading, SHADING_FLOOR_FRACTION * reference) / reference
    # remove only part of the fitted light's variation (in log terms): the shadow side of skin
    # is redder (subsurface scattering) and our normals exaggerate, so a full division
    # over-corrects into pink, too-bright shadow sides
    shading = (reference * shading ** strength).astype(np.float32)
    if shading.shape != full_shape:
        shading = cv2.resize(shading, (full_shape[1], full_shape[0]),
                             interpolation=cv2.INTER_LINEAR)
    return shading


def shading_reference(coefficients: np.ndarray) -> float:
    """Shading of the fitted light on a surface facing the camera (n = +z), at least the mean."""
    frontal = float(sh_basis(np.array([0.0, 0.0, 1.0])) @ coefficients)
    return max(frontal, 0.282095 * float(coefficients[0]), 1e-6)


def albedo_from_shading(foreground_linear: np.ndarray, shading: np.ndarray) -> np.ndarray:
    """Foreground (H, W, 3) linear ÷ shading (H, W) → albedo (H, W, 3) float32 in [0, 1]."""
    albedo = foreground_linear / shading[..., None]
    # above 1 no surface reflects: scale the colour down as a whole, so its hue survives
    peak = np.max(albedo, axis=-1, keepdims=True)
    np.maximum(peak, 1.0, out=peak)
    albedo /= peak
    np.maximum(albedo, 0.0, out=albedo)
    return albedo.astype(np.float32, copy=False)
