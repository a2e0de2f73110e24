"""Synthetic relighting scenes with exact ground truth for every layer.

A *subject* (sphere, ellipsoid, head-like union of ellipsoids, optional hair strands) has a known
alpha matte, camera-space normals (x right, y up, z toward the camera), albedo (textured with
real photo detail) and height field. It is rendered under an HDR panorama — Lambertian diffuse
``albedo · E(n)/π`` plus a normalised-Phong specular ``k_s · F(n·v) · P_n(r)`` looked up by the
mirror direction r of the view vector v = (0, 0, 1), F a Schlick Fresnel term whose grazing
value is limited for rough skin and cloth — and composited over a pinhole view of the *same*
panorama, in the camera convention of ``../shared/data/tools/pano.py``. No cast shadows: the
truth is local shading (exact for the convex sphere and ellipsoid).

Independence: this reference renderer integrates the panorama directly (clamped cosine and
Phong lobes summed over panorama pixels); it uses neither spherical harmonics nor
``relight_core.envmap``, so agreement between the pipeline's shading stage and this renderer is
evidence that both are right.

Array contracts: images H×W×3 float32 linear (the panorama's units times the view's exposure),
alpha H×W float32 [0, 1], normals H×W×3 float32 unit vectors ((0, 0, 1) where alpha = 0),
panoramas h×2h×3 float32 linear equirectangular.

Anti-aliasing: every pixel is ``ss × ss`` sub-samples; the subject's radiance and coverage are
averaged per pixel and the background is constant inside a pixel, so
``image = alpha · foreground + (1 − alpha) · background`` holds exactly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

# ----------------------------------------------------------------------------------- scenes


@dataclass(frozen=True)
class Scene:
    """A camera view of a shared HDR panorama, classified by hand into a scene type."""

    name: str
    hdri: str  # path relative to the shared data folder
    yaw_deg: float  # + turns right (increasing panorama u), the pano.py camera convention
    pitch_deg: float
    kind: str  # sunny | overcast | sunset | indoor | backlit
    reason: str  # one line: why this kind


# Sun positions measured on the panoramas: rooitou_park φ≈36° elev 10°, spruit_sunrise φ≈36°
# elev 8°, kiara_1_dawn φ≈43° elev 5°, immenstadter_horn φ≈36° elev 36° (φ = camera yaw that
# looks straight at it). dikhololo_night is left out: a night sky is no relighting target.
SCENES: tuple[Scene, ...] = (
    Scene("rooitou_front_sun", "hdri/rooitou_park_1k.hdr", -140, 3, "sunny",
          "clear sky, sun 10° high carries 70 % of the light, behind the camera"),
    Scene("immenstadter_meadow", "hdri/immenstadter_horn_1k.hdr", -110, 3, "sunny",
          "broken clouds but a visible sun 36° high, behind-right of the camera"),
    Scene("potsdamer_street", "hdri/potsdamer_platz_1k.hdr", 115, 8, "overcast",
          "solid cloud cover, brightest pixel only 10× the mean, no sun disc"),
    Scene("potsdamer_square", "hdri/potsdamer_platz_1k.hdr", -40, 5, "overcast",
          "same overcast sky, other side of the square"),
    Scene("spruit_side_sun", "hdri/gainmap/spruit_sunrise_1k.hdr", 100, 3, "sunset",
          "orange sun 8° above the horizon, 64° to the camera's left: warm, low, hard"),
    Scene("kiara_dawn", "hdri/kiara_1_dawn_1k.hdr", -60, 2, "sunset",
          "sun 5° high behind thin haze, warm sky, light from the right"),
    Scene("warehouse", "hdri/empty_warehouse_01_1k.hdr", 0, 5, "indoor",
          "neutral overhead artificial lights and skylights in a big hall"),
    Scene("st_fagans_hall", "hdri/st_fagans_interior_1k.hdr", 0, 2, "indoor",
          "mixed warm artificial light and windows, dim walls"),
    Scene("adams_bridge", "hdri/adams_place_bridge_1k.hdr", 0, 0, "indoor",
          "glass footbridge: soft daylight from above, reflective interior"),
    Scene("rooitou_into_sun", "hdri/rooitou_park_1k.hdr", 40, 3, "backlit",
          "camera looks at the low sun: the subject's face is in its own shadow, rim light"),
    Scene("spruit_into_sun", "hdri/gainmap/spruit_sunrise_1k.hdr", 30, 3, "backlit",
          "camera faces the rising sun: warm rim, dark front"),
)

SCENE_KINDS = ("sunny", "overcast", "sunset", "indoor", "backlit")


def load_hdri(path: str | Path) -> np.ndarray:
    """Radiance .hdr → h×2h×3 float32 linear RGB (clear ValueError when unreadable)."""
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if image is None or image.ndim != 3:
        raise ValueError(f"cannot read the HDR panorama {path}")
    return np.ascontiguousarray(image[..., ::-1], dtype=np.float32)


def camera_to_world(yaw_deg: float, pitch_deg: float) -> np.ndarray:
    """R = Ry(−yaw)·Rx(pitch) (pano.py): camera-frame direction d ↦ world direction R·d."""
    yaw, pitch = math.radians(yaw_deg), math.radians(pitch_deg)
    ry = np.array([[math.cos(yaw), 0, -math.sin(yaw)], [0, 1, 0],
                   [math.sin(yaw), 0, math.cos(yaw)]])
    rx = np.array([[1, 0, 0], [0, math.cos(pitch), -math.sin(pitch)],
                   [0, math.sin(pitch), math.cos(pitch)]])
    return ry @ rx


# ------------------------------------------------------------------------ panorama sampling

def pano_directions(height: int) -> np.ndarray:
    """Pixel-centre directions of an h×2h panorama (pano.py convention) → (h, 2h, 3) float64."""
    width = 2 * height
    phi = ((np.arange(width) + 0.5) / width - 0.5) * 2 * np.pi
    theta = (0.5 - (np.arange(height) + 0.5) / height) * np.pi
    phi, theta = np.meshgrid(phi, theta)
    return np.stack([np.sin(phi) * np.cos(theta), np.sin(theta),
                     -np.cos(phi) * np.cos(theta)], -1)


def pano_solid_angles(height: int) -> np.ndarray:
    """Exact solid angle of each pixel of an h×2h panorama → (h, 2h); sums to 4π."""
    edges = (0.5 - np.arange(height + 1) / height) * np.pi
    band = (np.sin(edges[:-1]) - np.sin(edges[1:])) * (np.pi / height)
    return np.repeat(band[:, None], 2 * height, axis=1)


def shrink_pano(pano: np.ndarray, height: int) -> np.ndarray:
    """Area-average a panorama to height×2·height (energy per solid angle is kept)."""
    if pano.shape[0] <= height:
        return pano.astype(np.float32)
    return cv2.resize(pano.astype(np.float32), (2 * height, height),
                      interpolation=cv2.INTER_AREA)


def sample_pano(pano: np.ndarray, dirs: np.ndarray) -> np.ndarray:
    """Bilinear lookup along unit directions (..., 3) → (..., 3) float32 (wraps in u)."""
    height, width = pano.shape[:2]
    x, y, z = dirs[..., 0], dirs[..., 1], dirs[..., 2]
    col = (0.5 + np.arctan2(x, -z) / (2 * np.pi)) * width - 0.5
    row = np.clip((0.5 - np.arcsin(np.clip(y, -1, 1)) / np.pi) * height - 0.5, 0, height - 1)
    c0, r0 = np.floor(col).astype(np.int64), np.floor(row).astype(np.int64)
    fc, fr = (col - c0)[..., None], (row - r0)[..., None]
    c0w, c1w, r1 = c0 % width, (c0 + 1) % width, np.minimum(r0 + 1, height - 1)
    top = pano[r0, c0w] * (1 - fc) + pano[r0, c1w] * fc
    bottom = pano[r1, c0w] * (1 - fc) + pano[r1, c1w] * fc
    return (top * (1 - fr) + bottom * fr).astype(np.float32)


def pano_in_camera_frame(pano: np.ndarray, rotation: np.ndarray, height: int = 256) -> np.ndarray:
    """Resample a world panorama so its directions are camera-frame directions → h×2h×3.

    This is the panorama an unrotated camera would see, the form the pipeline's ``hdri`` input
    assumes (camera frame = world frame).
    """
    # area-average to the output size first: point-sampling a finer panorama would miss or
    # double a sun that covers a pixel or two, and its energy is most of the light
    source = shrink_pano(pano, height)
    world_dirs = pano_directions(height) @ np.asarray(rotation).T
    return sample_pano(source, world_dirs)


def render_view(pano: np.ndarray, rotation: np.ndarray, hfov_deg: float, width: int,
                height: int, ss: int = 2) -> np.ndarray:
    """Pinhole view of a panorama (camera looks along −z), ss×ss box-filtered → H×W×3 f32."""
    tan_half = math.tan(math.radians(hfov_deg) / 2)
    xs = ((np.arange(width * ss) + 0.5) / (width * ss) * 2 - 1) * tan_half
    ys = (1 - (np.arange(height * ss) + 0.5) / (height * ss) * 2) * tan_half * height / width
    grid_x, grid_y = np.meshgrid(xs, ys)
    dirs = np.stack([grid_x, grid_y, -np.ones_like(grid_x)], -1)
    dirs /= np.linalg.norm(dirs, axis=-1, keepdims=True)
    view = sample_pano(pano, dirs @ np.asarray(rotation).T)
    return view.reshape(height, ss, width, ss, 3).mean(axis=(1, 3)).astype(np.float32)


def geometric_mean_exposure(view: np.ndarray, key: float = 0.18) -> float:
    """pano.py's exposure rule: key / geometric mean of the view's luminance."""
    lum = view @ np.array([0.2126, 0.7152, 0.0722], np.float32)
    return float(key / math.exp(float(np.mean(np.log(lum + 1e-4)))))


# ------------------------------------------------------------------- reference light maps

def _power(values: np.ndarray, exponent: float) -> np.ndarray:
    """values**exponent; repeated squaring for powers of two (5× faster than np.power)."""
    whole = int(exponent)
    if exponent >= 1 and whole == exponent and (whole & (whole - 1)) == 0:
        result = values.copy()
        for _ in range(whole.bit_length() - 1):
            np.multiply(result, result, out=result)
        return result
    return np.power(values, exponent)


def _lobe_map(pano_source: np.ndarray, source_dirs: np.ndarray, out_height: int,
              exponent: float) -> np.ndarray:
    """∫ L(ω) w(d·ω) dω with w ∝ max(0, ·)^n, normalised to integrate to one per output."""
    height = pano_source.shape[0]
    radiance = pano_source.reshape(-1, 3).astype(np.float32)
    src = source_dirs.reshape(-1, 3).astype(np.float32)
    solid = pano_solid_angles(height).reshape(-1).astype(np.float32)
    out_dirs = pano_directions(out_height).reshape(-1, 3).astype(np.float32)
    out = np.empty((out_dirs.shape[0], 3), np.float64)
    chunk = max(1, 2_000_000 // src.shape[0])
    for start in range(0, out_dirs.shape[0], chunk):
        cosines = np.clip(out_dirs[start:start + chunk] @ src.T, 0.0, None)
        weights = _power(cosines, exponent)
        weights *= solid
        # ∫ max(0,cos)^n dω = 2π/(n+1): dividing by the discrete sum keeps it exactly normalised
        weights /= np.maximum(weights.sum(axis=1, keepdims=True), 1e-30)
        out[start:start + chunk] = (weights @ radiance).astype(np.float64)
    return out.reshape(out_height, 2 * out_height, 3).astype(np.float32)


FRESNEL_F0 = 0.04  # dielectric reflectance at normal incidence (skin, hair, cloth)
FRESNEL_F90 = 0.35  # rough dielectrics stay far below the mirror limit of 1 at grazing angles


def fresnel(n_dot_v: np.ndarray) -> np.ndarray:
    """Schlick's approximation F0 + (F90 − F0)(1 − n·v)^5 (n·v clipped to [0, 1])."""
    cosine = np.clip(n_dot_v, 0.0, 1.0)
    return FRESNEL_F0 + (FRESNEL_F90 - FRESNEL_F0) * (1.0 - cosine) ** 5


