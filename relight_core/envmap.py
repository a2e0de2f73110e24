"""ENVMAP READY — panorama maths shared by the lighting, albedo and shading stages.

Conventions (those of ``../shared/data/tools/pano.py`` and ``docs/ARCHITECTURE.md``):

* A panorama is an ``h×2h×3`` float32 array of **linear** radiance, equirectangular. Column
  ``u ∈ [0,1)``, row ``v ∈ [0,1)`` (pixel centres at ``(j+0.5)/w``, ``(i+0.5)/h``) map to
  ``φ = (u − 0.5)·2π``, ``θ = (0.5 − v)·π`` and the unit direction
  ``d = (sin φ cos θ, sin θ, −cos φ cos θ)``: +y up, the panorama centre looks along −z (into the
  scene), the column at u = 0.75 along +x, and +z (toward the photographer) is the left/right edge.
* Directions are ``(..., 3)`` float arrays in that frame (equal to the camera frame for an
  unrotated camera: x right, y up, z toward the camera).
* SH: 9 real coefficients per colour channel, order ``Y00, Y1-1(y), Y10(z), Y11(x), Y2-2(xy),
  Y2-1(yz), Y20(3z²−1), Y21(xz), Y22(x²−y²)``, no Condon–Shortley phase, radiance coefficients
  ``L_lm = ∫ L(ω) Y_lm(ω) dω``; irradiance ``E(n) = Σ A_l L_lm Y_lm(n)``, ``A = (π, 2π/3, π/4)``.
* Yaw rotation (``rotate_pano``, ``rotate_sh``): a positive angle turns the environment about +y
  so that what was straight ahead (−z) moves toward +x (to the right of the picture, i.e. toward
  increasing u) and then behind the camera (+z).
"""

from __future__ import annotations

import functools
import math

import cv2
import numpy as np

SH_CONSTANTS = (0.282095, 0.488603, 1.092548, 0.315392, 0.546274)
SH_ORDER = "Y00, Y1-1(y), Y10(z), Y11(x), Y2-2(xy), Y2-1(yz), Y20(3z^2-1), Y21(xz), Y22(x^2-y^2)"
# Lambertian (clamped cosine) convolution weights per SH coefficient (Ramamoorthi & Hanrahan 2001)
COSINE_LOBE = np.array([np.pi] + [2 * np.pi / 3] * 3 + [np.pi / 4] * 5)
LUMINANCE = np.array([0.2126, 0.7152, 0.0722])

# Panorama height used for SH projection: 1k panoramas (512 rows) are averaged 2×2, as the ground
# truth of ../shared/data/backgrounds was made; more rows change nothing in 9 coefficients.
_SH_PROJECTION_HEIGHT = 256


def _check_pano(pano: np.ndarray) -> np.ndarray:
    pano = np.asarray(pano)
    if pano.ndim != 3 or pano.shape[2] != 3 or pano.shape[1] != 2 * pano.shape[0]:
        raise ValueError(f"a panorama must be h×2h×3, got shape {pano.shape}")
    return pano


def direction_grid(height: int) -> np.ndarray:
    """Unit directions of the pixel centres of an ``height×2·height`` panorama → (h, 2h, 3) f32."""
    width = 2 * height
    u = (np.arange(width) + 0.5) / width
    v = (np.arange(height) + 0.5) / height
    phi, theta = np.meshgrid((u - 0.5) * 2 * np.pi, (0.5 - v) * np.pi)
    dirs = np.stack([np.sin(phi) * np.cos(theta), np.sin(theta), -np.cos(phi) * np.cos(theta)], -1)
    return dirs.astype(np.float32)


def solid_angles(height: int) -> np.ndarray:
    """Solid angle (sr) of every pixel of an ``height×2·height`` panorama → (h, 2h) float64.

    Exact per latitude band (2π/w · (sin θ_top − sin θ_bottom)), so the total is exactly 4π.
    """
    width = 2 * height
    edges = (0.5 - np.arange(height + 1) / height) * np.pi
    band = (np.sin(edges[:-1]) - np.sin(edges[1:])) * (2 * np.pi / width)
    return np.repeat(band[:, None], width, axis=1)


