"""Lighting from a background photo (estimated) or an HDR panorama (given).

Contract
--------
``estimate_environment(background_linear)``: H×W×3 float32 **linear** photo (as the host stores
it: exposed, clipped at 1; or HDR, unclipped, in any units) → :class:`Environment` in the
photo's linear units (a white Lambertian wall lit like the scene would appear at the photo's
exposure: shading = E(n)/π).

``environment_from_hdri(pano)``: h×2h×3 float32 linear panorama (pano.py convention) → the same,
without estimation (units are the panorama's own).

Every direction is in the **camera frame** of the background (x right, y up, z toward the
camera); the panorama is stored in that frame too (its centre column looks along −z).

How the estimate is made (each step a physical assumption, no per-file knowledge)
-----------------------------------------------------------------------------------
0. *As a camera records it*: every rule below reads the photo as a camera metering it to
   mid-grey takes it, so a photo exposed far darker, and an HDR photo (an EXR plate, a float
   layer: brighter than 1.5 somewhere) in whatever units, are first brought to that exposure
   and clipped at 1; the estimate is scaled back to the photo's units at the end.
1. *Wrap* (Khan et al. 2006): the photo is mapped onto the front hemisphere by angle, stretched
   beyond its assumed field of view; the unseen back hemisphere is the mirror image of the front
   (what is behind the photographer resembles what is in front); above and below the frame the
   mean of the photo's top / bottom third continues (sky or ceiling, floor or ground), giving
   way toward the zenith to the open sky or ceiling seen at the frame's top edge, and
   everything outside the frame is blurred, because only its average light matters.
2. *Inverse tone mapping*: pixels clipped in all channels were at least 1; large clipped areas
   (overcast sky, windows, lamps) are raised by a modest factor, or by more where auto-exposure
   (log-average at mid-grey) says the clipped part must be brighter, except below the horizon,
   where they are lit surfaces (a sunlit patch of floor) and keep the clip level; all take the
   hue of their unclipped fringe (a dawn glow clips white but is pink around its edge). A
   compact clipped blob that is white in its core (or, low and reddened by the air, clipped in
   red alone above the horizon), blooms (bright pixels around it) and sits in open, smooth sky
   is a sun: it becomes the key light, in the direction the (level) camera sees its white core,
   its flux that of the blob at ``compact_gain`` × the clip level, at most ``key_to_ambient`` ×
   the ambient facing it; looking into a sun, the unseen sky is the darker anti-solar one. A
   blob cut by the top of the frame but narrow, or by the top and one side (a sun past the
   corner), is still a sun, placed where the wrap, stretched beyond the frame, puts its white
   core; a sun's size is that of its white core (overexposed, its glare spreads in a coloured
   fringe). A clear sky clipped in blue alone over much of the frame (a photo exposed brighter
   than metered) gets its blue back from green × the unclipped sky's B / G and counts as sky.
   Sunlight's colour is not read from the clipped, sky-mixed pixels around it but from the
   atmosphere's extinction at its elevation (Rayleigh + aerosol, :func:`sunlight_colour`): white
   at noon, orange at sunrise.
3. *Light from outside the frame*, when no sun is in view. Clear daylight sky (smooth, clearly
   blue) in the top of the frame says the sun is out, and, not being in view, behind the
   photographer (low, as the sun mostly is when it lights a face), at the azimuth where the CIE
   standard clear sky best explains the sky in view (brighter toward the sun and toward the
   anti-solar point, darkest 90° away). When that model explains the sky well and the ground is
   sunlit (brighter than skylight alone makes it), the sun's strength follows from the sky's
   brightness (direct sun ≈ 25 sr × clear-sky radiance) rather than from guessing the ground's
   albedo; when it does not, that ratio still caps the strength the ground asks for (pale sand
   or snow would otherwise ask for a blinding sun). Grey sky, night or a ceiling says the light
   is broad and overhead: the unseen sky or ceiling brightens toward the zenith like the CIE
   overcast sky. With broken cloud the two are mixed in proportion. How much light is missing
   comes from the ground in the lower half of the photo (surfaces of mean albedo ρ have radiance
   ρE/π; ρ = 18 % outdoors under a clear sky, up to a room's 35 % otherwise): what the wrapped
   surroundings lack is added; the unseen surroundings are dimmed only where even the darkest
   plausible ρ (18 %) leaves them too bright for the ground (a backlit silhouette). A photo of
   the sky alone shows no ground and adds nothing. The ground below the frame fades toward the
   nadir (seen from above, rough ground shows its shadowed gaps). A broad key's SH is that of
   its lobe, not of a point.
Measured on ../shared/data/backgrounds by ``bench/bench_lighting.py`` (docs/lighting-eval.md).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import cv2
import numpy as np

from relight_core import envmap, io

PANO_HEIGHT = 128  # rows of Environment.pano (2 × 1.4° pixels: enough for Phong n = 64 lookups)


@dataclass
class EstimatorParams:
    """Physical assumptions of the photo → environment estimate (shared by every photo)."""

    hfov_deg: float = 70.0           # assumed horizontal field of view of the background photo
    stretch: float = 1.6             # the photo covers stretch × its field of view on the sphere
    back_gain: float = 1.0           # unseen hemisphere = mirrored front × back_gain ...
    antisolar_gain: float = 0.3      # ... × this (and above the frame) when a sun is in view:
                                     # clear sky away from the sun is several times darker than
                                     # around it (CIE clear-sky distribution)
    tint_trust: float = 0.5          # share of the grey-world tint credited to the light
    min_sky_fraction: float = 0.5    # clear sky in the top third that implies a hidden sun
    clear_sky_blueness: float = 0.4  # (B − R) / B of a clear daylight sky (linear; grey ≈ 0)
    sky_min_level: float = 0.25      # a sky lit by day is at least this × the photo's median
    blue_clipped_sky_share: float = 0.1  # clear sky clipped in blue alone over this share of
                                     # the frame (a photo exposed brighter than metered) is
                                     # restored and fitted as sky; less is left out as unknown
    sky_blue_to_green: float = 2.0   # a clear sky's linear B / G when the photo shows no
                                     # unclipped clear sky to measure it (renders: 1.9–2.5)
    min_white_core: float = 0.1      # share of a sun's blob clipped in all three channels
    low_sun_elevation_deg: float = 15.0  # a sun at most this high is reddened enough to clip
                                     # in red alone (sunset, sunrise) ...
    max_pitch_deg: float = 10.0      # ... and stands above the horizon of a camera tilted up
                                     # at most this much
    daylight_blueness: float = 0.2   # (B − R) / B of a bluish pixel (half a clear sky's)
    min_daylight_share: float = 0.05  # bluish share of a photo that shows daylight sky
    min_open_sky: float = 0.35       # share of smooth (sky) pixels around a sun, 1/10 frame
    glare_level: float = 0.5         # median luminance around a blob that marks it as a sun
    min_key_share: float = 0.5       # a visible blob is the key only if its irradiance is at
                                     # least this × the ambient facing it (else stars, specks)
    blur_deg: float = 20.0           # blur of everything outside the frame
    clip_level: float = 0.97         # linear value at or above which a channel counts as clipped
    exposure_key: float = 0.18       # auto-exposure's mid-grey for the log-average luminance
    remeter_stops: float = 1.0       # a photo whose log-average (clipped pixels at the clip
                                     # level) is more than this under mid-grey is re-exposed
                                     # to it (metered views: at most 0.8 under, 400+ measured)
    metering_tolerance_stops: float = 2.0  # a metered photo's unclipped log-average is at most
                                     # this many stops below it (exposure compensation, a
                                     # bright area pulling the meter); darker: exposed for the
                                     # highlights
    min_clipped_share: float = 0.01  # clipped share of the frame that constrains its level
    max_clip_gain: float = 8.0       # clipped diffuse areas at most this bright (3 stops)
    diffuse_clip_gain: float = 2.0   # large clipped areas (sky, windows) are this much brighter
    compact_max_sr: float = 0.4      # a clipped blob not running off the top or bottom whose
                                     # white core is smaller than this (sr) may be a sun
    compact_gain: float = 25.0       # a clipped compact source is this much brighter than 1
    key_to_ambient: float = 4.0      # at most this × the ambient irradiance facing it (a sun ~3)
    scene_albedo: float = 0.18       # mean reflectance outdoors (the 18 % grey rule)
    min_surface_share: float = 0.25  # surfaces (not sky, not clipped) needed in the frame for
                                     # their brightness to tell the light (a sky photo cannot)
    indoor_albedo: float = 0.35      # mean reflectance of rooms (IES: walls 0.5, floors 0.2-0.3)
    overhead_size_deg: float = 30.0  # angular radius of the assumed overhead light (soft)
    brightness_tolerance: float = 1.5  # ambient may exceed the brightness-implied light by this
    min_unseen_gain: float = 0.2     # before the unseen part is dimmed, at most down to this
    hidden_key_elevation_deg: float = 20.0  # a sun out of view: behind the camera, this high
                                     # (low: a sun that lights faces, morning or evening)
    key_size_deg: float = 3.0        # angular radius of the key disc splatted into the panorama
    min_open_share: float = 0.1      # open sky/ceiling in the top third of the frame needed to
                                     # fill the view above the frame with it toward the zenith
    nadir_ground_ratio: float = 0.4  # ground straight down / ground at the frame's bottom edge
                                     # (HDR panoramas of grass, soil, floors: 0.3-0.7)
    turbidity_beta: float = 0.05     # Ångström aerosol turbidity of a clear sky (0.02-0.2)
    min_colour_elevation_deg: float = 5.0  # a sun's elevation read from the frame assumes a
                                     # level camera (± a few degrees) and extinction grows
                                     # steeply near the horizon: colour it at least this high
    hdr_min_peak: float = 1.5        # a photo brighter than this somewhere is HDR (scene-
                                     # referred); a float layer's processing overshoots stay
                                     # below it
    min_sky_pixels: int = 32         # clear-sky pixels needed to fit the CIE clear sky ...
    max_sky_fit_error: float = 0.05  # ... and the fit's log variance to trust (a clear sky)
    sky_fit_margin: float = 0.85     # ... and at most this × the variance left by a sun
                                     # straight behind the camera, to move the sun from there
    min_sky_explained: float = 0.7   # share of the sky's log variance the fit must explain to
                                     # place and size the sun (broken cloud explains little)
    min_open_sky_explained: float = 0.5  # ... in a photo mostly (min_sky_fraction) of clear sky,
                                     # which has no cloud or haze band to mimic a sun
    sunlit_ground_ratio: float = 0.2  # sunlit ground is brighter than this × the sky's radiance
                                     # (ground of scene_albedo under the sky alone: ≈ 0.18)
    sun_to_sky_ratio: float = 25.0   # direct sun irradiance / clear-sky radiance (sr): 50-100
                                     # klx over 2-8 kcd/m² of blue sky gives 10-50


@dataclass
class Environment:
    """Lighting of a scene, camera frame, linear units of the photo (or the HDRI).

    pano: h×2h×3 float32, the full environment (key light included).
    sh: (9, 3) float32 radiance SH of ``pano``.
    key_direction: (3,) unit vector toward the dominant compact light ((0,1,0) if none).
    key_irradiance: (3,) irradiance that light alone gives a surface facing it (0 if none).
    key_size_deg: angular radius of the key (softness of its shadows).
    sh_ambient: (9, 3) SH of the environment without the key (sh = sh_ambient + the key's SH:
    a distant light's for an estimate, its real region's for an HDRI).
    dominant_direction / dominant_colour: from the luminance L1 vector of ``sh``; the colour is
    the RGB irradiance of ``sh`` on a surface facing that direction, divided by π (a white
    Lambertian surface's radiance).
    source: "estimated" or "hdri".
    notes: how the estimate was made (one line per rule that fired), for `relight light`.
    advice: what the estimate had to guess that the user can set (a hidden sun's azimuth),
    one line each, for the warnings a host shows.
    ambient_share: h×2h×3 float32 in [0, 1], the share of each ``pano`` texel that is not the
    key (1 where there is no key); ``ambient_pano`` = pano × ambient_share.

    ``ambient_pano`` (a property, h×2h×3 float32) is the panorama with exactly the key's energy
    taken out: its SH is ``sh_ambient`` and ``pano − ambient_pano`` integrates to
    ``key_irradiance`` (the light maps prefilter it for the diffuse shading, to which the key is
    added apart, with its shadows). Kept as a share so that scaling ``pano`` (exposure matching
    with ``dataclasses.replace``) scales it too.
    """

    pano: np.ndarray
    sh: np.ndarray
    key_direction: np.ndarray
    key_irradiance: np.ndarray
    key_size_deg: float
    sh_ambient: np.ndarray
    dominant_direction: np.ndarray
    dominant_colour: np.ndarray
    source: str = "estimated"
    notes: list[str] = field(default_factory=list)
    ambient_share: np.ndarray | None = None
    advice: list[str] = field(default_factory=list)

    @property
    def ambient_pano(self) -> np.ndarray:
        """h×2h×3 float32: the panorama without its key light (see the class doc)."""
        if self.ambient_share is None or self.ambient_share.shape != self.pano.shape:
            return self.pano
        return (self.pano * self.ambient_share).astype(np.float32)


def _share(part: np.ndarray, whole: np.ndarray) -> np.ndarray:
    """part / whole per texel and channel, in [0, 1]; 1 where ``whole`` is dark."""
    safe = whole > 1e-12
    share = np.where(safe, part / np.where(safe, whole, 1.0), 1.0)
    return np.clip(share, 0.0, 1.0).astype(np.float32)


# ---------------------------------------------------------------- assembling an Environment

def _splat_key(pano: np.ndarray, direction: np.ndarray, irradiance: np.ndarray,
               size_deg: float) -> np.ndarray:
    """Add a small disc (Gaussian profile) of total flux ``irradiance`` to a panorama."""
    if not np.any(irradiance > 0):
        return pano
    height = pano.shape[0]
    dirs = envmap.direction_grid(height).astype(np.float64)
    angle = np.arccos(np.clip(dirs @ direction, -1.0, 1.0))
    # at least ~1.5 pixels wide so the disc survives the panorama's sampling
    sigma = max(math.radians(size_deg), 1.5 * math.pi / height)
    profile = np.exp(-0.5 * (angle / sigma) ** 2)
    profile /= np.sum(profile * envmap.solid_angles(height))
    return (pano + profile[..., None] * irradiance[None, None, :]).astype(np.float32)


def _dominant(sh: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    direction = envmap.dominant_direction(sh)
    colour = envmap.irradiance_sh(sh, direction[None])[0] / math.pi
    return direction, np.maximum(colour, 0.0).astype(np.float32)


def _assemble(ambient_pano: np.ndarray, key_direction: np.ndarray, key_irradiance: np.ndarray,
              key_size_deg: float, source: str, notes: list[str],
              full_pano: np.ndarray | None = None) -> Environment:
    """Environment from ambient + key. Without ``full_pano`` the key is a small disc splatted
    into the panorama (SH of a distant light); with it (HDRI) the real panorama is kept."""
    key_direction = np.asarray(key_direction, np.float64)
    key_direction = key_direction / max(np.linalg.norm(key_direction), 1e-12)
    key_irradiance = np.maximum(np.asarray(key_irradiance, np.float64), 0.0)
    sh_ambient = envmap.project_sh(ambient_pano)
    if full_pano is None:
        pano = _splat_key(ambient_pano, key_direction, key_irradiance, key_size_deg)
        # the key's own SH: a sun is a point for the SH, but a broad key (an overhead sky,
        # a ceiling) spreads its light, which weakens its directional bands
        key_alone = _splat_key(np.zeros_like(ambient_pano), key_direction, key_irradiance,
                               key_size_deg)
        sh = sh_ambient + envmap.project_sh(key_alone)
    else:
        pano, sh = full_pano, envmap.project_sh(full_pano)
    direction, colour = _dominant(sh)
    pano = pano.astype(np.float32)
    return Environment(pano=pano, sh=sh.astype(np.float32),
                       key_direction=key_direction.astype(np.float32),
                       key_irradiance=key_irradiance.astype(np.float32),
                       key_size_deg=float(key_size_deg), sh_ambient=sh_ambient,
                       dominant_direction=direction, dominant_colour=colour, source=source,
                       notes=notes, ambient_share=_share(ambient_pano, pano))


def scaled(env: Environment, gain: float) -> Environment:
    """The same environment ``gain`` times brighter (another exposure of the same scene)."""
    return replace(env, pano=env.pano * gain, sh=env.sh * gain,
                   key_irradiance=env.key_irradiance * gain, sh_ambient=env.sh_ambient * gain,
                   dominant_colour=env.dominant_colour * gain)


def rotated(env: Environment, yaw_deg: float) -> Environment:
    """The same environment turned by ``yaw_deg`` about the vertical axis (envmap sense)."""
    if yaw_deg % 360 == 0:
        return env
    turn = envmap.rotation_y(yaw_deg)
    sh = envmap.rotate_sh(env.sh, yaw_deg)
    direction, colour = _dominant(sh)
    pano = envmap.rotate_pano(env.pano, yaw_deg)
    share = None
    if env.ambient_share is not None:
        share = _share(envmap.rotate_pano(env.ambient_pano, yaw_deg), pano)
    return replace(env, pano=pano, sh=sh, ambient_share=share,
                   sh_ambient=envmap.rotate_sh(env.sh_ambient, yaw_deg),
                   key_direction=(turn @ env.key_direction).astype(np.float32),
                   dominant_direction=direction, dominant_colour=colour)


# ---------------------------------------------------------------- HDRI: find the key, no estimate

def _find_compact_source(pano: np.ndarray, max_sr: float = 0.2, min_share: float = 0.15):
    """Split an HDR panorama into (ambient pano, key direction, key irradiance, size in degrees).

    The key is the connected region around the brightest pixel that is brighter than 10× the
    panorama's median luminance (and 5 % of the peak), only if it is compact (< max_sr) and
    carries at least
    ``min_share`` of the panorama's flux; otherwise there is no key (irradiance 0).
    """
    none = (pano, np.array([0.0, 1.0, 0.0]), np.zeros(3), 10.0)
    height = pano.shape[0]
    lum = envmap.luminance(pano)
    sa = envmap.solid_angles(height)
    total_flux = float(np.sum(lum * sa))
    if not np.isfinite(total_flux) or total_flux <= 0:
        return none
    peak_row, peak_col = np.unravel_index(int(np.argmax(lum)), lum.shape)
    # the panorama wraps around: centre the peak so its region never crosses the seam
    shift = pano.shape[1] // 2 - int(peak_col)
    pano_c, lum_c = np.roll(pano, shift, axis=1), np.roll(lum, shift, axis=1)
    threshold = max(10.0 * float(np.median(lum)), 0.05 * float(lum.max()))
    _, labels = cv2.connectedComponents((lum_c > threshold).astype(np.uint8), connectivity=8)
    region = labels == labels[peak_row, pano.shape[1] // 2]
    region_sr = float(np.sum(sa[region]))
    excess = np.clip(pano_c - threshold, 0.0, None) * region[..., None]
    key_irradiance = np.einsum("hw,hwc->c", sa, excess)
    if region_sr > max_sr or float(key_irradiance @ envmap.LUMINANCE) < min_share * total_flux:
        return none
    dirs = np.roll(envmap.direction_grid(height).astype(np.float64), shift, axis=1)
    weights = (envmap.luminance(excess) * sa)[..., None]
    direction = np.sum(dirs * weights, axis=(0, 1))
    direction /= max(np.linalg.norm(direction), 1e-12)
    ambient = pano_c - excess
    ambient = np.roll(ambient, -shift, axis=1)
    size_deg = math.degrees(math.sqrt(region_sr / math.pi))
    return ambient.astype(np.float32), direction, key_irradiance, size_deg


def environment_from_hdri(pano: np.ndarray, rotate_deg: float = 0.0) -> Environment:
    """HDR panorama h×2h×3 linear → Environment (its own units; no estimation).

    The compact brightest source (sun, lamp), if any, is separated as the key light.
    """
    pano = np.asarray(pano, np.float32)
    if pano.ndim != 3 or pano.shape[2] < 3 or abs(pano.shape[1] - 2 * pano.shape[0]) > 1:
        raise ValueError(f"an HDR panorama must be h×2h (equirectangular), got {pano.shape[:2]}")
    pano = io.finite_pixels(pano[..., :3])  # an overflowed sun stays the brightest light
    if pano.shape[1] != 2 * pano.shape[0]:
        pano = cv2.resize(pano, (2 * pano.shape[0], pano.shape[0]), interpolation=cv2.INTER_AREA)
    # its own copy: a small panorama would otherwise be the caller's array, shared by the result
    small = envmap.downsample_pano(pano, PANO_HEIGHT).copy()
    ambient, direction, irradiance, size_deg = _find_compact_source(small)
    env = _assemble(ambient, direction, irradiance, size_deg, "hdri", [], full_pano=small)
    return rotated(env, rotate_deg)


# ---------------------------------------------------------------- photo → environment (estimate)

_PHOTO_WIDTH = 256  # the estimate needs the photo's layout, not its detail


def _prepare_photo(background: np.ndarray, coverage: np.ndarray | None = None) -> np.ndarray:
    """The photo (H, W, 3) at the estimate's size, finite, ≥ 0; where ``coverage`` (H, W) in
    [0, 1], the layer's alpha, says it is transparent, filled from what is visible."""
    photo = np.asarray(background)
    if photo.ndim == 2:
        photo = np.repeat(photo[..., None], 3, axis=2)
    if photo.ndim != 3 or photo.shape[2] < 3 or min(photo.shape[:2]) < 2:
        raise ValueError(f"a background must be an H×W×3 image, got shape {photo.shape}")
    photo = np.ascontiguousarray(photo[..., :3], dtype=np.float32)
    cover = None
    if coverage is not None and float(np.min(coverage)) < 0.999:
        cover = np.clip(np.nan_to_num(np.asarray(coverage, np.float32)), 0.0, 1.0)
        photo = photo * cover[..., None]  # premultiplied: hidden colours never mix in
    height, width = photo.shape[:2]
    if width > _PHOTO_WIDTH:  # shrink first: cleaning a 12-megapixel float image is slow
        size = (_PHOTO_WIDTH, max(2, round(height * _PHOTO_WIDTH / width)))
        photo = cv2.resize(photo, size, interpolation=cv2.INTER_AREA)
        if cover is not None:
            cover = cv2.resize(cover, size, interpolation=cv2.INTER_AREA)
    photo = np.clip(np.nan_to_num(photo, nan=0.0, posinf=1.0, neginf=0.0), 0.0, None)
    return photo if cover is None else _filled(photo, cover)


def _filled(premultiplied: np.ndarray, cover: np.ndarray) -> np.ndarray:
    """A photo's transparent part (``cover`` < 1) continued from its visible part: each pixel
    gets the covered colours around it (colour and coverage blurred together, at the smallest
    scale that reaches enough of them), its own where covered. A transparent sky read as the
    black it is stored as made a scene's light 75× too dim, coming from below."""
    fill = np.zeros_like(premultiplied)
    found = np.zeros(cover.shape, bool)
    sigma = 1.0
    while not found.all() and sigma < 2 * max(cover.shape):
        blurred = cv2.GaussianBlur(premultiplied, (0, 0), sigma)
        weight = cv2.GaussianBlur(cover, (0, 0), sigma)
        reached = ~found & (weight > 0.05)
        fill[reached] = blurred[reached] / weight[reached, None]
        found |= reached
        sigma *= 2.0
    if not found.all():
        fill[~found] = premultiplied.sum(axis=(0, 1)) / max(float(cover.sum()), 1e-6)
    return (premultiplied + (1.0 - cover[..., None]) * fill).astype(np.float32)


@dataclass
class _Wrap:
    """Angular mapping of the photo onto the sphere (camera frame)."""

    width: int
    height: int
    half_h: float  # half the horizontal angle the photo covers on the sphere (radians)
    half_v: float

    @classmethod
    def for_photo(cls, photo: np.ndarray, params: EstimatorParams) -> _Wrap:
        height, width = photo.shape[:2]
        half_h = min(math.radians(params.hfov_deg) * params.stretch / 2, math.pi / 2)
        half_v = half_h * height / width
        return cls(width, height, half_h, min(half_v, math.pi / 2))

    def pixel_of(self, dirs: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Photo (col, row) for directions, mirrored into the front for the back hemisphere,
        and a mask of the directions the photo really shows."""
        azimuth = np.arctan2(dirs[..., 0], -dirs[..., 2])
        elevation = np.arcsin(np.clip(dirs[..., 1], -1, 1))
        back = np.abs(azimuth) > math.pi / 2
        azimuth = np.where(back, np.sign(azimuth) * math.pi - azimuth, azimuth)
        col = (0.5 + azimuth / (2 * self.half_h)) * self.width - 0.5
        row = (0.5 - elevation / (2 * self.half_v)) * self.height - 0.5
        seen = ~back & (np.abs(azimuth) <= self.half_h) & (np.abs(elevation) <= self.half_v)
        return col.astype(np.float32), row.astype(np.float32), seen

    def direction_of(self, col: np.ndarray, row: np.ndarray) -> np.ndarray:
        azimuth = ((np.asarray(col) + 0.5) / self.width - 0.5) * 2 * self.half_h
        elevation = (0.5 - (np.asarray(row) + 0.5) / self.height) * 2 * self.half_v
        return np.stack([np.sin(azimuth) * np.cos(elevation), np.sin(elevation),
                         -np.cos(azimuth) * np.cos(elevation)], -1)

    def pixel_solid_angle(self) -> float:
        return (2 * self.half_h / self.width) * (2 * self.half_v / self.height)


def _blur_pano(pano: np.ndarray, sigma_deg: float) -> np.ndarray:
    """Gaussian blur of a panorama, wrapping horizontally (latitude distortion ignored)."""
    height, width = pano.shape[:2]
    sigma = sigma_deg / 180.0 * height
    pad = int(3 * sigma) + 1
    padded = np.concatenate([pano[:, -pad:], pano, pano[:, :pad]], axis=1)
    blurred = cv2.GaussianBlur(padded, (0, 0), sigmaX=sigma, sigmaY=sigma,
                               borderType=cv2.BORDER_REPLICATE)
    return blurred[:, pad:pad + width]


def _smooth(lum: np.ndarray) -> np.ndarray:
    """Where the log luminance varies slowly (open sky, plain ceilings): |∇² log L| < 0.15."""
    return np.abs(cv2.Laplacian(np.log(lum + 1e-3), cv2.CV_32F, ksize=3)) < 0.15


def _blueness(photo: np.ndarray) -> np.ndarray:
    """(B − R) / B per pixel, linear: ~0.4 and up for a clear sky, ~0 for grey."""
    return (photo[..., 2] - photo[..., 0]) / (photo[..., 2] + 1e-3)


def _direction(azimuth: float, elevation: float) -> np.ndarray:
    """Unit camera-frame direction: azimuth from straight ahead (−z) toward +x, elevation up."""
    return np.array([math.sin(azimuth) * math.cos(elevation), math.sin(elevation),
                     -math.cos(azimuth) * math.cos(elevation)])


def _open_above(top_rows: np.ndarray, extended: np.ndarray, elevation: np.ndarray, top: float,
                params: EstimatorParams) -> np.ndarray:
    """Above the frame, the open sky (or ceiling) takes over from the frame's top rows toward the
    zenith: occluders rising from the horizon (buildings, trees, beams) cover less of the view
    the higher one looks. The open part is the bright, smooth region of the top rows that
    touches the frame's top edge; without one (a wall, a canopy) nothing changes."""
    lum = envmap.luminance(top_rows)
    candidates = (_smooth(lum) & (lum >= np.median(lum))).astype(np.uint8)
    _, labels = cv2.connectedComponents(candidates, connectivity=8)
    open_part = np.isin(labels, np.unique(labels[0][labels[0] > 0]))
    if open_part.mean() < params.min_open_share:
        return extended
    open_radiance = top_rows[open_part].mean(axis=0)
    # √ of the way from the frame's top to the zenith: occluders thin out fast with height
    weight = np.sqrt(np.clip((elevation - top) / (math.pi / 2 - top), 0, 1))[..., None]
    return (extended * (1 - weight) + open_radiance * weight).astype(np.float32)


def _remap_mirrored(image: np.ndarray, col: np.ndarray, row: np.ndarray,
                    behind: np.ndarray) -> np.ndarray:
    """``image`` (H×W×3) sampled at (col, row); where ``behind``, from the mean of the image
    and its left-right flip.

    Behind the camera the wrap shows the photo mirrored (Khan et al. 2006), but which side of
    the unseen half holds what the frame's left shows is unknown: the mirror and its flip are
    equally likely, and their mean is the estimate with the least expected error."""
    as_is = cv2.remap(image, col, row, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    symmetric = np.ascontiguousarray(0.5 * (image + image[:, ::-1]))
    averaged = cv2.remap(symmetric, col, row, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return np.where(behind[..., None], averaged, as_is)


def _wrap_photo(photo: np.ndarray, wrap: _Wrap, params: EstimatorParams,
                back_gain: float, overcast: float = 0.0, open_above: bool = True) -> np.ndarray:
    """Khan-style environment from the photo: front = photo, back = its mirror (made
    left-right symmetric), outside blurred."""
    dirs = envmap.direction_grid(PANO_HEIGHT)
    col, row, seen = wrap.pixel_of(dirs)
    behind = dirs[..., 2] > 0
    sharp = _remap_mirrored(photo, col, row, behind)
    # beyond the top and bottom of the frame: the mean of the photo's top / bottom third per
    # column (the unseen ceiling or sky is like the seen upper part, lamps included, not like
    # its last row)
    third = max(1, photo.shape[0] // 3)
    elevation = np.arcsin(np.clip(dirs[..., 1], -1, 1))
    top = min(wrap.half_v, math.pi / 2 - 1e-3)
    for rows, outside in ((photo[:third], elevation > top), (photo[-third:], elevation < -top)):
        strip = cv2.GaussianBlur(rows.mean(axis=0, keepdims=True), (0, 0), sigmaX=photo.shape[1]
                                 / 8, borderType=cv2.BORDER_REPLICATE)
        extended = _remap_mirrored(strip, col, np.zeros_like(row), behind)
        if open_above and bool(outside[0, 0]):
            extended = _open_above(rows, extended, elevation, top, params)
        if bool(outside[-1, 0]):
            # the ground seen from above is darker than at the grazing angles the photo
            # shows it (shadowed gaps between blades and stones; rough surfaces are not
            # Lambertian): fade toward the nadir
            depth = np.clip((np.sin(-elevation) - math.sin(top)) / (1 - math.sin(top)), 0, 1)
            fade = 1 - (1 - params.nadir_ground_ratio) * depth
            extended = extended * fade.astype(np.float32)[..., None]
        sharp = np.where(outside[..., None], extended, sharp)
    if overcast > 0:
        # an overcast sky (and, alike, a room's ceiling light) brightens toward the zenith:
        # CIE standard overcast sky, L(e) ∝ 1 + 2 sin(elevation), zenith = 3 × horizon
        rise = (1 + 2 * np.sin(np.maximum(elevation, top))) / (1 + 2 * math.sin(top))
        sharp = sharp * (1 + overcast * (rise - 1))[..., None]
    unseen = (dirs[..., 2] > 0) | (elevation > top)
    sharp = np.where(unseen[..., None], sharp * back_gain, sharp)
    blurred = _blur_pano(sharp, params.blur_deg)
    # feather the frame's edge so no seam enters the specular maps
    weight = cv2.GaussianBlur(seen.astype(np.float32), (0, 0), 2.0)[..., None]
    return (weight * sharp + (1 - weight) * blurred).astype(np.float32)


def metering_gain(luminance: np.ndarray, exposure_key: float = 0.18,
                  units_free: bool = False) -> float:
    """The gain that puts a photo's log-average ``luminance`` (any shape, linear) at
    ``exposure_key``, as a camera's auto-exposure does. ``units_free``: the photo is HDR, in
    arbitrary units; its median is put at mid-grey first, so the log-average's floor (1e-4,
    an 8-bit photo's black) sits where it does in a recorded photo."""
    scale = 1.0
    median = float(np.median(luminance))
    if units_free and median > 0.0:
        scale = exposure_key / median
    log_mean = float(np.mean(np.log(luminance * scale + 1e-4)))
    return scale * exposure_key / math.exp(log_mean)


def _as_metered(photo: np.ndarray, params: EstimatorParams
                ) -> tuple[np.ndarray, float, bool]:
    """(photo, gain, whether it is HDR): a photo far darker than a camera metering to
    mid-grey would take it (exposed for its highlights: a studio, a sky kept from clipping) is
    first brought to that exposure and clipped, because every rule below reads a photo as such
    a camera takes it. What the darker exposure shows beyond that (how bright the unclipped
    lamps really are) is given up; the gain scales the estimate back to the photo's units.

    So is an HDR photo (an EXR plate, a float layer: brighter than ``hdr_min_peak`` somewhere,
    which no display-referred photo is), whatever its units. Read as it was, its unclipped sun
    and windows were taken for clipped ones and boosted again: the shared backgrounds rendered
    unclipped lit a face 4–19× too bright with a sun in view (mean relative RMSE 1.91, against
    0.38 for the same views recorded in 8 bits). Keeping the true values of what clips
    (the sun's flux, the windows) does not help either, 0.39 / 0.230 scale-free against
    0.38 / 0.216: the rules' other guesses were measured on recorded photos."""
    is_hdr = float(photo.max()) > params.hdr_min_peak
    gain = metering_gain(envmap.luminance(photo), params.exposure_key, units_free=is_hdr)
    if gain <= 2.0 ** params.remeter_stops and not is_hdr:
        return photo, 1.0, False
    return np.minimum(photo * gain, 1.0).astype(np.float32), gain, is_hdr


def _clip_gain(photo: np.ndarray, clipped: np.ndarray, params: EstimatorParams) -> float:
    """How much brighter than the clip level the clipped pixels really are.

    Auto-exposure puts the scene's log-average luminance at mid-grey (``exposure_key``); what
    the clipped pixels lack of that average is their true (geometric-mean) level. Only a large
    enough clipped share constrains it; it is at least the modest default (white clipping says
    "well above 1") and at most ``max_clip_gain``. A photo whose unclipped part alone is far
    darker than mid-grey was not metered so but exposed for its highlights (a studio, a night
    scene, a photographer protecting a sky): then the shortfall says nothing about them, and
    the default holds.
    """
    share = float(clipped.mean())
    if share < params.min_clipped_share:
        return params.diffuse_clip_gain
    logs = np.log(envmap.luminance(photo) + 1e-4)
    unclipped_log_mean = float(logs[~clipped].mean()) if share < 1.0 else 0.0
    if unclipped_log_mean < math.log(params.exposure_key) - \
            params.metering_tolerance_stops * math.log(2.0):
        return params.diffuse_clip_gain
    level = (logs.size * math.log(params.exposure_key) - float(logs[~clipped].sum())) / \
        float(clipped.sum())
    return float(np.clip(math.exp(level), params.diffuse_clip_gain, params.max_clip_gain))


def _above_horizon(mask: np.ndarray) -> np.ndarray:
    """``mask`` (H, W bool) without its pixels below the horizon of a level camera (the lower
    half). Clipped pixels there are lit surfaces (a sunlit patch of floor or lawn, a white
    bed, a backdrop), not sources like the sky, a window or a lamp above it: they pass on
    light that comes from above, so boosting them past the clip level would make the light
    come from below. Measured on unseen panoramas (indoors, studios, sun patches), see
    docs/lighting-eval.md."""
    above = mask.copy()
    above[mask.shape[0] // 2:] = False
    return above


def _tint_clipped(ambient_photo: np.ndarray, white: np.ndarray, clipped: np.ndarray,
                  labels: np.ndarray, params: EstimatorParams) -> None:
    """Give white-clipped areas (in place) the hue of the unclipped pixels around them,
    halfway back to white (``tint_trust``), at their luminance.

    Clipping turns a dawn glow or a lamp-lit window white, but its colour survives in its
    fringe, where no channel clipped; the fringe is partly the surfaces' own colour too.
    """
    if not white.any():
        return
    radius = max(1, white.shape[1] // 32)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
    # each unclipped pixel within the radius of a blob counts toward that blob's fringe (the
    # highest label where two are that close: one pass however many specks a night has)
    nearest = cv2.dilate(labels.astype(np.float32), kernel).astype(np.int64)
    fringe = ~clipped & (nearest > 0)
    owner, values = nearest[fringe], ambient_photo[fringe]
    count = int(labels.max()) + 1
    pixels = np.bincount(owner, minlength=count).astype(np.float64)
    sums = np.stack([np.bincount(owner, weights=values[:, c], minlength=count)
                     for c in range(3)], -1)
    colour = sums / np.maximum(pixels, 1.0)[:, None]
    lum = colour @ envmap.LUMINANCE
    chroma = np.ones((count, 3))
    known = lum > 1e-6
    chroma[known] = (1 - params.tint_trust) + params.tint_trust * colour[known] / lum[known, None]
    chroma /= (chroma @ envmap.LUMINANCE)[:, None]
    ambient_photo[white] = envmap.luminance(ambient_photo[white])[:, None] * \
        chroma[labels[white]].astype(np.float32)


def _clipped_components(photo: np.ndarray, params: EstimatorParams):
    """Clipped pixels (any channel) and their blobs: labels, areas, whether inside the frame."""
    clipped = (photo.max(axis=2) >= params.clip_level).astype(np.uint8)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(clipped, connectivity=8)
    stats = stats[1:]
    height = clipped.shape[0]
    y = stats[:, cv2.CC_STAT_TOP]
    # a blob that runs off the top or bottom is sky, ceiling light or floor glare, not a source
    # seen whole; one cut by a side is still a sun or lamp at the edge of the view
    inside = (y > 0) & (y + stats[:, cv2.CC_STAT_HEIGHT] < height)
    # ... but one cut by the top and far narrower than the frame may be a sun at its edge, and
    # one cut by the top and one side, narrower than half the frame, a sun past that corner
    inside |= (y + stats[:, cv2.CC_STAT_HEIGHT] < height) & \
        (stats[:, cv2.CC_STAT_WIDTH] < clipped.shape[1] // 4)
    x, w = stats[:, cv2.CC_STAT_LEFT], stats[:, cv2.CC_STAT_WIDTH]
    corner = (y == 0) & ((x == 0) ^ (x + w == clipped.shape[1])) & (w < clipped.shape[1] // 2)
    inside |= corner & (y + stats[:, cv2.CC_STAT_HEIGHT] < height)
    return clipped.astype(bool), labels, stats[:, cv2.CC_STAT_AREA], inside


def _white_core_areas(white: np.ndarray, labels: np.ndarray, count: int) -> np.ndarray:
    """Pixels of each clipped blob (labels 1..count) that ``white`` (H, W) bool marks as
    clipped in every channel."""
    return np.bincount(labels[white], minlength=count + 1)[1:count + 1]


def _restore_blue_clipped_sky(photo: np.ndarray,
                              params: EstimatorParams) -> tuple[np.ndarray, np.ndarray]:
    """Photo H×W×3 float32 linear → (photo with the blue of blue-clipped sky restored, mask of
    the restored pixels H×W bool). A photo exposed brighter than metered clips a clear sky's
    blue first; red and green still hold its gradient. Blue is restored as green × the B / G
    of the photo's unclipped clear sky, so the sky fit sees the sky, not a hole in it."""
    red, green, blue = photo[..., 0], photo[..., 1], photo[..., 2]
    clip = params.clip_level
    blue_only = (blue >= clip) & (green < clip) & (red < clip) & \
        (1.0 - red / clip >= params.clear_sky_blueness)
    if blue_only.mean() < params.blue_clipped_sky_share:
        return photo, np.zeros_like(blue_only)
    clean_sky = (blue < clip) & (_blueness(photo) >= params.clear_sky_blueness) & \
        (green > 0.05)
    ratio = float(np.median(blue[clean_sky] / green[clean_sky])) \
        if clean_sky.sum() >= 100 else params.sky_blue_to_green
    restored = photo.copy()
    restored[..., 2] = np.where(blue_only, np.maximum(blue, green * max(ratio, 1.0)), blue)
    return restored, blue_only


def _clear_sky_mask(photo: np.ndarray, clipped: np.ndarray, params: EstimatorParams) -> np.ndarray:
    """Pixels that look like clear daylight sky: smooth, not dark, and clearly blue (Rayleigh
    scattering makes a clear sky's linear red at most ~0.6 × its blue; overcast, haze, night
    skies and tinted glass are near grey)."""
    lum = envmap.luminance(photo)
    not_dark = lum > params.sky_min_level * float(np.median(lum))
    return (_blueness(photo) >= params.clear_sky_blueness) & _smooth(lum) & not_dark & ~clipped


def _ground_below_horizon(photo: np.ndarray, sky: np.ndarray, params: EstimatorParams) -> None:
    """Sky is never below the horizon. The wrap puts the photo's lower half there; when that
    half is mostly clear sky the camera looks up, and what lies below is unseen ground, lit by
    the sky: radiance ρ·E/π ≈ ρ × the sky's mean radiance. In place, on ``photo``."""
    lower = slice(photo.shape[0] // 2, None)
    if not np.any(sky) or float(sky[lower].mean()) < params.min_sky_fraction:
        return
    ground = params.scene_albedo * photo[sky].mean(axis=0)
    photo[lower][sky[lower]] = ground


def _shows_daylight_sky(photo: np.ndarray, params: EstimatorParams) -> bool:
    return float(np.mean(_blueness(photo) >= params.daylight_blueness)) >= \
        params.min_daylight_share


def _is_sun_like(photo: np.ndarray, mask: np.ndarray, clipped: np.ndarray,
                 params: EstimatorParams) -> bool:
    """A source far brighter than the clip level saturates every channel in its core and
    blooms: the pixels just around it are bright too (a lamp with a hard edge or a coloured
    glow clipped in one channel does neither; a sun the air has reddened near the horizon may
    clip in red alone, but only above the horizon). And a sun sits in open sky, whose brightness
    varies slowly around it; a lamp is set in a ceiling's structure (beams, fittings).
    And a sun shines by day: some of the sky in view is blue (Rayleigh), even in a hazy
    sunrise; a room or a night scene shows none."""
    if not _shows_daylight_sky(photo, params):
        return False
    white = float(np.mean(photo[mask].min(axis=1) >= params.clip_level))
    if white < params.min_white_core and not _low_red_sun(photo, mask, params):
        return False
    ring = cv2.dilate(mask.astype(np.uint8), np.ones((11, 11), np.uint8)).astype(bool) & ~mask
    if not ring.any() or float(np.median(envmap.luminance(photo[ring]))) < params.glare_level:
        return False
    around = cv2.dilate(mask.astype(np.uint8), np.ones((25, 25), np.uint8)).astype(bool)
    around &= ~clipped
    smooth = _smooth(envmap.luminance(photo))
    return bool(around.any()) and float(smooth[around].mean()) >= params.min_open_sky


def _low_red_sun(photo: np.ndarray, mask: np.ndarray, params: EstimatorParams) -> bool:
    """Is the blob ``mask`` a sun low enough to clip in red alone, where such a sun can be?"""
    return _reddened_like_a_low_sun(photo[mask], params) and \
        _in_sky_above_horizon(photo, mask, params)


def _reddened_like_a_low_sun(pixels: np.ndarray, params: EstimatorParams) -> bool:
    """Do these pixels (N×3 linear) show a sun near the horizon, whose light the atmosphere has
    reddened so much that it clips in red alone: red clipped in most of them, and blue under
    what sunlight keeps of it at ``low_sun_elevation_deg`` (relative to red)?"""
    if len(pixels) == 0:
        return False
    red_clipped = float(np.mean(pixels[:, 0] >= params.clip_level))
    colour = pixels.mean(axis=0)
    low_sun = sunlight_colour(math.radians(params.low_sun_elevation_deg), params.turbidity_beta)
    return red_clipped >= 0.5 and colour[2] / max(colour[0], 1e-6) <= low_sun[2] / low_sun[0]


def _in_sky_above_horizon(photo: np.ndarray, mask: np.ndarray, params: EstimatorParams) -> bool:
    """Does the blob sit where a low sun can: its centre above where a roughly level camera's
    horizon can be (the middle row, lowered by ``max_pitch_deg`` of upward tilt), under a sky
    brighter than the photo's median (a sunset sky outshines the land it lights; the night
    over a lamp-lit wall does not)?"""
    rows, cols = np.nonzero(mask)
    height, width = mask.shape
    focal = width / 2 / math.tan(math.radians(params.hfov_deg) / 2)
    horizon = height / 2 + focal * math.tan(math.radians(params.max_pitch_deg))
    if float(rows.mean()) > horizon or rows.min() == 0:  # (no sky in view above it)
        return False
    lum = envmap.luminance(photo)
    above = lum[:rows.min(), cols.min():cols.max() + 1]
    return float(np.median(above)) >= float(np.median(lum))


# effective wavelengths (µm) of the linear sRGB primaries' channels
_CHANNEL_WAVELENGTH_UM = np.array([0.612, 0.549, 0.464])


def sunlight_colour(elevation_rad: float, turbidity_beta: float = 0.05) -> np.ndarray:
    """Chromaticity (luminance 1, linear sRGB) of direct sunlight at a given solar elevation.

    The atmosphere's extinction over the air mass the beam crosses: Rayleigh optical depth
    0.0088 λ^-4.05 plus aerosol (Ångström) β λ^-1.3, λ in µm; air mass after Kasten & Young
    (1989). A sun high in a clear sky comes out near white, one 5° above the horizon orange.
    """
    elevation_deg = max(math.degrees(elevation_rad), 0.0)
    air_mass = 1.0 / (math.sin(math.radians(elevation_deg))
                      + 0.50572 * (elevation_deg + 6.07995) ** -1.6364)
    depth = (0.0088 * _CHANNEL_WAVELENGTH_UM ** -4.05
             + turbidity_beta * _CHANNEL_WAVELENGTH_UM ** -1.3)
    transmitted = np.exp(-air_mass * depth)
    return transmitted / float(transmitted @ envmap.LUMINANCE)


def _lum_irradiance(sh: np.ndarray, normal: np.ndarray) -> float:
    return max(float(envmap.irradiance_sh(sh, np.asarray(normal)[None])[0] @ envmap.LUMINANCE),
               0.0)


# what the surfaces in a photo face on average: mostly the ground
_SCENE_NORMAL = np.array([0.0, 1.0, 0.0])


def _scene_irradiance(photo: np.ndarray, not_surface: np.ndarray, albedo: float,
                      params: EstimatorParams) -> float | None:
    """Irradiance the ground in view receives, judged from its brightness.

    Surfaces of mean albedo ρ lit by E have radiance ρE/π, so the typical (median) luminance L
    of the surfaces in the photo's lower half (mostly ground, facing up) says E = π·L/ρ.
    Clipped pixels and sky (``not_surface``) are not surfaces; None when too few are in view
    to tell (a photo of the sky).
    """
    if np.mean(~not_surface) < params.min_surface_share:
        return None
    # the lower half of a level photo is mostly ground, which faces up
    lower = slice(photo.shape[0] // 2, None)
    lum = envmap.luminance(photo[lower])[~not_surface[lower]]
    if lum.size < params.min_surface_share * not_surface[lower].size:
        return None
    return math.pi * float(np.median(lum)) / albedo


def _surface_light_colour(photo: np.ndarray, clipped: np.ndarray,
                          params: EstimatorParams) -> np.ndarray:
    """Chromaticity (luminance 1) of light falling on the scene from outside the frame: the
    grey-world colour of the lower half (lit surfaces, not the sky), halfway back to white
    because the surfaces' own tint (grass, brick) is unknown."""
    lower = photo[photo.shape[0] // 2:][~clipped[photo.shape[0] // 2:]]
    if len(lower) < 4:
        return np.ones(3)
    colour = lower.mean(axis=0).astype(np.float64)
    lum = float(colour @ envmap.LUMINANCE)
    if lum <= 1e-6:
        return np.ones(3)
    colour = (1 - params.tint_trust) + params.tint_trust * colour / lum
    return np.clip(colour / float(colour @ envmap.LUMINANCE), 0.2, 5.0)


def clear_sky_indicatrix(cos_angle: np.ndarray) -> np.ndarray:
    """CIE standard clear sky (ISO 15469, type 12): relative radiance by angle χ from the sun,
    f(χ) = 1 + 10 (e^(−3χ) − e^(−3π/2)) + 0.45 cos²χ: an aureole ~10× the sky 90° away."""
    cos_angle = np.clip(cos_angle, -1.0, 1.0)
    return 1 + 10 * (np.exp(-3 * np.arccos(cos_angle)) - math.exp(-1.5 * math.pi)) \
        + 0.45 * cos_angle ** 2


def clear_sky_gradation(cos_zenith: np.ndarray) -> np.ndarray:
    """CIE clear sky's gradation by zenith angle Z: φ(Z) = 1 − e^(−0.32 / cos Z) (the horizon
    ~3.7× brighter than the zenith, before the sun's indicatrix)."""
    return 1 - np.exp(-0.32 / np.maximum(cos_zenith, 0.01))


def _pinhole_directions(height: int, width: int, hfov_deg: float) -> np.ndarray:
    """H×W×3 camera-frame view directions of a level pinhole photo."""
    half = math.tan(math.radians(hfov_deg) / 2)
    xs = ((np.arange(width) + 0.5) / width * 2 - 1) * half
    ys = (1 - (np.arange(height) + 0.5) / height * 2) * half * height / width
    x, y = np.meshgrid(xs, ys)
    rays = np.stack([x, y, -np.ones_like(x)], -1)
    return rays / np.linalg.norm(rays, axis=-1, keepdims=True)


@dataclass
class _SkyFit:
    """The CIE clear sky fitted to the sky in view (log radiance, up to a scale)."""

    sun: np.ndarray           # unit direction of the sun it implies (camera frame)
    residual: float           # variance of the log residual
    variance: float           # variance of the sky's log radiance (what a flat sky leaves)
    radiance: float           # median luminance of the sky in view (photo units)

    @property
    def explained(self) -> float:
        return 1.0 - self.residual / max(self.variance, 1e-12)


_MAX_FIT_PIXELS = 4096


def _fit_clear_sky_sun(photo: np.ndarray, sky: np.ndarray, elevation: float,
                       params: EstimatorParams, pitch: float = 0.0) -> _SkyFit | None:
    """Where a sun out of view, at ``elevation`` (radians), must be for the clear sky in view
    to look as it does.

    The CIE clear sky's radiance f(χ)·φ(Z) is fitted (in log, up to a scale) to the sky pixels
    over the sun's azimuths outside the frame (Lalonde et al. 2012 fit a sky model so): the
    sky brightens toward the sun and again toward the anti-solar point, darkest 90° away. The
    elevation is not fitted: across a level photo's sky it changes the pattern too little to
    tell. The camera is tilted up by ``pitch`` (radians); the sun returned is in its frame.
    None without enough sky.
    """
    if int(sky.sum()) < params.min_sky_pixels:
        return None
    view = _pinhole_directions(*sky.shape, params.hfov_deg)
    to_level = np.array([[1.0, 0.0, 0.0],
                         [0.0, math.cos(pitch), -math.sin(pitch)],
                         [0.0, math.sin(pitch), math.cos(pitch)]])
    # a regular subset of the sky pixels is plenty for a smooth three-parameter model
    stride = max(1, int(sky.sum()) // _MAX_FIT_PIXELS)
    directions = view[sky][::stride].astype(np.float64) @ to_level.T
    sky_luminance = envmap.luminance(photo[sky][::stride]).astype(np.float64)
    log_sky = np.log(sky_luminance + 1e-4)
    log_gradation = np.log(clear_sky_gradation(directions[:, 1]))
    half_h = math.radians(params.hfov_deg) / 2
    half_v = math.atan(math.tan(half_h) * sky.shape[0] / sky.shape[1])
    best, behind = None, None
    for azimuth_deg in range(0, 360, 5):
        sun = _direction(math.radians(azimuth_deg), elevation)
        if _in_frame(to_level.T @ sun, half_h, half_v):
            continue  # the sun would be in the frame, and seen
        residual = log_sky - np.log(clear_sky_indicatrix(directions @ sun)) - log_gradation
        error = float(np.var(residual))
        if azimuth_deg == 180:
            behind = (sun, error)
        if best is None or error < best[1]:
            best = (sun, error)
    # a sky that says little (no anti-solar brightening, no gradient across) leaves the sun
    # straight behind the camera: move it only for a clearly better fit
    if best is not None and behind is not None and best[1] > params.sky_fit_margin * behind[1]:
        best = behind
    if best is None:
        return None
    return _SkyFit(to_level.T @ best[0], best[1], float(np.var(log_sky)),
                   float(np.median(sky_luminance)))


def _in_frame(direction: np.ndarray, half_h: float, half_v: float) -> bool:
    """Is a camera-frame direction inside a pinhole frame of these half-angles?"""
    if direction[2] >= 0:
        return False
    return abs(direction[0] / -direction[2]) < math.tan(half_h) and \
        abs(direction[1] / -direction[2]) < math.tan(half_v)


def _fit_sky_and_tilt(photo: np.ndarray, sky: np.ndarray, not_surface: np.ndarray,
                      elevation: float, params: EstimatorParams) -> _SkyFit | None:
    """The clear-sky fit of a level camera, or, for a photo mostly of sky (the camera is tilted
    up, by how much it does not show), the best fit over tilts that keep the horizon at or
    below the frame's bottom edge."""
    if not _mostly_sky(not_surface, params):
        return _fit_clear_sky_sun(photo, sky, elevation, params)
    half_v = math.atan(math.tan(math.radians(params.hfov_deg) / 2) * photo.shape[0]
                       / photo.shape[1])
    fits = [_fit_clear_sky_sun(photo, sky, elevation, params, share * half_v)
            for share in (0.0, 0.25, 0.5, 0.75, 1.0)]
    return min((fit for fit in fits if fit is not None), key=lambda fit: fit.residual,
               default=None)


def _mostly_sky(not_surface: np.ndarray, params: EstimatorParams) -> bool:
    return float(np.mean(not_surface)) >= params.min_sky_fraction


def _fit_holds(fit: _SkyFit, not_surface: np.ndarray, params: EstimatorParams) -> bool:
    """Does the clear-sky fit place the sun? A photo mostly of clear sky (no clouds in it, by
    the sky mask) needs the fit only to explain most of its pattern; where the sky is a strip
    above the ground it must fit tightly, because haze and broken cloud there mimic a sun."""
    if _mostly_sky(not_surface, params):
        return fit.explained >= params.min_open_sky_explained
    return fit.residual <= params.max_sky_fit_error and fit.explained >= params.min_sky_explained


def _ground_radiance(photo: np.ndarray, not_surface: np.ndarray,
                     params: EstimatorParams) -> float | None:
    """Typical (median) luminance of the surfaces in the photo's lower half (mostly ground);
    None when fewer than ``min_sky_pixels`` are in view."""
    lower = slice(photo.shape[0] // 2, None)
    ground = ~not_surface[lower]
    if ground.sum() < params.min_sky_pixels:
        return None
    return float(np.median(envmap.luminance(photo[lower][ground])))


def _sunlit(fit: _SkyFit, photo: np.ndarray, not_surface: np.ndarray,
            params: EstimatorParams) -> bool:
    """Is the clear sky in view lit by a sun (not a twilight sky, sun below the horizon)?

    The CIE clear sky must explain most of the sky's brightness pattern, and the ground must
    be sunlit: lit by the sky alone its radiance is ρ × the sky's (ρ ≈ 0.18), and any sun
    above the horizon adds to that, if little when low (one 5° up leaves the ground at about a
    quarter of the sky's radiance). The ground is judged in a photo mostly of sky too: a strip
    of it dark under a twilight sky that fits a clear one tells the sun is down.
    """
    fits = (_fit_holds(fit, not_surface, params) if _mostly_sky(not_surface, params)
            else fit.explained >= params.min_sky_explained)
    if not fits:
        return False
    ground_radiance = _ground_radiance(photo, not_surface, params)
    if ground_radiance is None:
        return True  # no ground in view (a photo of the sky) to say otherwise
    return ground_radiance >= params.sunlit_ground_ratio * fit.radiance


def _sun_elevation_from_ground(photo: np.ndarray, not_surface: np.ndarray, fit: _SkyFit,
                               params: EstimatorParams) -> float | None:
    """How high a hidden sun stands (radians), judged by how bright it makes the ground.

    Ground of albedo ρ under a sun of normal irradiance E_s (``sun_to_sky_ratio`` × the clear
    sky's radiance L_s) at elevation e and under the sky (≈ π·L_s on the horizontal) has
    radiance L_g = ρ (E_s sin e + π L_s) / π, so sin e = π (L_g / ρ − L_s) / E_s: a low sun
    barely lights the ground. At least ``min_colour_elevation_deg``; None when the photo is
    mostly sky (its lower rows are haze, not ground) or shows too little ground.
    """
    ground_radiance = _ground_radiance(photo, not_surface, params)
    if ground_radiance is None or _mostly_sky(not_surface, params):
        return None
    sin_elevation = math.pi * (ground_radiance / params.scene_albedo - fit.radiance) / (
        params.sun_to_sky_ratio * fit.radiance)
    lowest = math.sin(math.radians(params.min_colour_elevation_deg))
    return math.asin(float(np.clip(sin_elevation, lowest, 1.0)))


def _light_outside_frame(photo: np.ndarray, ambient_photo: np.ndarray, clipped: np.ndarray,
                         sky: np.ndarray, colour: np.ndarray, wrap: _Wrap,
                         params: EstimatorParams, notes: list[str], advice: list[str]):
    """No sun in view: (ambient pano, key direction, key size, key strength) from the wrapped
    photo, a hidden sun and/or broad overhead light, and the ground's brightness (step 3)."""
    # the sun is out (not behind clouds) about as surely as the sky above is clear; a
    # clear sky with no sun in view means the sun is behind the photographer
    sun_out = float(np.clip(sky[: max(1, sky.shape[0] // 3)].mean()
                            / params.min_sky_fraction, 0.0, 1.0))
    albedo = sun_out * params.scene_albedo + (1 - sun_out) * params.indoor_albedo
    # unseen sky or ceiling: brighter toward the zenith as far as the sky is clouded
    overcast = 1.0 - sun_out
    ambient_pano = _wrap_photo(ambient_photo, wrap, params, params.back_gain, overcast)
    # the brightness rules below (what is missing, how much to dim) are judged without the
    # open sky above the frame: it is direct evidence of the light overhead, which the
    # ground's guessed albedo (asphalt reflects 5-10 %, a pale floor 50 %) must not cancel
    sh_ambient = envmap.project_sh(_wrap_photo(ambient_photo, wrap, params, params.back_gain,
                                               overcast, open_above=False))
    # the light must make the scene in view as bright as the photo shows it: what the
    # wrapped ambient lacks comes from the hidden sun and, for the clouded share, from a
    # broad light overhead (ceiling, overcast sky); if the ambient is far brighter than
    # the surfaces allow, the unseen part of it is dimmed instead
    not_surface = clipped | sky
    wanted = _scene_irradiance(photo, not_surface, albedo, params)
    have = _lum_irradiance(sh_ambient, _SCENE_NORMAL)
    deficit = max(wanted - have, 0.0) if wanted is not None else 0.0
    sun, elevation, sun_flux, azimuth_from_sky = _hidden_sun(photo, sky, not_surface,
                                                             sun_out, deficit, params, notes)
    overhead = np.array([0.0, 1.0, 0.0])
    overhead_flux = overcast * deficit * colour
    # the larger share is the key light, the other joins the ambient
    if sun_out >= 0.5:
        direction, size_deg, key_flux = sun, params.key_size_deg, sun_flux
        ambient_pano = _splat_key(ambient_pano, overhead, overhead_flux,
                                  params.overhead_size_deg)
        notes.append(f"key light: none visible under a clear sky ({sun_out:.0%}), "
                     "assumed behind the camera")
        if not azimuth_from_sky:
            advice.append(f"light: the sun is out of view and nothing in the background says "
                          f"where; it is assumed behind the camera, {math.degrees(elevation):.0f}° "
                          "up: turn the light's rotation to place it")
    else:
        direction, size_deg, key_flux = overhead, params.overhead_size_deg, overhead_flux
        ambient_pano = _splat_key(ambient_pano, sun, sun_flux, params.key_size_deg)
        notes.append("key light: none visible, broad light assumed overhead")
    strength = float(key_flux @ envmap.LUMINANCE)
    colour = key_flux / max(strength, 1e-12) if strength > 0 else colour
    # dim only what no plausible reflectance explains: the darkest (outdoor) albedo
    # gives the most light the surfaces can have received
    most = _scene_irradiance(photo, not_surface, params.scene_albedo, params)
    if most is not None and have > params.brightness_tolerance * most:  # (then no deficit)
        ambient_pano = _unseen_dimmed(ambient_photo, wrap, params, overcast, have, most, notes)
    return ambient_pano, direction, size_deg, strength, colour


def _hidden_sun(photo: np.ndarray, sky: np.ndarray, not_surface: np.ndarray, sun_out: float,
                deficit: float, params: EstimatorParams, notes: list[str]
                ) -> tuple[np.ndarray, float, np.ndarray, bool]:
    """A sun out of view: (direction (3,), elevation rad, flux RGB (3,), whether the clear
    sky's pattern placed its azimuth). Behind the camera unless the sky says otherwise; as
    strong as the missing ``deficit`` of irradiance on the scene asks, or as its clear sky says
    (``sun_out``: how surely it is out, 0..1)."""
    elevation = math.radians(params.hidden_key_elevation_deg)
    sun = _direction(math.pi, elevation)
    fit = _fit_sky_and_tilt(photo, sky, not_surface, elevation, params)
    azimuth_from_sky = fit is not None and _fit_holds(fit, not_surface, params)
    if azimuth_from_sky:
        sun = fit.sun
    sun_colour = sunlight_colour(elevation, params.turbidity_beta)
    sun_flux = sun_out * deficit / max(float(sun @ _SCENE_NORMAL), 0.2) * sun_colour
    if fit is not None and _sunlit(fit, photo, not_surface, params):
        # a sunlit clear sky says how strong its sun is (the ground's albedo, which the
        # brightness rule must guess, can be anything from asphalt's 7 % to snow), and then
        # the sunlit ground says how high it stands, hence its colour
        ground_elevation = _sun_elevation_from_ground(photo, not_surface, fit, params)
        if ground_elevation is not None:
            elevation = ground_elevation
            notes.append(f"hidden sun {math.degrees(elevation):.0f}° high, by the sunlit ground")
            # same azimuth, raised or lowered (the sky's pattern fixed the azimuth only)
            sun = _direction(math.atan2(sun[0], -sun[2]), elevation)
            sun_colour = sunlight_colour(elevation, params.turbidity_beta)
        sun_flux = sun_out * params.sun_to_sky_ratio * fit.radiance * sun_colour
        notes.append("sun strength from the clear sky's brightness")
    elif sun_out > 0 and int(sky.sum()) >= params.min_sky_pixels:
        # however bright the ground (sand, snow), a clear sky bounds its sun's strength
        most = sun_out * params.sun_to_sky_ratio * float(np.median(envmap.luminance(photo[sky])))
        if float(sun_flux @ envmap.LUMINANCE) > most:
            sun_flux = most * sun_colour
            notes.append("sun strength capped by the clear sky's brightness")
    return sun, elevation, sun_flux, azimuth_from_sky


def _unseen_dimmed(ambient_photo: np.ndarray, wrap: _Wrap, params: EstimatorParams,
                   overcast: float, have: float, most: float, notes: list[str]) -> np.ndarray:
    """The ambient panorama with its unseen part dimmed until the scene's irradiance ``have``
    comes down to what the darkest plausible reflectance allows (``most``), at the least to
    ``min_unseen_gain`` of it."""
    seen_only = _lum_irradiance(envmap.project_sh(
        _wrap_photo(ambient_photo, wrap, params, 0.0, overcast, open_above=False)),
        _SCENE_NORMAL)
    gain = (params.brightness_tolerance * most - seen_only) / max(have - seen_only, 1e-9)
    gain = float(np.clip(gain, params.min_unseen_gain, 1.0)) * params.back_gain
    notes.append(f"unseen surroundings dimmed ×{gain:.2f} to match the scene's brightness")
    return _wrap_photo(ambient_photo, wrap, params, gain, overcast)


def _sun_blob(photo: np.ndarray, clipped: np.ndarray, labels: np.ndarray, areas: np.ndarray,
              inside: np.ndarray, white: np.ndarray, wrap: _Wrap,
              params: EstimatorParams) -> np.ndarray:
    """(H, W) bool: the clipped blob that is a sun in view, or nothing. A source wholly in
    view (clipped areas running off the frame are sky or windows), compact, and sun-like. Its
    size is that of its white (all-channel clipped) core: a brighter exposure widens a sun's
    glare mostly in a fringe where only some channels clip."""
    pixel_sr = wrap.pixel_solid_angle()
    core_areas = _white_core_areas(white, labels, len(areas))
    compact = [i for i in range(len(areas))
               if inside[i] and core_areas[i] * pixel_sr < params.compact_max_sr]
    key_label = (max(compact, key=lambda i: areas[i]) + 1) if compact else 0
    if key_label and not _is_sun_like(photo, labels == key_label, clipped, params):
        key_label = 0  # a lamp, window or coloured glow: bright ambient, not a sun
    return labels == key_label if key_label else np.zeros_like(clipped)


def _sun_in_view(photo: np.ndarray, ambient_photo: np.ndarray, key_mask: np.ndarray,
                 white: np.ndarray, wrap: _Wrap, params: EstimatorParams
                 ) -> tuple[np.ndarray, float, float]:
    """The sun blob ``key_mask`` → (direction (3,), key strength (luminance irradiance), the
    ambient's irradiance facing it)."""
    sh_ambient = envmap.project_sh(_wrap_photo(ambient_photo, wrap, params, params.back_gain))
    rows, cols = np.nonzero(key_mask)
    # the sun is where the blob is brightest, its white core (a glare fringe that runs up to
    # the frame's edge would pull the whole blob's centre away from it)
    core_rows, core_cols = np.nonzero(key_mask & white)
    if len(core_rows) == 0:
        core_rows, core_cols = rows, cols
    cut = cols.min() == 0 or cols.max() == photo.shape[1] - 1 or rows.min() == 0
    if cut:  # past the frame's edge: where the wrap, stretched beyond the frame, puts it
        direction = wrap.direction_of(core_cols.mean(), core_rows.mean())
    else:  # wholly in view: where the (level) camera sees it
        rays = _pinhole_directions(*photo.shape[:2], params.hfov_deg)
        direction = rays[core_rows, core_cols].mean(axis=0)
    direction = direction / np.linalg.norm(direction)
    # inverse tone mapping: the clipped blob's flux, capped by the sun/sky ratio
    ambient_facing = _lum_irradiance(sh_ambient, direction)
    blob_flux = params.compact_gain * len(rows) * wrap.pixel_solid_angle()
    if cut:
        blob_flux = np.inf  # cut by the frame: its clipped area says too little
    return direction, min(blob_flux, params.key_to_ambient * ambient_facing), ambient_facing


def estimate_environment(background_linear: np.ndarray, rotate_deg: float = 0.0,
                         params: EstimatorParams | None = None,
                         coverage: np.ndarray | None = None) -> Environment:
    """Background photo H×W×3 float32 linear → estimated Environment in the photo's units.
    ``coverage``: optional (H, W) in [0, 1], the layer's alpha: the light is estimated from
    the visible part (``_filled``)."""
    params = params or EstimatorParams()
    photo, gain, is_hdr = _as_metered(_prepare_photo(background_linear, coverage), params)
    photo, sky_restored = _restore_blue_clipped_sky(photo, params)
    wrap = _Wrap.for_photo(photo, params)
    clipped, labels, areas, inside = _clipped_components(photo, params)
    white = photo.min(axis=2) >= params.clip_level
    key_mask = _sun_blob(photo, clipped, labels, areas, inside, white, wrap, params)

    ambient_photo = photo.copy()
    # only white (all-channel) clipping says the true value is well above 1
    diffuse_clipped = white & ~key_mask
    ambient_photo[_above_horizon(diffuse_clipped)] *= _clip_gain(photo, clipped, params)
    _tint_clipped(ambient_photo, diffuse_clipped, clipped, labels, params)
    # restored sky is still clipped for the blob tests above (its extent is what clipped)
    sky = _clear_sky_mask(photo, clipped & ~sky_restored, params)
    _ground_below_horizon(ambient_photo, sky, params)
    notes: list[str] = []
    advice: list[str] = []

    sun_in_view = key_mask.any()
    if sun_in_view:
        direction, strength, ambient_facing = _sun_in_view(photo, ambient_photo, key_mask, white,
                                                           wrap, params)
    if sun_in_view and strength >= params.min_key_share * ambient_facing:
        # its colour: the pixels around a sun are clipped or mixed with sky, so the colour
        # comes from the atmosphere's extinction at its elevation (a level camera assumed)
        colour = sunlight_colour(max(math.asin(float(np.clip(direction[1], -1.0, 1.0))),
                                     math.radians(params.min_colour_elevation_deg)),
                                 params.turbidity_beta)
        size_deg = params.key_size_deg
        # facing into the light means the unseen half is the darker, anti-solar sky
        ambient_pano = _wrap_photo(ambient_photo, wrap, params,
                                   params.back_gain * params.antisolar_gain)
        notes.append("key light: compact clipped source in the photo")
    else:
        colour = _surface_light_colour(photo, clipped, params)
        ambient_pano, direction, size_deg, strength, colour = _light_outside_frame(
            photo, ambient_photo, clipped, sky, colour, wrap, params, notes, advice)
    key_irradiance = max(strength, 0.0) * colour
    if coverage is not None and float(np.min(coverage)) < 0.999:
        notes.append(f"{float(np.mean(np.asarray(coverage) < 0.5)):.0%} of the photo is "
                     "transparent: estimated from its visible part")
    if is_hdr:
        notes.append("HDR photo: estimated as a camera metering it to mid-grey would record "
                     "it, then scaled back to its units")
    elif gain != 1.0:
        notes.append(f"photo {math.log2(gain):.1f} stops darker than metered: estimated as if "
                     "metered, then scaled back")
    if sky_restored.any():
        notes.append(f"clear sky clipped in blue over {sky_restored.mean():.0%} of the photo: "
                     "its blue restored from green")
    env = _assemble(ambient_pano, direction, key_irradiance, size_deg, "estimated", notes)
    env.advice.extend(advice)
    return rotated(scaled(env, 1.0 / gain) if gain != 1.0 else env, rotate_deg)


def environment_report(env: Environment) -> dict:
    """What `relight light BACKGROUND --json` prints (camera frame, photo units)."""
    return {
        "source": env.source,
        "sh_order": envmap.SH_ORDER,
        "sh_radiance_camera_frame_rgb": np.asarray(env.sh, float).round(6).tolist(),
        "dominant_light": {
            "direction": np.asarray(env.dominant_direction, float).round(4).tolist(),
            "colour": np.asarray(env.dominant_colour, float).round(5).tolist(),
        },
        "key_light": {
            "direction": np.asarray(env.key_direction, float).round(4).tolist(),
            "irradiance": np.asarray(env.key_irradiance, float).round(5).tolist(),
            "size_deg": round(float(env.key_size_deg), 2),
        },
        "notes": list(env.notes),
        "advice": list(env.advice),
    }
