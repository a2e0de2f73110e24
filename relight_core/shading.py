"""Shading: light maps → diffuse shading, specular, relit.

Contract (all arrays at one resolution H×W; colours linear float32)
-----------------------------------------------------------------
``LightMaps.from_environment(env)``: the environment's ambient SH (9, 3), key light
(direction (3,), irradiance (3,), angular size) and Total Relighting's specular light maps: the
panorama prefiltered with normalised Phong lobes of exponents 1, 16, 32, 64 (each 64×128×3,
from the 128-row panorama: a sun's highlight needs both), the *diffuse light map* and, for a
large key, the key's own diffuse map. Made once per environment (a few ms; the lobes' weights
are cached by ``envmap``); a turn of the light turns the lookup directions, not the maps.

``Surface(normals, height, skin)``: per-pixel data that does not depend on the light (light-map
lookup coordinates of the normal and of the reflection vector, Fresnel × material), built once;
what depends on the key direction (shadows, cosine, rim) is cached per direction.

``Surface.render(maps, yaw_deg, strength, shininess) -> (shading (H,W,3), specular (H,W,3))``
* shading = E(n)/π = M₁(n) + visibility · key_irradiance · max(0, n·l) / π, where M₁ is the
  *diffuse light map*: the environment's ``ambient_pano`` (the panorama less exactly the key's
  energy), convolved with the normalised cosine lobe — exactly a Phong n = 1 prefilter
  (∫ L (1+1)/2π cos = E/π) — looked up by the normal, and the key light is added
  analytically, with its shadows. A key larger than ``LARGE_KEY_DEG`` (a window, a bright
  cloud, an overhead light) is no point: its term is its own prefiltered map K₁(n) (the
  panorama less the ambient, n = 1) × visibility instead. The visibility comes from
  marching the height field toward the key light (cast shadows: nose on cheek, eye sockets,
  chin on neck), softened by the light's angular size. (An order-2 SH of the ambient light
  would be 3–4 % off on a dawn sky; the map is exact to its sampling.)
* rim: hair strands and the silhouette's edge are thin and let a key light from behind through
  (forward scattering of fibres): edge pixels (normals turned sideways, (1 − n_z)²) facing the
  light's side get ``RIM_TRANSMISSION · max(0, −l_z) · key_irradiance / π`` more — the rim light
  of a backlit portrait, which a camera-facing normal map alone can never receive.
* specular = amount · Fresnel(n·v) · Σ_k w_k(pixel) · M_k(r), r the mirror direction of the view
  vector, M_k the Phong-prefiltered maps: sharp lobes on skin, broad ones on hair and cloth.
  Hair and cloth reflect it strand by strand: ``specular_texture`` (their albedo over its
  local mean) modulates it there, so a sheen over dark hair shows the strands instead of a
  smooth sheet washing them out.

``compose(albedo, foreground, shading, specular, original_shading, keep_original)``
→ (shading_layer, specular_layer, relit) with relit = albedo × shading_layer + specular_layer
exactly: the three layers stacked (albedo, shading in Multiply, specular in Addition) rebuild it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from . import envmap
from .geometry import masked_blur

SPECULAR_EXPONENTS = (1.0, 16.0, 32.0, 64.0)
SPECULAR_MAP_HEIGHT = 64  # rows of every light map (2.8° texels: the n = 64 lobe spans ~6)
LARGE_KEY_DEG = 8.0  # a key wider than this (angular radius) is rendered from its own map
VIEW = np.array([0.0, 0.0, 1.0], np.float32)
FRESNEL_F0 = 0.04          # dielectric (skin, hair, cloth) reflectance at normal incidence
FRESNEL_GRAZING = 0.35     # rough surfaces never reach the mirror limit of 1 at grazing angles
SPECULAR_GAIN = 2.0        # shininess 1 → twice a plain dielectric's reflection
NON_SKIN_SPECULAR = 0.5    # hair and cloth are rougher and less glossy than skin
SPECULAR_TEXTURE_SIGMA = 0.01  # local mean for the specular texture, of the long side: finer
                               # than the shading, coarser than strands and threads
SPECULAR_TEXTURE_MAX = 3.0     # a bright strand on dark hair catches at most this × the sheen
# Near black, an 8-bit photo's albedo is its noise: ±2 code values around code 3 are linear
# 0.0009 ± 0.0006, over a dim original shading ≈ 0.004 of albedo. The texture is taken as
# (albedo + floor) / (local mean + floor), so that noise does not pepper the sheen.
SPECULAR_TEXTURE_FLOOR = 0.004
SHADOW_MAX_SIDE = 384      # shadow maps are computed at this size and upsampled
SHADOW_REACH = 0.45        # fraction of the long side a shadow may be cast across
SHADOW_STEPS = 22
MIN_KEY_SIZE_DEG = 1.0
RIM_TRANSMISSION = 0.6


@dataclass
class LightMaps:
    sh_ambient: np.ndarray        # (9, 3)
    key_direction: np.ndarray     # (3,)
    key_irradiance: np.ndarray    # (3,)
    key_size_deg: float
    specular_maps: list[np.ndarray]  # 4 × (64, 128, 3)
    diffuse_map: np.ndarray          # (64, 128, 3) E/π of the ambient light (key excluded)
    key_map: np.ndarray | None = None  # (64, 128, 3) E/π of a large key alone; None: a point

    @classmethod
    def from_environment(cls, env) -> LightMaps:
        """Light maps of a ``lighting.Environment`` (its panorama, ambient panorama and key)."""
        ambient = env.ambient_pano
        key_pano = np.maximum(env.pano - ambient, 0.0)
        diffuse = envmap.phong_prefilter(ambient, 1.0, SPECULAR_MAP_HEIGHT)
        key_diffuse = envmap.phong_prefilter(key_pano, 1.0, SPECULAR_MAP_HEIGHT)
        # the prefilter is linear: the n = 1 lobe of the whole panorama is the two together
        maps = [diffuse + key_diffuse] + [envmap.phong_prefilter(env.pano, n, SPECULAR_MAP_HEIGHT)
                                          for n in SPECULAR_EXPONENTS[1:]]
        has_key = bool(np.any(np.asarray(env.key_irradiance) > 0))
        large = has_key and float(env.key_size_deg) > LARGE_KEY_DEG
        return cls(sh_ambient=np.asarray(env.sh_ambient, np.float32),
                   key_direction=np.asarray(env.key_direction, np.float32),
                   key_irradiance=np.asarray(env.key_irradiance, np.float32),
                   key_size_deg=float(env.key_size_deg), specular_maps=maps,
                   diffuse_map=diffuse, key_map=key_diffuse if large else None)


def specular_weights(shininess: float, glossy: bool) -> np.ndarray:
    """Weights (4,) over the lobes n = 1, 16, 32, 64 for a shininess in [0, 1].

    Skin (glossy) slides from n = 16 to n = 64 as shininess grows; hair and cloth from n = 1 to
    n = 32. Linear interpolation between neighbouring lobes keeps the weights summing to one.
    """
    s = float(np.clip(shininess, 0.0, 1.0))
    position = 1.0 + 2.0 * s if glossy else 2.0 * s
    weights = np.zeros(len(SPECULAR_EXPONENTS))
    low = min(int(math.floor(position)), len(SPECULAR_EXPONENTS) - 2)
    frac = position - low
    weights[low] = 1.0 - frac
    weights[low + 1] = frac
    return weights


NO_SURFACE = -1e9  # height of "nothing": the background and beyond the frame cast no shadow


def _shift(values: np.ndarray, d_row: int, d_col: int) -> np.ndarray:
    """values[r + d_row, c + d_col], NO_SURFACE outside the frame."""
    height, width = values.shape
    out = np.full_like(values, NO_SURFACE)
    if abs(d_row) >= height or abs(d_col) >= width:
        return out
    src_r = slice(max(d_row, 0), height + min(d_row, 0))
    dst_r = slice(max(-d_row, 0), height + min(-d_row, 0))
    src_c = slice(max(d_col, 0), width + min(d_col, 0))
    dst_c = slice(max(-d_col, 0), width + min(-d_col, 0))
    out[dst_r, dst_c] = values[src_r, src_c]
    return out


def key_visibility(height: np.ndarray, direction: np.ndarray, size_deg: float) -> np.ndarray:
    """Height field (H, W) px toward the camera + light direction (3,) → visibility (H, W) [0, 1].

    Horizon mapping: along the light's direction in the image the highest elevation angle of
    the surface ahead is compared with the light's elevation; the penumbra spans the light's
    angular size (a sun: hard; a window or overcast key: soft). Pixels with height ≤ 0 are no
    surface (background) and occlude nothing.
    """
    direction = np.asarray(direction, np.float64)
    planar = math.hypot(direction[0], direction[1])
    if planar < 1e-3:  # light along the view axis: every visible point sees it
        return np.ones_like(height, dtype=np.float32)
    step_col, step_row = direction[0] / planar, -direction[1] / planar
    light_elevation = math.atan2(direction[2], planar)
    reach = SHADOW_REACH * max(height.shape)
    steps = np.unique(np.round(np.geomspace(1.0, reach, SHADOW_STEPS)))
    bias = 0.5
    occluders = np.where(height > 0, height, NO_SURFACE).astype(np.float32)
    max_slope = np.full(height.shape, -np.inf, np.float32)
    for t in steps:
        ahead = _shift(occluders, int(round(t * step_row)), int(round(t * step_col)))
        np.maximum(max_slope, (ahead - height - bias) / t, out=max_slope)
    horizon = np.arctan(max_slope)
    softness = math.radians(2.0 * max(size_deg, MIN_KEY_SIZE_DEG))
    x = np.clip((light_elevation - horizon) / softness + 0.5, 0.0, 1.0)
    return (x * x * (3.0 - 2.0 * x)).astype(np.float32)


class Surface:
    """Light-independent per-pixel data at one resolution, for fast repeated rendering.

    Everything that depends only on the normals is computed once; what depends on the key
    light's direction (shadows, the lit cosine, the rim) is cached per direction, so a change of
    strength, shininess or keep-original costs three lookups and a few multiplications.
    """

    def __init__(self, normals: np.ndarray, height: np.ndarray, skin_weight: np.ndarray,
                 translucency: np.ndarray | None = None):
        """``skin_weight`` (H, W) [0, 1]: glossy skin vs hair/cloth; ``translucency`` (H, W)
        [0, 1]: how much the silhouette's edge lets backlight through (default: all but skin;
        0 for an opaque Lambertian object)."""
        self.shape = normals.shape[:2]
        flat_normals = normals.reshape(-1, 3).astype(np.float32)  # not kept: the planes are
        u_n, v_n = envmap.dirs_to_uv(flat_normals)
        self._normal_xy = self._map_coords(u_n, v_n)
        n_dot_v = np.clip(flat_normals[:, 2], 0.0, 1.0)
        reflection = 2.0 * n_dot_v[:, None] * flat_normals - VIEW
        self._mirror_xy = self._map_coords(*envmap.dirs_to_uv(reflection))
        self._coords_cache: tuple[float, tuple[np.ndarray, ...]] | None = None
        self.edge = ((1.0 - n_dot_v) ** 2).astype(np.float32).reshape(self.shape)
        planar = flat_normals[:, :2]
        planar_unit = planar / np.maximum(np.linalg.norm(planar, axis=1, keepdims=True), 1e-6)
        # per-component planes: a weighted sum of planes is ~3× faster than an (N, 3) @ (3,)
        self._normal_planes = [np.ascontiguousarray(flat_normals[:, k]).reshape(self.shape)
                               for k in range(3)]
        self._planar_planes = [np.ascontiguousarray(planar_unit[:, k]).reshape(self.shape)
                               for k in range(2)]
        fresnel = FRESNEL_F0 + (FRESNEL_GRAZING - FRESNEL_F0) * (1.0 - n_dot_v) ** 5
        self.skin_weight = np.clip(skin_weight, 0.0, 1.0).astype(np.float32)
        skin = self.skin_weight[..., None]
        self.skin3 = np.ascontiguousarray(skin)
        self.translucency = (1.0 - self.skin_weight if translucency is None
                             else np.clip(translucency, 0.0, 1.0).astype(np.float32))
        # Fresnel × material: skin is glossier than hair and cloth
        material = skin + (1.0 - skin) * NON_SKIN_SPECULAR
        self.reflectance = (fresnel.reshape(*self.shape, 1) * material).astype(np.float32)
        rows = np.flatnonzero(self.skin_weight.any(axis=1))
        cols = np.flatnonzero(self.skin_weight.any(axis=0))
        self.skin_box = (None if rows.size == 0 else
                         (slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1)))
        self.height_small, self.shadow_scale = self._small_height(height)
        self._key_cache: dict[tuple, tuple[np.ndarray, np.ndarray]] = {}

    def _map_coords(self, u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Panorama (u, v) → light-map pixel coordinates (x, y), each (H, W) float32."""
        map_h, map_w = SPECULAR_MAP_HEIGHT, 2 * SPECULAR_MAP_HEIGHT
        x = (u * map_w - 0.5).astype(np.float32).reshape(self.shape)
        y = np.clip(v * map_h - 0.5, 0, map_h - 1).astype(np.float32).reshape(self.shape)
        return x, y

    def _coords(self, yaw_deg: float) -> tuple[np.ndarray, ...]:
        """Lookup coordinates of the normal and of the mirror direction for the light turned by
        ``yaw_deg``, in OpenCV's fixed-point form (remap with these is about twice as fast as
        with float maps; 1/32 px is plenty here), cached for one turn.

        Turning the light by yaw is looking up the unturned maps at u − yaw/360: the maps are
        never resampled, so a turn costs no accuracy (a sun's highlight keeps its peak).
        """
        yaw = float(yaw_deg) % 360.0
        if self._coords_cache is not None and self._coords_cache[0] == yaw:
            return self._coords_cache[1]
        map_w = 2 * SPECULAR_MAP_HEIGHT
        shift = np.float32(yaw / 360.0 * map_w)
        coords: list[np.ndarray] = []
        for x, y in (self._normal_xy, self._mirror_xy):
            turned = np.mod(x - shift, np.float32(map_w)) if shift else x
            coords.extend(cv2.convertMaps(turned, y, cv2.CV_16SC2))
        self._coords_cache = (yaw, tuple(coords))
        return self._coords_cache[1]

    def _lookup(self, light_map: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return cv2.remap(np.ascontiguousarray(light_map, np.float32), x, y, cv2.INTER_LINEAR,
                         borderMode=cv2.BORDER_WRAP)

    def _small_height(self, height: np.ndarray) -> tuple[np.ndarray, float]:
        long_side = max(height.shape)
        scale = min(1.0, SHADOW_MAX_SIDE / long_side)
        if scale >= 1.0:
            return height.astype(np.float32), 1.0
        size = (max(1, round(height.shape[1] * scale)), max(1, round(height.shape[0] * scale)))
        small = cv2.resize(height.astype(np.float32), size, interpolation=cv2.INTER_AREA)
        return small * scale, scale  # heights are in pixels: they shrink with the image

    def visibility(self, direction: np.ndarray, size_deg: float) -> np.ndarray:
        """Key-light visibility (H, W) in [0, 1] for a direction (cached)."""
        return self._key_terms(direction, size_deg)[0]

    def _key_terms(self, direction: np.ndarray, size_deg: float
                   ) -> tuple[np.ndarray, np.ndarray]:
        """(visibility, key factor = max(0, n·l)·visibility + rim), both (H, W), cached."""
        key = (tuple(np.round(np.asarray(direction, np.float64), 5)), round(size_deg, 3))
        cached = self._key_cache.get(key)
        if cached is None:
            small = key_visibility(self.height_small, direction, size_deg)
            visibility = cv2.resize(small, (self.shape[1], self.shape[0]),
                                    interpolation=cv2.INTER_LINEAR)
            nx, ny, nz = self._normal_planes
            lit = nx * np.float32(direction[0])
            lit += ny * np.float32(direction[1])
            lit += nz * np.float32(direction[2])
            np.maximum(lit, 0.0, out=lit)
            lit *= visibility
            # scattered through the edge itself: no line of sight needed
            lit += self._rim(direction)
            if len(self._key_cache) > 8:
                self._key_cache.clear()
            cached = self._key_cache[key] = (visibility, lit[..., None].astype(np.float32))
        return cached

    def render(self, maps: LightMaps, yaw_deg: float = 0.0, strength: float = 1.0,
               shininess: float = 0.3) -> tuple[np.ndarray, np.ndarray]:
        """→ (shading (H, W, 3) = E/π, specular (H, W, 3)), both scaled by ``strength``.

        The unscaled diffuse shading is cached per (maps, yaw) and the unscaled specular per
        (maps, yaw, shininess): a change of strength (or of keep-original, applied later) then
        costs one multiplication per layer. Fresh arrays are returned every call.
        """
        diffuse, visibility = self._diffuse(maps, yaw_deg)
        shading = diffuse * np.float32(strength)
        specular = self._specular_cached(maps, yaw_deg, shininess, visibility)
        if specular is None:
            specular = np.zeros((*self.shape, 3), np.float32)
        else:
            specular = specular * np.float32(strength)
        return shading, specular

    def drop_render_cache(self) -> None:
        """Forget the cached unscaled layers (e.g. after a one-off full-size render, where
        upsampling costs far more than re-rendering and memory is what is short)."""
        self._diffuse_cache = None
        self._specular_cache = None

    def _diffuse(self, maps: LightMaps, yaw_deg: float
                 ) -> tuple[np.ndarray, np.ndarray | None]:
        """(unscaled shading (H, W, 3), key visibility (H, W) or None), cached for one light."""
        key = (maps, yaw_deg % 360)
        cached = getattr(self, "_diffuse_cache", None)
        if cached is not None and cached[0][0] is key[0] and cached[0][1] == key[1]:
            return cached[1]
        rotation = envmap.rotation_y(yaw_deg)
        key_direction = (rotation @ maps.key_direction).astype(np.float32)
        normal_x, normal_y = self._coords(yaw_deg)[:2]
        visibility = None
        if not bool(np.any(maps.key_irradiance > 0)):
            shading = self._lookup(maps.diffuse_map, normal_x, normal_y)
        elif maps.key_map is None:  # a point light: analytic, with its shadows and rim
            shading = self._lookup(maps.diffuse_map, normal_x, normal_y)
            visibility, key_factor = self._key_terms(key_direction, maps.key_size_deg)
            shading += key_factor * (maps.key_irradiance / math.pi).astype(np.float32)
        else:  # a large key: its own map (one 6-channel lookup with the ambient's), shadowed
            both = self._lookup(np.concatenate([maps.diffuse_map, maps.key_map], axis=-1),
                                normal_x, normal_y)
            visibility = self.visibility(key_direction, maps.key_size_deg)
            shading = both[..., :3] + both[..., 3:] * visibility[..., None]
            shading += (self._rim(key_direction)[..., None]
                        * (maps.key_irradiance / math.pi).astype(np.float32))
        np.maximum(shading, 0.0, out=shading)
        self._diffuse_cache = (key, (shading, visibility))
        return shading, visibility

    def _specular_cached(self, maps: LightMaps, yaw_deg: float, shininess: float,
                         visibility: np.ndarray | None) -> np.ndarray | None:
        """Unscaled specular (H, W, 3), the key's share shadowed; cached for one setting."""
        key = (maps, yaw_deg % 360, float(shininess))
        cached = getattr(self, "_specular_cache", None)
        if cached is not None and cached[0][0] is key[0] and cached[0][1:] == key[1:]:
            return cached[1]
        specular = self._specular(maps, yaw_deg, shininess)
        if visibility is not None and specular is not None:
            # the key's share of the reflected light is shadowed with it
            key_direction = (envmap.rotation_y(yaw_deg) @ maps.key_direction).astype(np.float32)
            key_lum = float(maps.key_irradiance @ envmap.LUMINANCE)
            sh = envmap.rotate_sh(maps.sh_ambient, yaw_deg)
            ambient_lum = float(np.maximum(
                envmap.irradiance_sh(sh, key_direction[None])[0], 0.0) @ envmap.LUMINANCE)
            key_share = np.float32(key_lum / max(key_lum + ambient_lum, 1e-9))
            specular *= ((1.0 - key_share) + key_share * visibility)[..., None]
        self._specular_cache = (key, specular)
        return specular

    def _rim(self, key_direction: np.ndarray) -> np.ndarray:
        """Light a key from behind sends through the thin edge of the silhouette (H, W)."""
        behind = max(0.0, -float(key_direction[2]))
        if behind <= 0.0:
            return np.zeros(self.shape, np.float32)
        planar = math.hypot(float(key_direction[0]), float(key_direction[1]))
        if planar < 1e-3:
            toward = np.ones(self.shape, np.float32)
        else:
            px, py = self._planar_planes
            side = px * np.float32(key_direction[0] / planar)
            side += py * np.float32(key_direction[1] / planar)
            np.clip(side, 0.0, 1.0, out=side)
            toward = 0.3 + 0.7 * side
        # skin inside the face is no thin edge: its sideways normals are the nose and sockets
        return (RIM_TRANSMISSION * behind * self.edge * toward * self.translucency
                ).astype(np.float32)

    def _specular(self, maps: LightMaps, yaw_deg: float, shininess: float) -> np.ndarray | None:
        amount = SPECULAR_GAIN * float(np.clip(shininess, 0.0, 1.0))
        if amount <= 0:
            return None
        blends = []
        for glossy in (True, False):
            weights = specular_weights(shininess, glossy)
            blended = sum(w * m for w, m in zip(weights, maps.specular_maps, strict=True) if w > 0)
            blends.append(blended * amount)
        # both blends share the lookup coordinates: one 6-channel remap instead of two
        mirror_x, mirror_y = self._coords(yaw_deg)[2:]
        looked_up = self._lookup(np.concatenate(blends, axis=-1), mirror_x, mirror_y)
        glossy_part, rough_part = looked_up[..., :3], looked_up[..., 3:]
        specular = rough_part * self.reflectance
        # per-pixel lobe, skin vs the rest: only the skin's box has any skin weight
        box = self.skin_box
        if box is not None:
            rough_box = rough_part[box]
            specular[box] = (rough_box + self.skin3[box] * (glossy_part[box] - rough_box)
                             ) * self.reflectance[box]
        return specular


def specular_texture(albedo: np.ndarray, alpha: np.ndarray, skin_weight: np.ndarray
                     ) -> np.ndarray:
    """How much of the smooth specular lobe each pixel reflects, (H, W) float32, locally ~1.

    ``albedo`` (H, W, 3) float32 linear; ``alpha`` (H, W) and ``skin_weight`` (H, W) in [0, 1].
    On hair and cloth: the albedo's luminance over its local mean inside the person (bright
    strands and threads catch the sheen, the gaps between them do not), at most
    ``SPECULAR_TEXTURE_MAX``; on skin 1 (its glossy lobe is the skin's own).
    """
    luminance = envmap.luminance(albedo)  # float32: a float64 product at 12 MP took 0.8 s
    sigma = max(1.0, SPECULAR_TEXTURE_SIGMA * max(alpha.shape))
    local_mean = masked_blur(luminance, (alpha > 0).astype(np.float32), sigma)
    # in place from here: at 12 MP each full-size temporary is 48 MB of fresh memory
    texture = luminance
    texture += SPECULAR_TEXTURE_FLOOR
    local_mean += SPECULAR_TEXTURE_FLOOR
    texture /= local_mean
    np.clip(texture, 0.0, SPECULAR_TEXTURE_MAX, out=texture)
    skin = np.clip(skin_weight, 0.0, 1.0).astype(np.float32, copy=False)
    texture *= 1.0 - skin
    texture += skin
    return texture


def compose(albedo: np.ndarray, foreground: np.ndarray, shading: np.ndarray,
            specular: np.ndarray, original_shading: np.ndarray, keep_original: float
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Blend toward the original lighting and build the three editable layers.

    ``original_shading`` (H, W) is the fitted grey shading of the portrait's own light. The
    original look is foreground = albedo × (foreground / albedo), so the kept part enters the
    shading layer as foreground / albedo (exact even where the albedo was clamped).
    Returns (shading_layer, specular_layer, relit), relit = albedo × shading_layer + specular_layer.
    """
    k = float(np.clip(keep_original, 0.0, 1.0))
    if k > 0.0:
        safe = albedo > 1e-4
        kept = np.where(safe, foreground / np.where(safe, albedo, 1.0), original_shading[..., None])
        shading = (1.0 - k) * shading + k * kept
        specular = (1.0 - k) * specular
    shading = shading.astype(np.float32, copy=False)
    specular = specular.astype(np.float32, copy=False)
    relit = albedo * shading
    relit += specular
    return shading, specular, relit


def warm_up() -> None:
    """Compute the Phong weight spectra of every light map once per process (~0.1–0.2 s).

    They depend on the map grids and exponents only, never on the light; a worker or a
    benchmark pays them at start, like the model load, not inside the first relight.
    """
    constant = np.ones((SPECULAR_MAP_HEIGHT * 2, SPECULAR_MAP_HEIGHT * 4, 3), np.float32)
    for exponent in SPECULAR_EXPONENTS:
        envmap.phong_prefilter(constant, exponent, SPECULAR_MAP_HEIGHT)