def downsample_pano(pano: np.ndarray, height: int) -> np.ndarray:
    """Average a panorama down to ``height×2·height`` (no-op when already that small).

    Each source pixel counts by its solid angle (∝ cos latitude): a plain area average would
    give the tiny pixels near the poles the weight of those at the horizon, and a light
    overhead (a skylight, the sun at noon) would gain energy as the panorama shrinks.
    """
    pano = _check_pano(pano)
    rows = pano.shape[0]
    if rows <= height:
        return pano.astype(np.float32, copy=False)
    weight = np.cos((0.5 - (np.arange(rows) + 0.5) / rows) * np.pi).astype(np.float32)
    size = (2 * height, height)
    total = cv2.resize(pano.astype(np.float32) * weight[:, None, None], size,
                       interpolation=cv2.INTER_AREA)
    norm = cv2.resize(np.repeat(weight[:, None], 2 * rows, axis=1), size,
                      interpolation=cv2.INTER_AREA)
    return (total / np.maximum(norm, 1e-12)[..., None]).astype(np.float32)


def sh_basis(dirs: np.ndarray) -> np.ndarray:
    """Real SH basis up to band 2 at unit directions (..., 3) → (..., 9), dtype of ``dirs``."""
    dirs = np.asarray(dirs)
    x, y, z = dirs[..., 0], dirs[..., 1], dirs[..., 2]
    c0, c1, c2, c3, c4 = SH_CONSTANTS
    return np.stack([np.full_like(x, c0), c1 * y, c1 * z, c1 * x, c2 * x * y, c2 * y * z,
                     c3 * (3 * z * z - 1), c2 * x * z, c4 * (x * x - y * y)], -1)


def project_sh(pano: np.ndarray, to_frame: np.ndarray | None = None) -> np.ndarray:
    """Radiance SH of a panorama: h×2h×3 linear → (9, 3) float32, ``L_lm = ∫ L Y_lm dω``.

    ``to_frame`` (3×3, optional) maps panorama directions into another frame before projecting
    (e.g. ``R.T`` with R = camera-to-world gives the camera-frame coefficients).
    """
    small = downsample_pano(pano, _SH_PROJECTION_HEIGHT).astype(np.float64)
    dirs = direction_grid(small.shape[0]).astype(np.float64)
    if to_frame is not None:
        dirs = dirs @ np.asarray(to_frame, np.float64).T
    weighted = sh_basis(dirs) * solid_angles(small.shape[0])[..., None]
    return np.einsum("hwk,hwc->kc", weighted, small).astype(np.float32)


def irradiance_sh(sh: np.ndarray, normals: np.ndarray) -> np.ndarray:
    """Irradiance E(n) (not divided by π) from radiance SH (9, 3) at normals (..., 3) → (..., 3)."""
    sh = np.asarray(sh, np.float64)
    basis = sh_basis(np.asarray(normals, np.float64))
    return (basis @ (sh * COSINE_LOBE[:, None])).astype(np.float32)


def rotation_y(yaw_deg: float) -> np.ndarray:
    """3×3 matrix turning directions by ``yaw_deg`` about +y, −z toward +x (see module doc)."""
    a = math.radians(yaw_deg)
    c, s = math.cos(a), math.sin(a)
    # −z = (0,0,−1) ↦ (sin a, 0, −cos a): φ grows by a.
    return np.array([[c, 0.0, -s], [0.0, 1.0, 0.0], [s, 0.0, c]])


def _fibonacci_sphere(count: int) -> np.ndarray:
    i = np.arange(count) + 0.5
    y = 1 - 2 * i / count
    r = np.sqrt(1 - y * y)
    phi = i * math.pi * (3 - math.sqrt(5))
    return np.stack([r * np.cos(phi), y, r * np.sin(phi)], -1)


_SH_FIT_DIRS = _fibonacci_sphere(64)
_SH_FIT_PINV = np.linalg.pinv(sh_basis(_SH_FIT_DIRS))


def rotate_sh_matrix(sh: np.ndarray, rotation: np.ndarray) -> np.ndarray:
    """SH (9, C) of f → SH of f rotated by the 3×3 ``rotation`` (f'(R d) = f(d)).

    Bands ≤ 2 are closed under rotation, so fitting the rotated function on 64 well-spread
    directions is exact (to float precision) and works for any rotation matrix.
    """
    rotation = np.asarray(rotation, np.float64)
    source_dirs = _SH_FIT_DIRS @ rotation  # R^T d for each row d
    values = sh_basis(source_dirs) @ np.asarray(sh, np.float64)
    return (_SH_FIT_PINV @ values).astype(np.float32)


