"""The stages in order, and the re-light cache.

Contract
--------
``Relighter(portrait_linear, settings=None, progress=None, selection=None)``
    ``portrait_linear``: (H, W, 3|4) float32 linear, straight; a 4th channel is an alpha the user
    already made (respected instead of matting); HDR (values above 1) in any units is fine
    (``hdr_portrait_gain``). ``progress(stage, fraction)`` is called with the
    stage name and the overall fraction done (0..1). ``selection``: optional (H, W) float32 in
    [0, 1], the host's selection: the person lies inside it, the unselected part (below
    ``matting.REGION_OUT``) is background, the matte is multiplied by it (a feathered selection
    feathers the matte), and a face whose centre it does not select (< 0.5) is left out. It only
    takes away: a part of the person the detector missed is not added by selecting it (an
    alpha the user made is the way to give a matte).
``Relighter.prepare()``: detect → matting → geometry → albedo (slow, once per portrait).
``Relighter.relight(background_linear=None, hdri=None, settings=None, size=None) -> Layers``:
    lighting → shading → composite (fast; cached light maps and shadow maps are reused).
    ``size`` limits the long side of the returned layers (a preview); None = full size.

Every ``Layers`` array is at the output size: alpha (H, W); foreground, normals, albedo,
shading, specular, relit, composite (H, W, 3); all float32, colours linear.
relit = albedo × shading + specular exactly; composite = relit × α + background × (1 − α).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import cv2
import numpy as np

from . import albedo as albedo_stage
from . import composite as composite_stage
from . import envmap, geometry, io, matting
from .io import RelightError
from .shading import LightMaps, Surface, compose, specular_texture

__all__ = ["Settings", "Layers", "Relighter", "RelightError"]

MAX_FACES = 4
MIN_FACE_SCORE = 0.65  # the detector finds "faces" at ~0.53 in empty rooms
MIN_FACELESS_COVERAGE = 0.1
# a person whose box (widened by PERSON_MARGIN × its long side) spans at most CROP_MAX_SHARE of
# the frame's long side is worked on in that box (``person_box``); mask parts under
# PERSON_PART_MIN of the largest do not count
PERSON_MARGIN = 0.2
CROP_MAX_SHARE = 0.8
PERSON_PART_MIN = 0.05
PERSON_MASK_LEVEL = 0.25  # the mask's level that counts as person for the box
BOX_GROWTHS = 3  # times the box may grow where the person found in it reaches its side
ALBEDO_NORMAL_SMOOTHING = 0.015  # × long side: blur of the normals the original light divides by
Progress = Callable[[str, float], None]

# share of the total time each stage takes on a typical portrait (for the progress fraction)
_STAGE_SPAN = {
    "detect": (0.0, 0.05), "matting": (0.05, 0.55), "geometry": (0.55, 0.65),
    "albedo": (0.65, 0.7), "lighting": (0.7, 0.8), "shading": (0.8, 0.92),
    "composite": (0.92, 1.0),
}


@dataclass
class Settings:
    rotate_deg: float = 0.0
    strength: float = 1.0
    shininess: float = 0.3
    keep_original: float = 0.0
    max_size: int = 1024
    edge_refine: bool = True
    max_megapixels: float = 100.0


@dataclass
class Layers:
    alpha: np.ndarray
    foreground: np.ndarray
    normals: np.ndarray
    albedo: np.ndarray
    shading: np.ndarray
    specular: np.ndarray
    relit: np.ndarray
    composite: np.ndarray
    light: dict = field(default_factory=dict)
    faces: int = 0
    timings: dict = field(default_factory=dict)
    warnings: list = field(default_factory=list)


def _resize(array: np.ndarray, height: int, width: int) -> np.ndarray:
    return io.resize_linear(np.ascontiguousarray(array), width, height)


def _release_free_memory() -> None:
    """Hand freed heap memory back to the OS (glibc only; elsewhere a no-op).

    glibc raises its mmap threshold after large frees, so later 1–30 MB temporaries come from
    the heap and stay counted in RSS after they are freed; at 12 MP that adds tens of MB to
    the peak. Called between the big stages of a large image only (it costs ~1 ms).
    """
    global _MALLOC_TRIM
    if _MALLOC_TRIM is None:
        try:
            import ctypes

            _MALLOC_TRIM = ctypes.CDLL("libc.so.6").malloc_trim
        except (OSError, AttributeError):
            _MALLOC_TRIM = False
    if _MALLOC_TRIM:
        _MALLOC_TRIM(0)


_MALLOC_TRIM = None
LARGE_IMAGE_PIXELS = 4_000_000
# A float portrait with more than this share of its pixels above 1 is HDR (an EXR render, a
# scene-linear layer): detection and matting read sRGB, clipped at 1, so it is first brought
# to a photographer's exposure (``hdr_portrait_gain``; at 100× the demo's exposure the matte
# was lost whole)
HDR_PORTRAIT_SHARE = 0.05
HDR_PORTRAIT_UNDER_STOPS = 2.0
# Peak memory of prepare + relight grows with the portrait's pixels: 3.4 / 6.3 / 12.1 GB at
# 24 / 48 / 96 MP (`bench/bench_pipeline.py --cases 24mp,48mp,96mp`), 0.12 GB per megapixel
# over a 0.5 GB process, with the portrait already in memory when this is checked:
MEMORY_GB_PER_MEGAPIXEL = 0.125
MEMORY_HEADROOM = 0.9  # of the memory the system says is available


def available_memory_gb() -> float | None:
    """The memory the system can give without swapping (Linux's MemAvailable), in GB; None
    where it cannot be read (other systems: no check)."""
    try:
        with open("/proc/meminfo", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) / 1e6  # kB → GB
    except (OSError, ValueError, IndexError):
        return None
    return None


def check_memory(height: int, width: int) -> None:
    """Refuse a portrait whose relighting would not fit in the memory available (bad_input):
    past it the system swaps for minutes or kills a process (the worker, or the host)."""
    megapixels = height * width / 1e6
    needed = MEMORY_GB_PER_MEGAPIXEL * megapixels
    available = available_memory_gb()
    if available is None or needed <= MEMORY_HEADROOM * available:
        return
    raise RelightError("bad_input", f"portrait: {width}×{height} ({megapixels:.0f} MP) needs "
                                    f"about {needed:.1f} GB of memory and {available:.1f} GB "
                                    "are free; scale the image down or close other programs")


def _normalize_in_bands(normals: np.ndarray, rows: int = 256) -> None:
    """Scale (H, W, 3) float32 vectors to unit length in place, band by band.

    No full-size temporary (at 12 MP a plane of lengths is 48 MB, and fresh memory is slow to
    touch on a VM); vectors shorter than 1e-6 are divided by 1e-6."""
    for top in range(0, normals.shape[0], rows):
        band = normals[top:top + rows]
        length = np.sqrt(np.einsum("...i,...i->...", band, band))
        band /= np.maximum(length, 1e-6)[..., None]


def _fingerprint(array: np.ndarray) -> tuple:
    flat = array.reshape(-1)
    step = max(1, flat.size // 4096)
    return array.shape, float(np.sum(flat[::step], dtype=np.float64))


def validate_image(image: np.ndarray, what: str, max_megapixels: float) -> np.ndarray:
    """Check an array handed in by a host: shape, size limit, finite values."""
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] not in (3, 4):
        raise RelightError("bad_input", f"{what}: expected H×W×3 or H×W×4 pixels, "
                                        f"got shape {image.shape}")
    height, width = image.shape[:2]
    if height < io.MIN_SIDE or width < io.MIN_SIDE:
        raise RelightError("bad_input", f"{what}: the image is only {width}×{height} pixels")
    if height * width / 1e6 > max_megapixels:
        raise RelightError("bad_input", f"{what}: {width}×{height} is over the "
                                        f"{max_megapixels:g} MP limit")
    return io.finite_pixels(image)  # no copy when it is clean: 12 MP is 144 MB per copy


def hdr_portrait_gain(portrait: np.ndarray) -> float:
    """1.0, or for an HDR portrait (H, W, 3|4) float32 linear, more than HDR_PORTRAIT_SHARE of
    its pixels above 1, the gain to an exposure that clips only that share, but at most
    HDR_PORTRAIT_UNDER_STOPS under a metering camera's (log-average at mid-grey). Metering
    alone clipped the demo portrait's white wall (its dark hair fills half the frame) and the
    matte took in more of it; clipping alone would darken a person before a bright window."""
    from . import lighting

    sample = portrait[::4, ::4, :3]  # exposure needs no detail
    peaks = sample.max(axis=2)
    if float(np.mean(peaks > 1.0)) <= HDR_PORTRAIT_SHARE:
        return 1.0
    for_highlights = 1.0 / float(np.quantile(peaks, 1.0 - HDR_PORTRAIT_SHARE))
    metered = lighting.metering_gain(sample @ envmap.LUMINANCE, units_free=True)
    return max(for_highlights, metered / 2.0 ** HDR_PORTRAIT_UNDER_STOPS)


def validate_selection(selection: np.ndarray, shape: tuple[int, int]) -> np.ndarray | None:
    """A host's selection → (H, W) float32 in [0, 1], or None when it selects everything.

    ``bad_input`` when its size is not the portrait's or nothing in it is selected (no pixel
    at ≥ 0.5): the host should send no selection rather than an empty one."""
    selection = np.asarray(selection)
    if selection.ndim == 3 and selection.shape[2] == 1:
        selection = selection[..., 0]
    if selection.shape != tuple(shape):
        size = "×".join(str(n) for n in selection.shape[1::-1]) if selection.ndim >= 2 else "?"
        raise RelightError("bad_input", f"selection: it is {size} pixels, the portrait "
                                        f"{shape[1]}×{shape[0]}; it must cover the portrait "
                                        "exactly")
    selection = np.clip(np.nan_to_num(selection.astype(np.float32), nan=0.0), 0.0, 1.0)
    if not (selection >= 0.5).any():
        raise RelightError("bad_input", "selection: nothing of the portrait is selected; "
                                        "select the person, or select nothing to use the "
                                        "whole picture")
    if selection.min() >= 0.999:
        return None
    return selection


def render_view(pano: np.ndarray, height: int, width: int, hfov_deg: float = 60.0) -> np.ndarray:
    """Pinhole view (looking along −z) of a panorama, for a composite when only an HDRI is given."""
    t = math.tan(math.radians(hfov_deg) / 2)
    xs = ((np.arange(width) + 0.5) / width * 2 - 1) * t
    ys = (1 - (np.arange(height) + 0.5) / height * 2) * t * height / width
    grid_x, grid_y = np.meshgrid(xs, ys)
    dirs = geometry.normalize(np.stack([grid_x, grid_y, -np.ones_like(grid_x)], -1))
    return envmap.sample_pano(pano, dirs)


@dataclass
class _Found:
    """What detection found in an image, at its working size."""

    image_work: np.ndarray  # (h, w, 3) float32 linear
    srgb8_work: np.ndarray  # (h, w, 3) uint8
    person: np.ndarray | None  # (h, w) float32 person mask; None when the user gave an alpha
    faces: list
    selection_work: np.ndarray | None  # (h, w) float32


def person_box(found: _Found, given_alpha: np.ndarray | None,
               shape: tuple[int, int]) -> tuple[int, int, int, int] | None:
    """The box (top, left, bottom, right) px of the full image that the later stages should
    work on, or None for the whole image.

    The matte's unknown band, its seeds and the normals' smoothing scale with the image they
    are given, and the working size caps its resolution: a person a third of the frame high
    would get a band as wide as their face and a third of the pixels. So a person whose box
    (the mask's parts of any size, the faces, widened by PERSON_MARGIN for hair the mask
    misses) spans at most CROP_MAX_SHARE of the frame is cut out first."""
    work_h, work_w = found.image_work.shape[:2]
    inside = _person_in(found, given_alpha)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(inside.astype(np.uint8), 8)
    if count > 1:  # specks of "person" in foliage do not widen the box
        areas = stats[1:, cv2.CC_STAT_AREA]
        kept = 1 + np.flatnonzero(areas >= PERSON_PART_MIN * areas.max())
        inside = np.isin(labels, kept)
    rows, cols = np.any(inside, axis=1), np.any(inside, axis=0)
    if not rows.any():
        return None
    top, bottom = np.flatnonzero(rows)[[0, -1]] + (0, 1)
    left, right = np.flatnonzero(cols)[[0, -1]] + (0, 1)
    for face in found.faces:
        x0, y0, x1, y1 = face.box
        top, bottom = min(top, y0), max(bottom, y1)
        left, right = min(left, x0), max(right, x1)
    margin = PERSON_MARGIN * max(bottom - top, right - left)
    height, width = shape
    scale_y, scale_x = height / work_h, width / work_w
    top = max(0, math.floor((top - margin) * scale_y))
    bottom = min(height, math.ceil((bottom + margin) * scale_y))
    left = max(0, math.floor((left - margin) * scale_x))
    right = min(width, math.ceil((right + margin) * scale_x))
    if max(bottom - top, right - left) > CROP_MAX_SHARE * max(height, width):
        return None
    return int(top), int(left), int(bottom), int(right)


def _in_frame(array: np.ndarray, shape: tuple[int, int], corner: tuple[int, int],
              name: str) -> np.ndarray:
    """A layer of the person's box placed at ``corner`` (top, left) of a frame of ``shape``.
    Outside the box: no alpha, normals facing the camera, the other layers' values at the box's
    edge carried outward (they lie under alpha 0, and an opaque layer shows no seam)."""
    top, left = corner
    bottom, right = shape[0] - top - array.shape[0], shape[1] - left - array.shape[1]
    if name == "alpha":
        return np.pad(array, ((top, bottom), (left, right)))
    pad = ((top, bottom), (left, right), (0, 0))
    if name == "normals":
        framed = np.zeros(shape + (3,), np.float32)
        framed[..., 2] = 1.0
        framed[top:top + array.shape[0], left:left + array.shape[1]] = array
        return framed
    return np.pad(array, pad, mode="edge")


def _person_in(found: _Found, given_alpha: np.ndarray | None) -> np.ndarray:
    """(h, w) bool at the working size: the person as the mask (or the user's alpha) has it,
    generously (a weakly detected body counts)."""
    work_h, work_w = found.image_work.shape[:2]
    if given_alpha is not None:
        return _resize(given_alpha, work_h, work_w) > 0.02
    return _limited(found.person, found.selection_work) >= PERSON_MASK_LEVEL


def grown_box(box: tuple[int, int, int, int], found: _Found, given_alpha: np.ndarray | None,
              shape: tuple[int, int]) -> tuple[int, int, int, int] | None:
    """``box`` (top, left, bottom, right px of a frame of ``shape``) with each side that the
    person found in it (``found``, its detection) reaches, unless it is the frame's edge, moved
    out by PERSON_MARGIN × the box's long side; None when that exceeds CROP_MAX_SHARE."""
    inside = _person_in(found, given_alpha)
    strip = max(2, round(0.01 * max(inside.shape)))
    top, left, bottom, right = box
    step = math.ceil(PERSON_MARGIN * max(bottom - top, right - left))
    height, width = shape
    if top > 0 and inside[:strip].any():
        top = max(0, top - step)
    if bottom < height and inside[-strip:].any():
        bottom = min(height, bottom + step)
    if left > 0 and inside[:, :strip].any():
        left = max(0, left - step)
    if right < width and inside[:, -strip:].any():
        right = min(width, right + step)
    if max(bottom - top, right - left) > CROP_MAX_SHARE * max(height, width):
        return None
    return top, left, bottom, right


@dataclass
class _Subject:
    """The part of the portrait the stages after detection work on: the person's box, or the
    whole frame."""

    image: np.ndarray  # (h, w, 3) float32 linear
    selection: np.ndarray | None  # (h, w) float32
    given_alpha: np.ndarray | None  # (h, w) float32: the matte the user made
    found: _Found  # detection at the working size of ``image``
    body: np.ndarray | None  # (work h, work w) float32: the bodies below the faces


def _cropped(array: np.ndarray | None, box: tuple[int, int, int, int]) -> np.ndarray | None:
    if array is None:
        return None
    top, left, bottom, right = box
    return np.ascontiguousarray(array[top:bottom, left:right])


def _bodies_below_faces(found: _Found) -> np.ndarray | None:
    """A second opinion on the body below each face, where the segmentation doubts: (h, w)
    float32 at the working size, or None (no face, or the user gave the matte)."""
    from . import detect

    if found.person is None:
        return None
    bodies = [body for body in (detect.body_below_face(found.srgb8_work, face)
                                for face in found.faces) if body is not None]
    return np.maximum.reduce(bodies) if bodies else None


def _limited(mask: np.ndarray, selection: np.ndarray | None) -> np.ndarray:
    return mask if selection is None else mask * selection


def _selected(face, selection: np.ndarray | None) -> bool:
    """Whether a face's box centre lies in the selection (a face left out is not relit)."""
    if selection is None:
        return True
    x0, y0, x1, y1 = face.box
    height, width = selection.shape
    x = min(max(int((x0 + x1) / 2), 0), width - 1)
    y = min(max(int((y0 + y1) / 2), 0), height - 1)
    return bool(selection[y, x] >= 0.5)


class Relighter:
    """Keeps matte, normals and albedo of one portrait so a change of light is fast."""

    def __init__(self, portrait_linear: np.ndarray, settings: Settings | None = None,
                 progress: Progress | None = None, selection: np.ndarray | None = None):
        self.settings = settings or Settings()
        self.portrait = validate_image(portrait_linear, "portrait", self.settings.max_megapixels)
        check_memory(*self.portrait.shape[:2])
        self.portrait_gain = hdr_portrait_gain(self.portrait)
        if self.portrait_gain != 1.0:
            self.portrait = self.portrait.copy()
            self.portrait[..., :3] *= self.portrait_gain
        self.selection = (None if selection is None else
                          validate_selection(selection, self.portrait.shape[:2]))
        self.progress = progress
        self.timings: dict[str, float] = {}
        self.cpu_timings: dict[str, float] = {}  # CPU seconds of this process per stage
        self._cpu_start = 0.0
        self.warnings: list[str] = []
        self.faces = 0
        self._cancelled = False
        self._prepared = False
        self._env_cache: tuple | None = None
        self._backdrop: tuple | None = None
        self._report_cache: tuple | None = None
        self._surfaces: dict[tuple[int, int], tuple[Surface, np.ndarray]] = {}
        self._sized: dict[tuple[int, int], dict[str, np.ndarray]] = {}
        self.box: tuple[int, int, int, int] | None = None  # the person's crop, if any

    # -------------------------------------------------------------- plumbing

    def cancel(self) -> None:
        """Ask a running prepare/relight to stop at the next stage boundary."""
        self._cancelled = True

    def _stage(self, name: str, start: float) -> float:
        now = time.perf_counter()
        self.timings[name] = round(self.timings.get(name, 0.0) + now - start, 4)
        cpu = time.process_time()
        self.cpu_timings[name] = round(self.cpu_timings.get(name, 0.0) + cpu - self._cpu_start, 4)
        if self.progress:
            self.progress(name, _STAGE_SPAN[name][1])
        return now

    def _begin(self, name: str) -> float:
        if self._cancelled:
            self._cancelled = False
            raise RelightError("cancelled", "cancelled by the user")
        if self.progress:
            self.progress(name, _STAGE_SPAN[name][0])
        self._cpu_start = time.process_time()
        return time.perf_counter()

    # -------------------------------------------------------------- prepare (slow, once)

    def _find(self, image: np.ndarray, selection: np.ndarray | None, has_alpha: bool) -> _Found:
        """The person mask (None when the user gave an alpha) and the faces, at the working
        size of ``image`` (H, W, 3) linear."""
        from . import detect

        height, width = image.shape[:2]
        work_h, work_w = matting.working_size(height, width, self.settings.max_size)
        image_work = _resize(image, work_h, work_w)
        srgb8_work = io.to_srgb8(image_work)
        if float(srgb8_work.max()) - float(srgb8_work.min()) < 2:
            what = ("almost black: brighten it first" if srgb8_work.max() < 8
                    else "one flat colour: is it the right layer?")
            raise RelightError("bad_input", f"portrait: the image shows nothing ({what})")
        person = None if has_alpha else detect.person_mask(srgb8_work)
        selection_work = None if selection is None else _resize(selection, work_h, work_w)
        faces = [f for f in detect.detect_faces(srgb8_work) if f.score >= MIN_FACE_SCORE
                 and _selected(f, selection_work)]
        faces = sorted(faces, key=lambda f: -(f.box[2] - f.box[0]))[:MAX_FACES]
        return _Found(image_work, srgb8_work, person, faces, selection_work)

    def _grown_to_the_person(self, box: tuple[int, int, int, int], found: _Found,
                             given_alpha: np.ndarray | None, selection: np.ndarray | None
                             ) -> tuple[tuple[int, int, int, int] | None, _Found]:
        """Detection in ``box``; while the person found there reaches a side of the box that
        is not the frame's (the whole frame's mask, at a third of the resolution, missed a
        leg or a tripod), that side moves out. (None, the frame's detection) when the box
        outgrows CROP_MAX_SHARE or BOX_GROWTHS moves."""
        image = self.portrait[..., :3]
        for _ in range(BOX_GROWTHS + 1):
            top, left, bottom, right = box
            found_in_box = self._find(
                np.ascontiguousarray(image[top:bottom, left:right]),
                None if selection is None else selection[top:bottom, left:right],
                given_alpha is not None)
            alpha_in_box = None if given_alpha is None else given_alpha[top:bottom, left:right]
            grown = grown_box(box, found_in_box, alpha_in_box, image.shape[:2])
            if grown == box:
                return box, found_in_box
            if grown is None:
                break
            box = grown
        return None, found

    def _given_alpha(self) -> np.ndarray | None:
        """The portrait layer's own transparency (H, W) float32 in [0, 1], times the selection,
        as the matte the user made; None for an opaque layer."""
        if self.portrait.shape[2] != 4:
            return None
        alpha_channel = np.clip(self.portrait[..., 3], 0.0, 1.0)
        if alpha_channel.max() <= 0.0:
            raise RelightError("bad_input", "portrait: the layer is fully transparent")
        if alpha_channel.min() >= 0.999:
            return None
        return alpha_channel if self.selection is None else alpha_channel * self.selection

    def _detect(self, given_alpha: np.ndarray | None) -> _Subject:
        """Find the person (mask, faces, face meshes, bodies) and the part of the portrait the
        later stages work on: the person's box when they are small in the frame (``box``)."""
        from . import detect

        image, selection = self.portrait[..., :3], self.selection
        found = self._find(image, selection, given_alpha is not None)
        # the segmentation model sees "people" in trees and rocks: without a face, only a
        # detected body pose or a large share of the frame counts as a person
        coverage = 1.0 if found.person is None else float(
            (_limited(found.person, found.selection_work) >= 0.5).mean())
        box = person_box(found, given_alpha, image.shape[:2])
        if box is not None:
            # the person is small in the frame: every later stage works on the person's box,
            # at the full working resolution, as it would on a portrait the person fills
            box, found = self._grown_to_the_person(box, found, given_alpha, selection)
        self.box = box
        if box is not None:
            image, selection, given_alpha = (_cropped(array, box)
                                             for array in (image, selection, given_alpha))
        self.person_shape = image.shape[:2]
        self.work_shape = found.image_work.shape[:2]
        # face meshes at the working size (for benches, debugging)
        self.landmarks = [detect.face_landmarks(found.srgb8_work, f) for f in found.faces]
        self.faces = len(self.landmarks)
        if not self.landmarks:
            if coverage < MIN_FACELESS_COVERAGE and detect.pose(found.srgb8_work) is None:
                raise RelightError("no_person", "no person found in the portrait"
                                   + ("" if selection is None else " inside the selection"))
            self.warnings.append("no face found: normals come from the silhouette only")
        return _Subject(image, selection, given_alpha, found, _bodies_below_faces(found))

    def _matte(self, subject: _Subject) -> tuple[np.ndarray, np.ndarray]:
        """Alpha (h, w) and decontaminated foreground (h, w, 3) of the subject's image."""
        settings = self.settings
        if subject.given_alpha is not None:
            alpha = subject.given_alpha.astype(np.float32)
            return alpha, matting.foreground_from_alpha(subject.image, alpha, settings.max_size)
        try:
            return matting.matte(subject.image, subject.found.person, settings.max_size,
                                 settings.edge_refine, image_work=subject.found.image_work,
                                 body=subject.body, region=subject.selection)
        except RelightError as error:
            if error.code == "no_person" and subject.selection is not None:
                raise RelightError("no_person", "no person found inside the selection; "
                                   "select the whole person") from None
            raise

    def _delight(self, alpha_work: np.ndarray) -> None:
        """Fit the original light on the skin at the working size and divide it out of the
        foreground: sets ``light_fit``, ``original_shading(_work)``, ``albedo`` and the
        full-size layers the re-lights resize from."""
        height, width = self.person_shape
        work_h, work_w = self.work_shape
        foreground_work = _resize(self.foreground, work_h, work_w)
        normals_work = self.geometry.normals
        fit_mask = self.geometry.skin
        if fit_mask.sum() < 200:
            fit_mask = alpha_work > 0.95
        self.light_fit = albedo_stage.fit_original_shading(foreground_work, normals_work, fit_mask)
        smooth = ALBEDO_NORMAL_SMOOTHING * max(work_h, work_w)
        shading_work = albedo_stage.original_shading(normals_work, self.light_fit, smooth)
        self.original_shading_work = shading_work
        if (work_h, work_w) == (height, width):
            self.original_shading = shading_work
        else:
            self.original_shading = cv2.resize(shading_work, (width, height),
                                               interpolation=cv2.INTER_LINEAR)
        self.albedo = albedo_stage.albedo_from_shading(self.foreground, self.original_shading)
        self._remove_light_tint(foreground_work, smooth)
        skin = _resize(self.geometry.face_weight, height, width)
        self._sized[(height, width)] = {
            "alpha": self.alpha, "foreground": self.foreground, "albedo": self.albedo,
            "original_shading": self.original_shading,
            "specular_texture": specular_texture(self.albedo, self.alpha, skin),
        }

    def _remove_light_tint(self, foreground_work: np.ndarray, smooth_px: float) -> None:
        """On the face, divide the original light's change of colour across the normals out
        of ``albedo`` (albedo.fit_light_tint): only inside the face mesh's box, where its
        weight is not 0."""
        weight = self.geometry.face_weight
        rows, cols = np.nonzero(weight > 0)
        if rows.size == 0:
            return
        coefficients = albedo_stage.fit_light_tint(foreground_work, self.geometry.normals,
                                                   self.geometry.skin)
        if not coefficients.any():
            return
        top, bottom, left, right = rows.min(), rows.max() + 1, cols.min(), cols.max() + 1
        tint = albedo_stage.light_tint(self.geometry.normals, coefficients, weight, smooth_px)
        height, width = self.person_shape
        work_h, work_w = self.work_shape
        x0, x1 = int(left * width / work_w), math.ceil(right * width / work_w)
        y0, y1 = int(top * height / work_h), math.ceil(bottom * height / work_h)
        albedo_stage.remove_tint(self.albedo, tint[top:bottom, left:right],
                                 (x0, y0, x1 - x0, y1 - y0))

    def prepare(self) -> None:
        """detect → matting → geometry → albedo, once per portrait."""
        given_alpha = self._given_alpha()
        start = self._begin("detect")
        subject = self._detect(given_alpha)
        start = self._stage("detect", start)

        start = self._begin("matting")
        self.alpha, self.foreground = self._matte(subject)
        start = self._stage("matting", start)

        start = self._begin("geometry")
        alpha_work = _resize(self.alpha, *self.work_shape)
        self.geometry = geometry.person_geometry(alpha_work, self.landmarks)
        start = self._stage("geometry", start)

        start = self._begin("albedo")
        self._delight(alpha_work)
        self._stage("albedo", start)
        self._prepared = True

    def framed_alpha(self) -> np.ndarray:
        """The prepared matte (H, W) float32 in the portrait's frame. ``alpha``, ``foreground``,
        ``geometry`` and ``landmarks`` are those of the person's box (``box``, or the whole
        portrait when it is None)."""
        if self.box is None:
            return self.alpha
        return _in_frame(self.alpha, self.portrait.shape[:2], self.box[:2], "alpha")

    # -------------------------------------------------------------- relight (fast, often)

    def _environment(self, background: np.ndarray | None, hdri: np.ndarray | None,
                     rotate_deg: float = 0.0, coverage: np.ndarray | None = None):
        """(environment, light maps, notes), cached for the same light source. ``coverage``:
        the background's alpha where it is partly transparent: its hidden colours are no
        scene."""
        from . import lighting

        key = tuple(None if array is None else _fingerprint(array)
                    for array in (background, hdri, coverage))
        if self._env_cache and self._env_cache[0] == key:
            return self._env_cache[1], self._env_cache[2], self._env_cache[3]
        notes: list[str] = []
        if coverage is not None:
            hidden = float(np.mean(coverage < 0.5))
            notes.append(f"background: {hidden:.0%} of it is transparent; its light is taken "
                         "from the visible part")
        if hdri is not None:
            env = lighting.environment_from_hdri(hdri)
            if background is not None:
                env, note = _match_exposure(env, background, rotate_deg, coverage=coverage)
                notes.append(note)
        else:
            env = lighting.estimate_environment(background, coverage=coverage)
        maps = LightMaps.from_environment(env)
        self._env_cache = (key, env, maps, notes)
        return env, maps, notes

    def _sized_arrays(self, height: int, width: int) -> dict[str, np.ndarray]:
        cached = self._sized.get((height, width))
        if cached is None:
            full = self._sized[self.person_shape]
            cached = {name: np.clip(_resize(array, height, width), 0, None)
                      for name, array in full.items()}
            cached["alpha"] = np.clip(cached["alpha"], 0.0, 1.0)
            if len(self._sized) > 4:
                keep = self.person_shape
                self._sized = {keep: self._sized[keep]}
            self._sized[(height, width)] = cached
        return cached

    def _surface(self, height: int, width: int) -> tuple[Surface, np.ndarray]:
        """Surface at the render size: the working size, or smaller for a small preview."""
        work_h, work_w = self.work_shape
        if height * width >= work_h * work_w:
            height, width = work_h, work_w
        cached = self._surfaces.get((height, width))
        if cached is None:
            geo = self.geometry
            if (height, width) == (work_h, work_w):
                normals, relief = geo.normals, geo.height
                skin = geo.face_weight
            else:
                scale = width / work_w
                normals = geometry.normalize(_resize(geo.normals, height, width))
                relief = _resize(geo.height, height, width) * scale
                skin = _resize(geo.face_weight, height, width)
            cached = (Surface(normals, relief, skin), normals)
            self._surfaces[(height, width)] = cached
        return cached

    def _report(self, env, rotate_deg: float) -> dict:
        key = (id(env), rotate_deg % 360)
        if self._report_cache is None or self._report_cache[0] != key:
            self._report_cache = (key, _light_report(env, rotate_deg))
        return self._report_cache[1]

    def _output_size(self, size: int | None) -> tuple[float, tuple[int, int]]:
        """The scale of the layers to the portrait and their (height, width): ``size`` caps
        the long side (a preview), None is full size."""
        full_h, full_w = self.portrait.shape[:2]
        scale = 1.0 if size is None else min(1.0, size / max(full_h, full_w))
        return scale, (max(1, round(full_h * scale)), max(1, round(full_w * scale)))

    def _rendered(self, maps: LightMaps, settings: Settings, height: int, width: int,
                  alpha: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Diffuse shading, specular light (height, width, 3) and the normals they were
        rendered with; rendered at most at the working size and resized up."""
        surface, normals = self._surface(height, width)
        shading, specular = surface.render(maps, settings.rotate_deg, settings.strength,
                                           settings.shininess)
        if shading.shape[:2] == (height, width):
            return shading, specular, normals
        surface.drop_render_cache()  # a full-size result: at 12 MP every MB counts
        shading = _resize(shading, height, width)
        specular = _resize(specular, height, width)
        np.maximum(specular, 0.0, out=specular)
        normals = _resize(normals, height, width)
        _normalize_in_bands(normals)
        normals[alpha <= 0] = (0.0, 0.0, 1.0)
        return shading, specular, normals

    def _person_layers(self, maps: LightMaps, settings: Settings, scale: float,
                       out_shape: tuple[int, int]) -> dict[str, np.ndarray]:
        """The person's layers (alpha … relit) at ``out_shape``: made in the person's box when
        there is one, then placed in the frame."""
        out_h, out_w = out_shape
        top, left, bottom, right = (0, 0, out_h, out_w) if self.box is None else (
            round(edge * scale) for edge in self.box)
        person_h, person_w = max(1, bottom - top), max(1, right - left)
        arrays = self._sized_arrays(person_h, person_w)
        shading, specular, normals = self._rendered(maps, settings, person_h, person_w,
                                                    arrays["alpha"])
        specular = specular * arrays["specular_texture"][..., None]
        shading, specular, relit = compose(arrays["albedo"], arrays["foreground"], shading,
                                           specular, arrays["original_shading"],
                                           settings.keep_original)
        foreground = arrays["foreground"]
        if self.portrait_gain != 1.0:  # back in the portrait's own units
            foreground = foreground / self.portrait_gain
        person = {"alpha": arrays["alpha"], "foreground": foreground,
                  "normals": normals, "albedo": arrays["albedo"], "shading": shading,
                  "specular": specular, "relit": relit}
        if self.box is None:
            return person
        return {name: _in_frame(array, out_shape, (top, left), name)
                for name, array in person.items()}

    def _composite(self, relit: np.ndarray, alpha: np.ndarray,
                   background_linear: np.ndarray | None, env,
                   out_shape: tuple[int, int]) -> np.ndarray:
        """relit over the background photo (covering the frame) or the panorama's view."""
        out_h, out_w = out_shape
        backdrop_key = (self._env_cache[0], out_h, out_w)
        if self._backdrop is not None and self._backdrop[0] == backdrop_key:
            return composite_stage.over(relit, alpha, self._backdrop[1])
        if background_linear is not None:
            backdrop = composite_stage.cover(background_linear, out_h, out_w)
        else:
            backdrop = render_view(env.pano, out_h, out_w)
        if out_h * out_w >= LARGE_IMAGE_PIXELS:
            # a large backdrop is not kept: the composite is made in its buffer (at 12 MP that
            # is 144 MB less at the peak; re-lights at that size are not the fast path)
            self._backdrop = None
            return composite_stage.over(relit, alpha, backdrop, out=backdrop)
        self._backdrop = (backdrop_key, backdrop)
        return composite_stage.over(relit, alpha, backdrop)

    def relight(self, background_linear: np.ndarray | None = None,
                hdri: np.ndarray | None = None, settings: Settings | None = None,
                size: int | None = None) -> Layers:
        """lighting → shading → composite (see the module's contract)."""
        settings = settings or self.settings
        # checked before the slow prepare: a wrong layer is told at once
        background_linear, coverage, hdri = _validated_light(background_linear, hdri,
                                                             settings.max_megapixels)
        if not self._prepared:
            self.prepare()

        start = self._begin("lighting")
        env, maps, light_notes = self._environment(background_linear, hdri, settings.rotate_deg,
                                                   coverage)
        if settings.rotate_deg % 360 == 0:  # once the light is turned, its guess is the user's
            light_notes = light_notes + env.advice
        start = self._stage("lighting", start)

        if self.portrait.shape[0] * self.portrait.shape[1] >= LARGE_IMAGE_PIXELS:
            _release_free_memory()
        start = self._begin("shading")
        scale, out_shape = self._output_size(size)
        person = self._person_layers(maps, settings, scale, out_shape)
        start = self._stage("shading", start)

        if out_shape[0] * out_shape[1] >= LARGE_IMAGE_PIXELS:
            _release_free_memory()
        start = self._begin("composite")
        composite = self._composite(person["relit"], person["alpha"], background_linear, env,
                                    out_shape)
        self._stage("composite", start)

        return Layers(
            **person, composite=composite, light=self._report(env, settings.rotate_deg),
            faces=self.faces, timings=dict(self.timings), warnings=self.warnings + light_notes,
        )


def _validated_light(background_linear: np.ndarray | None, hdri: np.ndarray | None,
                     max_megapixels: float
                     ) -> tuple[np.ndarray | None, np.ndarray | None, np.ndarray | None]:
    """(background RGB, its coverage (H, W) where it is partly transparent, else None,
    panorama RGB), checked; at least one of background and panorama is given."""
    if background_linear is None and hdri is None:
        raise RelightError("bad_input", "give a background photo or an HDR panorama")
    coverage = None
    if background_linear is not None:
        background_linear = validate_image(background_linear, "background", max_megapixels)
        if background_linear.shape[2] == 4:
            alpha = np.clip(background_linear[..., 3], 0.0, 1.0)
            if alpha.max() <= 0.0:
                raise RelightError("bad_input", "background: fully transparent, nothing to "
                                   "light or show; choose the new background's layer or file")
            if alpha.min() < 0.999:
                coverage = alpha
        background_linear = background_linear[..., :3]
    if hdri is not None:
        hdri = validate_image(hdri, "panorama", max_megapixels)[..., :3]
        if hdri.shape[1] != 2 * hdri.shape[0]:
            raise RelightError("bad_input", "panorama: must be equirectangular "
                                            f"(width = 2 × height), got {hdri.shape[1]}×"
                                            f"{hdri.shape[0]}")
    return background_linear, coverage, hdri


def _match_exposure(env, background: np.ndarray, rotate_deg: float, hfov_deg: float = 70.0,
                    coverage: np.ndarray | None = None):
    """Scale an HDRI's environment to the exposure of the background photo.

    A panorama is in its own units; the photo was exposed for its scene. The panorama's view in
    the photo's direction is rendered and the ratio of the geometric-mean luminances (robust to
    the photo's clipping) is the photo's exposure in panorama units.
    """
    from . import lighting

    pano = envmap.rotate_pano(env.pano, rotate_deg) if rotate_deg % 360 else env.pano
    bg_h, bg_w = background.shape[:2]
    width = 128
    height = max(8, round(width * bg_h / bg_w))
    view = render_view(pano, height, width, hfov_deg)
    photo = _resize(background, height, width)
    # a partly transparent background is matched where it is visible
    seen = (np.ones((height, width), bool) if coverage is None
            else _resize(coverage, height, width) >= 0.5)
    if not seen.any():
        seen[:] = True

    def log_mean(rgb: np.ndarray) -> float:
        return float(np.mean(np.log(np.maximum(rgb[seen] @ envmap.LUMINANCE, 0.0) + 1e-4)))

    gain = math.exp(log_mean(photo) - log_mean(view))
    if not math.isfinite(gain) or gain <= 0:
        return env, "panorama used in its own units (no exposure match possible)"
    return lighting.scaled(env, gain), f"panorama scaled by {gain:.4g} to the background " \
        "photo's exposure"


def _light_report(env, rotate_deg: float) -> dict:
    from . import lighting

    if rotate_deg % 360:
        env = lighting.rotated(env, rotate_deg)
    report = lighting.environment_report(env)
    report.setdefault("sh", np.asarray(env.sh, float).round(6).tolist())
    report.setdefault("dominant_direction", np.asarray(env.dominant_direction, float).round(6)
                      .tolist())
    report.setdefault("dominant_colour", np.asarray(env.dominant_colour, float).round(6).tolist())
    return report
