"""Matting: person mask → trimap → closed-form alpha → decontaminated foreground.

Contract
--------
``matte(image_linear, person_mask, max_size=1024, edge_refine=True) -> (alpha, foreground)``

* ``image_linear``: (H, W, 3) float32 linear RGB, straight.
* ``person_mask``: (h, w) float32 in [0, 1] at any resolution (e.g. the segmentation model's),
  resampled to the image.
* ``alpha``: (H, W) float32 in [0, 1]; ``foreground``: (H, W, 3) float32 linear, the colours
  of the person with the old background removed where alpha < 1 (I = αF + (1 − α)B).

Method: the mask gives a trimap whose unknown band scales with the image; PyMatting's
closed-form matting (Levin et al. 2008) solves alpha on sRGB-encoded colours (the colour-line
model was made for display-referred values) at ≤ ``min(max_size, SOLVE_MAX_SIDE)`` px; a fast
guided filter (He & Sun 2015) carries the matte to the working and then the full resolution
along the finer image's edges; ``estimate_foreground_ml`` (Germer et al. 2020) recovers F and B
in linear light, and B — smooth by nature — is upsampled to solve the compositing equation for F
at full resolution.
"""

from __future__ import annotations

import importlib.util
import os

import cv2
import numpy as np

from .io import RelightError, linear_to_srgb, resize_linear

# Unknown band of the trimap, as a fraction of the working image's long side (MODELS.md: ~2 %).
BAND_FRACTION_OUTER = 0.028
BAND_FRACTION_INNER = 0.014
MIN_PERSON_FRACTION = 0.002
# The closed-form solve grows faster than linearly with the band's pixel count (incomplete
# Cholesky + CG: ~0.7 CPU-s at 800 px, ~1.5 at 1060 px on this machine); above this long side
# the solve runs smaller and the guided filter carries the matte up along the image's edges.
SOLVE_MAX_SIDE = 800  # a mask covering less than 0.2 % of the image holds no person


def configure_numba_cache() -> None:
    """Point numba's cache to a user folder when pymatting's own folder is read-only.

    Must run before ``import pymatting`` (its kernels compile on import, ~40 s uncached).
    """
    if os.environ.get("NUMBA_CACHE_DIR"):
        return
    spec = importlib.util.find_spec("pymatting")
    package_dir = os.path.dirname(spec.origin) if spec and spec.origin else None
    if package_dir and os.access(package_dir, os.W_OK):
        return  # numba caches next to the sources: already warm after the first import
    import platformdirs

    cache_dir = os.path.join(platformdirs.user_cache_dir("relight"), "numba")
    os.makedirs(cache_dir, exist_ok=True)
    os.environ["NUMBA_CACHE_DIR"] = cache_dir


def _pymatting():
    configure_numba_cache()
    import pymatting

    return pymatting


def warm_up() -> float:
    """Import pymatting (compiling and caching its numba kernels) and run a tiny matte.

    Returns the seconds it took. The installer calls this once so the first user run is fast.
    """
    import time

    start = time.perf_counter()
    pymatting = _pymatting()
    rng = np.random.default_rng(0)
    image = rng.random((24, 24, 3))
    trimap = np.full((24, 24), 0.5)
    trimap[:, :6] = 0.0
    trimap[:, -6:] = 1.0
    alpha = pymatting.estimate_alpha_cf(image, trimap)
    pymatting.estimate_foreground_ml(image, alpha, return_background=True)
    return time.perf_counter() - start


# ---------------------------------------------------------------- trimap

def _disk(radius: int) -> np.ndarray:
    size = 2 * radius + 1
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size))


def trimap_from_mask(mask: np.ndarray, outer_px: int, inner_px: int) -> np.ndarray:
    """(H, W) mask in [0,1] → trimap (H, W) float64: 1 sure person, 0 sure background, 0.5 unknown.

    The unknown band reaches ``outer_px`` outside and ``inner_px`` inside the mask's 0.5 contour.
    """
    person = (mask >= 0.5).astype(np.uint8)
    sure_fg = cv2.erode(person, _disk(max(1, inner_px)))
    maybe = cv2.dilate(person, _disk(max(1, outer_px)))
    trimap = np.where(sure_fg > 0, 1.0, np.where(maybe > 0, 0.5, 0.0))
    return trimap


def band_widths(long_side: int) -> tuple[int, int]:
    """Outer and inner unknown-band widths (px) for an image whose long side is ``long_side``."""
    outer = max(3, round(BAND_FRACTION_OUTER * long_side))
    inner = max(2, round(BAND_FRACTION_INNER * long_side))
    return outer, inner