@dataclass
class LightMaps:
    """Reference light in the camera frame: ``diffuse`` = E(n)/π, ``specular`` = P_n(r)."""

    diffuse: np.ndarray  # h×2h×3 indexed by the normal
    specular: np.ndarray  # h×2h×3 indexed by the mirror direction
    exponent: float

    def shade(self, normals: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Normals (..., 3) → (diffuse E/π, specular lobe P_n(r)), each (..., 3) float32."""
        view = np.array([0.0, 0.0, 1.0])
        n_dot_v = normals[..., 2:3]
        mirror = 2 * n_dot_v * normals - view
        mirror /= np.maximum(np.linalg.norm(mirror, axis=-1, keepdims=True), 1e-9)
        return sample_pano(self.diffuse, normals), sample_pano(self.specular, mirror)


def light_maps(pano: np.ndarray, rotation: np.ndarray, exponent: float = 32.0,
               source_height: int = 128) -> LightMaps:
    """Exact cosine (E/π) and normalised Phong-lobe maps of a world panorama, camera frame.

    Normalised clamped cosine: (1/π)·max(0, n·ω) integrates to one, so the diffuse map is
    ∫ L max(0, n·ω) dω / π = E(n)/π directly. A 128-row source keeps the diffuse map within
    ~0.5 % of a 256-row brute-force integral even with a sun in the sky.
    """
    source = shrink_pano(pano, source_height)
    cam_dirs = pano_directions(source.shape[0]) @ np.asarray(rotation)  # R^T·d per row
    diffuse = _lobe_map(source, cam_dirs, 32, 1.0)
    specular = _lobe_map(source, cam_dirs, 64, exponent)
    return LightMaps(diffuse, specular, exponent)


# ------------------------------------------------------------------------------- subjects

@dataclass(frozen=True)
class Ellipsoid:
    centre: tuple[float, float, float]
    radii: tuple[float, float, float]


SHAPES: dict[str, tuple[Ellipsoid, ...]] = {
    "sphere": (Ellipsoid((0.0, -0.05, 0.0), (0.68, 0.68, 0.68)),),
    "ellipsoid": (Ellipsoid((0.0, -0.1, 0.0), (0.5, 0.78, 0.42)),),
    # a head-like union: cranium, jaw, nose, ears, neck and shoulders running off the bottom
    "head": (Ellipsoid((0.0, 0.22, 0.0), (0.36, 0.44, 0.38)),
             Ellipsoid((0.0, 0.0, 0.06), (0.29, 0.34, 0.32)),
             Ellipsoid((0.0, 0.1, 0.36), (0.055, 0.12, 0.1)),
             Ellipsoid((-0.35, 0.12, -0.04), (0.05, 0.1, 0.05)),
             Ellipsoid((0.35, 0.12, -0.04), (0.05, 0.1, 0.05)),
             Ellipsoid((0.0, -0.45, -0.08), (0.17, 0.3, 0.17)),
             Ellipsoid((0.0, -1.12, -0.15), (0.85, 0.5, 0.3))),
}


@dataclass
class Subject:
    """Ground truth of one subject at pixel level plus its sub-sample representation."""

    name: str
    alpha: np.ndarray  # H×W
    normals: np.ndarray  # H×W×3 (coverage-weighted mean, renormalised)
    albedo: np.ndarray  # H×W×3 (coverage-weighted mean)
    height: np.ndarray  # H×W px toward the camera above the lowest visible point (0 outside)
    specular_weight: float  # k_s: the specular is k_s · F(n·v) · P_n(r)
    ss: int
    cover: np.ndarray = field(repr=False)  # (H·ss)×(W·ss) coverage in [0, 1]
    normals_ss: np.ndarray = field(repr=False)
    albedo_ss: np.ndarray = field(repr=False)


def _ellipsoid_front(shape: tuple[Ellipsoid, ...], x: np.ndarray, y: np.ndarray
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Visible front of a union of ellipsoids (orthographic along −z) → (mask, normals, z)."""
    best_z = np.full(x.shape, -np.inf)
    normals = np.zeros(x.shape + (3,))
    for part in shape:
        (cx, cy, cz), (a, b, c) = part.centre, part.radii
        q = 1 - ((x - cx) / a) ** 2 - ((y - cy) / b) ** 2
        inside = q > 0
        z = np.where(inside, cz + c * np.sqrt(np.clip(q, 0, None)), -np.inf)
        nearer = z > best_z
        best_z = np.where(nearer, z, best_z)
        gradient = np.stack([(x - cx) / a ** 2, (y - cy) / b ** 2, (z - cz) / c ** 2], -1)
        normals = np.where(nearer[..., None], gradient, normals)
    mask = np.isfinite(best_z)
    normals = normals / np.maximum(np.linalg.norm(normals, axis=-1, keepdims=True), 1e-12)
    normals[~mask] = (0.0, 0.0, 1.0)
    return mask, normals, np.where(mask, best_z, 0.0)


def _photo_texture(photo_linear: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """A random square crop of a linear photo as albedo in [0.03, 0.85] → size×size×3."""
    h, w = photo_linear.shape[:2]
    side = int(min(h, w) * rng.uniform(0.45, 0.7))
    top, left = rng.integers(0, h - side + 1), rng.integers(0, w - side + 1)
    crop = photo_linear[top:top + side, left:left + side]
    crop = cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA)
    crop = crop / max(float(np.percentile(crop, 99)), 1e-3) * 0.8
    return np.clip(crop, 0.03, 0.85).astype(np.float32)


def _hair_cover(mask: np.ndarray, centre_px: tuple[float, float], count: int,
                rng: np.random.Generator) -> np.ndarray:
    """Thin anti-aliased strands leaving the silhouette's upper half → coverage in [0, 1]."""
    size = mask.shape[0]
    canvas = np.zeros(mask.shape, np.float32)
    cx, cy = centre_px
    for _ in range(count):
        angle = rng.uniform(math.radians(15), math.radians(165))  # upper half, image y down
        direction = np.array([math.cos(angle), -math.sin(angle)])
        # march outward from the centre to the silhouette: the strand's root
        radius = 0.0
        while radius < size:
            px, py = int(cx + direction[0] * radius), int(cy + direction[1] * radius)
            if not (0 <= px < size and 0 <= py < size) or not mask[py, px]:
                break
            radius += 1.0
        root = np.array([cx, cy]) + direction * (radius - 0.02 * size)
        length = rng.uniform(0.05, 0.16) * size
        bend = rng.normal(0, 0.5)
        points = []
        for t in np.linspace(0, 1, 10):
            side = np.array([-direction[1], direction[0]]) * bend * t * t * length * 0.5
            sag = np.array([0.0, 1.0]) * 0.3 * t * t * length  # gravity pulls strands down
            points.append(root + direction * t * length + side + sag)
        strand = np.zeros_like(canvas)
        cv2.polylines(strand, [np.round(np.array(points) * 16).astype(np.int32)], False,
                      float(rng.uniform(0.5, 1.0)), thickness=1, lineType=cv2.LINE_AA, shift=4)
        canvas = 1 - (1 - canvas) * (1 - strand)  # strands overlap like thin films
    return np.clip(canvas, 0, 1) * ~mask


def make_subject(shape: str, photo_linear: np.ndarray, size: int = 256, ss: int = 3,
                 hair_strands: int = 0, specular_weight: float = 1.0,
                 seed: int = 0) -> Subject:
    """Build a subject of ``size``×``size`` pixels (image spans x, y ∈ [−1, 1], y up)."""
    if shape not in SHAPES:
        raise ValueError(f"unknown shape {shape!r}; choose one of {sorted(SHAPES)}")
    rng = np.random.default_rng(seed)
    fine = size * ss
    coords = ((np.arange(fine) + 0.5) / fine) * 2 - 1
    x, y = np.meshgrid(coords, -coords)
    mask, normals, depth = _ellipsoid_front(SHAPES[shape], x, y)
    # the image spans 2 units: heights in output pixels above the lowest visible point
    height_ss = np.where(mask, depth - depth[mask].min(), 0.0) * size / 2
    albedo = _photo_texture(photo_linear, fine, rng)
    cover = mask.astype(np.float32)
    if hair_strands:
        main = SHAPES[shape][0]
        centre_px = ((main.centre[0] + 1) / 2 * fine, (1 - main.centre[1]) / 2 * fine)
        hair = _hair_cover(mask, centre_px, hair_strands, rng)
        radial = np.stack([x - main.centre[0], y - main.centre[1],
                           np.full_like(x, 0.6 * main.radii[0])], -1)
        radial /= np.linalg.norm(radial, axis=-1, keepdims=True)
        is_hair = hair > 0
        cover = np.where(is_hair, hair, cover)
        normals[is_hair] = radial[is_hair]
        albedo[is_hair] = np.array([0.09, 0.055, 0.035], np.float32)
    alpha, mean_normals, mean_albedo = _pixel_average(cover, normals, albedo, ss)
    height = (_block_sum(mask * height_ss, ss) / np.maximum(_block_sum(mask, ss), 1)
              ).astype(np.float32)  # the body's height; hair strands lie on the silhouette
    return Subject(shape, alpha, mean_normals, mean_albedo, height, specular_weight, ss, cover,
                   normals.astype(np.float32), albedo)


def _block_sum(values: np.ndarray, ss: int) -> np.ndarray:
    h, w = values.shape[0] // ss, values.shape[1] // ss
    return values.reshape(h, ss, w, ss, *values.shape[2:]).sum(axis=(1, 3))


def _pixel_average(cover: np.ndarray, normals: np.ndarray, albedo: np.ndarray, ss: int
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    weight = _block_sum(cover, ss)
    alpha = (weight / ss ** 2).astype(np.float32)
    safe = np.maximum(weight, 1e-9)[..., None]
    mean_normals = _block_sum(cover[..., None] * normals, ss)
    norm = np.linalg.norm(mean_normals, axis=-1, keepdims=True)
    mean_normals = np.where(norm > 1e-9, mean_normals / np.maximum(norm, 1e-9), (0.0, 0.0, 1.0))
    mean_albedo = np.where(weight[..., None] > 0,
                           _block_sum(cover[..., None] * albedo, ss) / safe, 0.0)
    return alpha, mean_normals.astype(np.float32), mean_albedo.astype(np.float32)


# -------------------------------------------------------------------------------- render

@dataclass
class SceneLight:
    """A scene prepared once for every subject: light maps, camera view, exposure."""

    scene: Scene
    maps: LightMaps
    view: np.ndarray  # H×W×3 linear, panorama units (not exposed)
    exposure: float  # pano.py's rule on this view
    hdri_camera: np.ndarray  # h×2h×3: the panorama in the camera frame, exposed


def prepare_scene(pano: np.ndarray, scene: Scene, size: int, hfov_deg: float = 60.0
                  ) -> SceneLight:
    """Light maps, size×size pinhole view and exposure of one scene."""
    rotation = camera_to_world(scene.yaw_deg, scene.pitch_deg)
    view = render_view(shrink_pano(pano, 512), rotation, hfov_deg, size, size)
    exposure = geometric_mean_exposure(view)
    hdri_camera = (pano_in_camera_frame(pano, rotation) * exposure).astype(np.float32)
    return SceneLight(scene, light_maps(pano, rotation), view, exposure, hdri_camera)


@dataclass
class Rendering:
    """One subject in one scene: every layer of the truth, linear, exposed like the view."""

    background: np.ndarray  # H×W×3
    foreground: np.ndarray  # H×W×3: the subject's radiance (straight, not premultiplied)
    diffuse_shading: np.ndarray  # H×W×3: E(n)/π (coverage-weighted)
    specular: np.ndarray  # H×W×3: k_s · F(n·v) · P_n(r) (coverage-weighted)
    image: np.ndarray  # H×W×3: alpha · foreground + (1 − alpha) · background
    hdri_camera: np.ndarray  # h×2h×3: the scene's panorama in the camera frame, exposed
    exposure: float


def _radiance(normals: np.ndarray, albedo: np.ndarray, specular_weight: float,
              maps: LightMaps) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """→ (radiance, diffuse E/π, specular) for normals and albedo (..., 3)."""
    diffuse, lobe = maps.shade(normals)
    specular = specular_weight * fresnel(normals[..., 2:3]) * lobe
    return albedo * diffuse + specular, diffuse, specular


def render(subject: Subject, light: SceneLight) -> Rendering:
    """Render ``subject`` in a prepared scene and composite it over the scene's camera view."""
    if subject.alpha.shape != light.view.shape[:2]:
        raise ValueError(f"subject is {subject.alpha.shape}, the view {light.view.shape[:2]}")
    radiance_ss, diffuse_ss, specular_ss = _radiance(
        subject.normals_ss, subject.albedo_ss, subject.specular_weight, light.maps)
    weight = _block_sum(subject.cover, subject.ss)
    safe = np.maximum(weight, 1e-9)[..., None]

    def pixel_mean(values: np.ndarray) -> np.ndarray:
        mean = _block_sum(subject.cover[..., None] * values, subject.ss) / safe
        return (np.where(weight[..., None] > 0, mean, 0.0) * light.exposure).astype(np.float32)

    foreground = pixel_mean(radiance_ss)
    background = light.view * light.exposure
    alpha = subject.alpha[..., None]
    return Rendering(
        background=background.astype(np.float32),
        foreground=foreground,
        diffuse_shading=pixel_mean(diffuse_ss),
        specular=pixel_mean(specular_ss),
        image=(alpha * foreground + (1 - alpha) * background).astype(np.float32),
        hdri_camera=light.hdri_camera,
        exposure=light.exposure,
    )


def shade_pixels(subject: Subject, light: SceneLight) -> np.ndarray:
    """The reference model applied to the *pixel* layers (mean normal, mean albedo) → H×W×3.

    This is what any per-pixel renderer given the true layers should produce; it differs from
    ``render``'s foreground only where a pixel's sub-samples see different normals (creases,
    steep edges), which no per-pixel method can resolve.
    """
    radiance = _radiance(subject.normals, subject.albedo, subject.specular_weight, light.maps)[0]
    return np.where(subject.alpha[..., None] > 0, radiance * light.exposure, 0.0
                    ).astype(np.float32)


# ------------------------------------------------------------------------------ encoding

def srgb_encode(linear: np.ndarray) -> np.ndarray:
    """Linear → sRGB-encoded, clipped to [0, 1] (float32)."""
    x = np.clip(np.asarray(linear, np.float32), 0.0, 1.0)
    return np.where(x <= 0.0031308, 12.92 * x, 1.055 * np.power(x, 1 / 2.4) - 0.055
                    ).astype(np.float32)


def srgb_decode(encoded: np.ndarray) -> np.ndarray:
    """sRGB-encoded [0, 1] → linear (float32)."""
    x = np.asarray(encoded, np.float32)
    return np.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4).astype(np.float32)