def rotate_sh(sh: np.ndarray, yaw_deg: float) -> np.ndarray:
    """Turn SH lighting (9, C) by ``yaw_deg`` about the vertical axis (sense of rotate_pano)."""
    return rotate_sh_matrix(sh, rotation_y(yaw_deg))


def rotate_pano(pano: np.ndarray, yaw_deg: float) -> np.ndarray:
    """Turn a panorama by ``yaw_deg`` about the vertical axis → same shape, float32.

    Content moves toward increasing u by yaw/360 of the width (linear interpolation between
    columns for fractional shifts, wrapping around).
    """
    pano = _check_pano(pano).astype(np.float32, copy=False)
    width = pano.shape[1]
    shift = (yaw_deg / 360.0) * width
    whole = math.floor(shift)
    frac = shift - whole
    out = np.roll(pano, whole, axis=1)
    if frac > 1e-6:
        out = (1 - frac) * out + frac * np.roll(out, 1, axis=1)
    return out.astype(np.float32, copy=False)


PHONG_MAX_SOURCE_HEIGHT = 128


def _phong_source_height(exponent: float) -> int:
    """Rows the Phong integral runs on: ~8 pixels per lobe half width (a sun's position within
    a pixel must not move a sharp lobe's value), 128 at most (n ≥ 16), 32 for n = 1."""
    half_width = math.acos(0.5 ** (1.0 / max(exponent, 1e-3)))  # angle where the lobe is 0.5
    rows = math.pi / (half_width / 8)
    return int(min(PHONG_MAX_SOURCE_HEIGHT, max(16, 2 ** math.ceil(math.log2(rows)))))


@functools.lru_cache(maxsize=16)
def _phong_spectrum(source_h: int, out_height: int, exponent: float) -> np.ndarray:
    """Row spectra of the normalised Phong weights (frequency, output, source row), complex64.

    They depend only on the two grids and the exponent, never on the light: computed once per
    process (~0.05 s for a sharp lobe), so prefiltering a new environment takes a few ms.
    """
    source_w, out_w = 2 * source_h, 2 * out_height
    out_step = out_w // math.gcd(source_w, out_w)
    source_dirs = direction_grid(source_h).reshape(-1, 3)
    source_sa = solid_angles(source_h).reshape(-1).astype(np.float32)
    # the lower output rows mirror the upper ones (source rows flipped): compute the upper half
    upper = (out_height + 1) // 2
    out_dirs = direction_grid(out_height)[:upper, :out_step]  # (upper, out_step, 3) base columns
    weights = np.clip(out_dirs.reshape(-1, 3) @ source_dirs.T, 0.0, None)
    whole = int(exponent)
    if whole == exponent and whole >= 1 and whole & (whole - 1) == 0:
        for _ in range(whole.bit_length() - 1):  # cos^n by squaring: ~5× faster than power
            np.multiply(weights, weights, out=weights)
    else:
        weights = np.power(weights, np.float32(exponent))
    weights *= source_sa
    weights /= np.maximum(weights.sum(axis=1, keepdims=True), 1e-30)
    weights = weights.reshape(upper, out_step, source_h, source_w)
    lower = weights[: out_height - upper][::-1, :, ::-1]
    weights = np.concatenate([weights, lower]).reshape(out_height * out_step, source_h, source_w)
    spectrum = np.conj(np.fft.rfft(weights, axis=-1)).transpose(2, 0, 1)  # (fw, k, sh)
    spectrum = np.ascontiguousarray(spectrum, dtype=np.complex64)
    spectrum.flags.writeable = False  # shared by every call
    return spectrum