# ---------------------------------------------------------------- alpha

def closed_form_alpha(image_srgb: np.ndarray, trimap: np.ndarray) -> np.ndarray:
    """Closed-form alpha on the trimap's unknown pixels.

    ``image_srgb``: (H, W, 3) float in [0, 1] sRGB-encoded; ``trimap``: (H, W) {0, 0.5, 1}.
    Returns (H, W) float32 in [0, 1]. Only the bounding box of the unknown band (plus a margin
    of known pixels) is solved: the rest is already decided.
    """
    pymatting = _pymatting()
    unknown = (trimap > 0.01) & (trimap < 0.99)
    alpha = (trimap >= 0.99).astype(np.float32)
    if not unknown.any():
        return alpha
    rows = np.flatnonzero(unknown.any(axis=1))
    cols = np.flatnonzero(unknown.any(axis=0))
    margin = 4
    y0, y1 = max(0, rows[0] - margin), min(trimap.shape[0], rows[-1] + margin + 1)
    x0, x1 = max(0, cols[0] - margin), min(trimap.shape[1], cols[-1] + margin + 1)
    crop_image = np.ascontiguousarray(image_srgb[y0:y1, x0:x1], dtype=np.float64)
    crop_trimap = np.ascontiguousarray(trimap[y0:y1, x0:x1], dtype=np.float64)
    solved = pymatting.estimate_alpha_cf(
        crop_image, crop_trimap, laplacian_kwargs={"epsilon": 1e-6}, cg_kwargs={"maxiter": 2000}
    )
    alpha[y0:y1, x0:x1] = solved.astype(np.float32)
    return np.clip(alpha, 0.0, 1.0)


def _box(values: np.ndarray, radius: int) -> np.ndarray:
    return cv2.boxFilter(values, -1, (2 * radius + 1, 2 * radius + 1), normalize=True,
                         borderType=cv2.BORDER_REFLECT)


def guided_upsample(
    alpha_low: np.ndarray, guide_low: np.ndarray, guide_full: np.ndarray,
    radius: int = 2, eps: float = 1e-4,
) -> np.ndarray:
    """Fast guided filter upsampling (He & Sun 2015) with a grey guide.

    ``alpha_low`` (h, w), ``guide_low`` (h, w), ``guide_full`` (H, W), float32 → (H, W) float32:
    the linear model alpha ≈ a·I + b, fitted in small windows at low resolution and applied to
    the full-resolution guide, so the matte follows edges finer than the working resolution.
    """
    mean_i = _box(guide_low, radius)
    mean_p = _box(alpha_low, radius)
    cov_ip = _box(guide_low * alpha_low, radius) - mean_i * mean_p
    var_i = _box(guide_low * guide_low, radius) - mean_i * mean_i
    a = cov_ip / (var_i + eps)
    b = mean_p - a * mean_i
    mean_a = _box(a, radius)
    mean_b = _box(b, radius)
    height, width = guide_full.shape
    a_full = cv2.resize(mean_a, (width, height), interpolation=cv2.INTER_LINEAR)
    b_full = cv2.resize(mean_b, (width, height), interpolation=cv2.INTER_LINEAR)
    return np.clip(a_full * guide_full + b_full, 0.0, 1.0)


def _grey(srgb: np.ndarray) -> np.ndarray:
    return (0.299 * srgb[..., 0] + 0.587 * srgb[..., 1] + 0.114 * srgb[..., 2]).astype(np.float32)


def upsample_alpha(alpha_low: np.ndarray, image_low_srgb: np.ndarray,
                   image_full_srgb: np.ndarray) -> np.ndarray:
    """Working-resolution alpha → full resolution; edge-aware only inside the soft band."""
    height, width = image_full_srgb.shape[:2]
    plain = cv2.resize(alpha_low, (width, height), interpolation=cv2.INTER_LINEAR)
    scale = width / alpha_low.shape[1]
    if scale <= 1.0:
        return np.clip(plain, 0.0, 1.0)
    guided = guided_upsample(alpha_low, _grey(image_low_srgb), _grey(image_full_srgb))
    soft = ((alpha_low > 0.002) & (alpha_low < 0.998)).astype(np.uint8)
    soft = cv2.dilate(soft, _disk(2)).astype(np.float32)
    weight = cv2.resize(cv2.GaussianBlur(soft, (5, 5), 0), (width, height),
                        interpolation=cv2.INTER_LINEAR)
    return np.clip(plain + weight * (guided - plain), 0.0, 1.0)


# ---------------------------------------------------------------- foreground

def estimate_foreground(image_linear: np.ndarray, alpha: np.ndarray
                        ) -> tuple[np.ndarray, np.ndarray]:
    """Multilevel foreground/background estimation in linear light → (F, B) (H, W, 3) float32."""
    pymatting = _pymatting()
    foreground, background = pymatting.estimate_foreground_ml(
        image_linear.astype(np.float64), alpha.astype(np.float64), return_background=True
    )
    return foreground.astype(np.float32), background.astype(np.float32)


def foreground_full_res(image_full: np.ndarray, alpha_full: np.ndarray,
                        foreground_low: np.ndarray, background_low: np.ndarray) -> np.ndarray:
    """Solve I = αF + (1 − α)B for F at full resolution with B upsampled (B is smooth).

    Where α is tiny the equation is ill-conditioned, so the upsampled low-res F is used there.
    """
    height, width = alpha_full.shape
    a = alpha_full[..., None]
    # in place, buffer by buffer: at 12 MP each colour array is 144 MB
    solved = resize_linear(background_low, width, height)
    solved *= 1.0 - a
    np.subtract(image_full, solved, out=solved)
    solved /= np.maximum(a, 1e-3)
    foreground = resize_linear(foreground_low, width, height)
    solved -= foreground
    solved *= np.clip((a - 0.05) / 0.25, 0.0, 1.0)
    foreground += solved
    del solved
    np.maximum(foreground, 0.0, out=foreground)
    return foreground.astype(np.float32, copy=False)


# ---------------------------------------------------------------- whole stage

def working_size(height: int, width: int, max_size: int) -> tuple[int, int]:
    """(h, w) with the long side ≤ max_size, aspect kept."""
    scale = min(1.0, max_size / max(height, width))
    return max(1, round(height * scale)), max(1, round(width * scale))


def matte(
    image_linear: np.ndarray,
    person_mask: np.ndarray,
    max_size: int = 1024,
    edge_refine: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Person mask → (alpha (H, W) float32, foreground (H, W, 3) float32 linear)."""
    height, width = image_linear.shape[:2]
    work_h, work_w = working_size(height, width, max_size)
    image_work = resize_linear(image_linear, work_w, work_h)
    solve_h, solve_w = working_size(height, width, min(max_size, SOLVE_MAX_SIDE))
    image_solve = resize_linear(image_work, solve_w, solve_h)
    mask_solve = cv2.resize(person_mask.astype(np.float32), (solve_w, solve_h),
                            interpolation=cv2.INTER_LINEAR)
    if (mask_solve >= 0.5).mean() < MIN_PERSON_FRACTION:
        raise RelightError("no_person", "no person found in the portrait")
    srgb_solve = linear_to_srgb(image_solve)
    outer, inner = band_widths(max(solve_h, solve_w))
    trimap = trimap_from_mask(mask_solve, outer, inner)
    if edge_refine:
        alpha_solve = closed_form_alpha(srgb_solve, trimap)
    else:  # preview: the mask itself, snapped to the image edges
        grey = _grey(srgb_solve)
        alpha_solve = guided_upsample(mask_solve, grey, grey, radius=4, eps=1e-3)
        alpha_solve = np.where(trimap == 0.5, alpha_solve, trimap).astype(np.float32)
    if (solve_h, solve_w) != (work_h, work_w):
        alpha_work = upsample_alpha(alpha_solve, srgb_solve, linear_to_srgb(image_work))
    else:
        alpha_work = alpha_solve
    foreground_work, background_work = estimate_foreground(image_work, alpha_work)
    if (work_h, work_w) == (height, width):
        return alpha_work, foreground_work
    srgb_full = linear_to_srgb(image_linear)
    alpha = upsample_alpha(alpha_work, linear_to_srgb(image_work), srgb_full)
    del srgb_full
    foreground = foreground_full_res(image_linear, alpha, foreground_work, background_work)
    return alpha, foreground


def foreground_from_alpha(image_linear: np.ndarray, alpha: np.ndarray,
                          max_size: int = 1024) -> np.ndarray:
    """Decontaminate colours for an alpha the user already gave (RGBA portrait)."""
    height, width = alpha.shape
    work_h, work_w = working_size(height, width, max_size)
    image_low = resize_linear(image_linear, work_w, work_h)
    alpha_low = cv2.resize(alpha, (work_w, work_h), interpolation=cv2.INTER_AREA)
    foreground_low, background_low = estimate_foreground(image_low, alpha_low)
    if (work_h, work_w) == (height, width):
        return foreground_low
    return foreground_full_res(image_linear, alpha, foreground_low, background_low)