def phong_prefilter(pano: np.ndarray, exponent: float, out_height: int = 32) -> np.ndarray:
    """Panorama convolved with a normalised Phong lobe → out_height×2·out_height×3 float32.

    ``out(r) = ∫ L(ω) (n+1)/(2π) max(0, r·ω)^n dω``, looked up by the reflection vector r. The
    source is averaged first to a resolution that resolves the lobe (32 rows for n = 1, 128
    for n ≥ 16), and each output's discrete weights are renormalised to integrate to one, so a
    constant panorama stays exactly constant and energy is preserved.

    The lobe depends only on the angle to r, so turning r about the vertical axis by one
    source column turns its weights by one column: the weights are computed for the few output
    columns that are not such turns of each other, and the sum over the source becomes a
    circular correlation along the rows, done with FFTs (the same sums, ~50× less work). The
    weights' spectra are cached (they do not depend on the panorama).
    """
    pano = _check_pano(pano)
    exponent = float(exponent)
    source = downsample_pano(pano, _phong_source_height(exponent))
    source_h, source_w = source.shape[:2]
    out_w = 2 * out_height
    # output columns j and j + out_w/common are the same lobe turned by source_w/common columns
    common = math.gcd(source_w, out_w)
    out_step, source_step = out_w // common, source_w // common
    spectrum_w = _phong_spectrum(source_h, out_height, exponent)          # (fw, k, sh)
    spectrum_l = np.fft.rfft(source.astype(np.float64), axis=1)           # (sh, fw, 3)
    spectrum_l = spectrum_l.transpose(1, 0, 2).astype(np.complex64)       # (fw, sh, 3)
    # out[i, p + m·out_step] = Σ_rc W[i, p, r, c] · L[r, c + m·source_step]
    correlation = np.fft.irfft(np.matmul(spectrum_w, spectrum_l), n=source_w, axis=0)
    turned = correlation[::source_step].reshape(common, out_height, out_step, 3)
    out = turned.transpose(1, 0, 2, 3).reshape(out_height, out_w, 3)
    return np.maximum(out, 0.0).astype(np.float32)  # FFT round-off: no negative radiance


def dirs_to_uv(dirs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unit directions (..., 3) → panorama coordinates (u, v) in [0, 1)."""
    dirs = np.asarray(dirs)
    phi = np.arctan2(dirs[..., 0], -dirs[..., 2])
    theta = np.arcsin(np.clip(dirs[..., 1], -1.0, 1.0))
    return 0.5 + phi / (2 * np.pi), 0.5 - theta / np.pi


def sample_pano(pano: np.ndarray, dirs: np.ndarray) -> np.ndarray:
    """Bilinear lookup of a panorama along directions (..., 3) → (..., 3) float32.

    Wraps around horizontally and clamps at the poles (the pano.py convention).
    """
    pano = _check_pano(pano)
    height, width = pano.shape[:2]
    u, v = dirs_to_uv(np.asarray(dirs, np.float64))
    x = u * width - 0.5
    y = np.clip(v * height - 0.5, 0, height - 1)
    x0 = np.floor(x).astype(np.int64)
    y0 = np.floor(y).astype(np.int64)
    fx = (x - x0)[..., None].astype(np.float32)
    fy = (y - y0)[..., None].astype(np.float32)
    x0w, x1w = x0 % width, (x0 + 1) % width
    y1 = np.minimum(y0 + 1, height - 1)
    top = pano[y0, x0w] * (1 - fx) + pano[y0, x1w] * fx
    bottom = pano[y1, x0w] * (1 - fx) + pano[y1, x1w] * fx
    return (top * (1 - fy) + bottom * fy).astype(np.float32)


def luminance(rgb: np.ndarray) -> np.ndarray:
    """Rec.709 luminance of linear RGB (..., 3) → (...)."""
    return np.asarray(rgb, np.float32) @ LUMINANCE.astype(np.float32)


def dominant_direction(sh: np.ndarray) -> np.ndarray:
    """Unit direction of the luminance L1 vector of radiance SH (9, 3) → (3,) (x, y, z).

    (0, 1, 0) when the light has no directional part.
    """
    lum = np.asarray(sh, np.float64) @ LUMINANCE
    vector = np.array([lum[3], lum[1], lum[2]])  # Y11 ~ x, Y1-1 ~ y, Y10 ~ z
    norm = np.linalg.norm(vector)
    if not np.isfinite(norm) or norm < 1e-12:
        return np.array([0.0, 1.0, 0.0], np.float32)
    return (vector / norm).astype(np.float32)
