"""relight_core.shading: analytic sphere under real panoramas, shadows, exact layer stacking."""

from pathlib import Path

import numpy as np
import pytest

from relight_core import envmap, io, lighting, shading

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
HDRI = DATA / "hdri"


def sphere(size: int = 81):
    """Orthographic unit sphere: normals (x right, y up, z to camera), height px, mask."""
    centre = (size - 1) / 2
    radius = centre - 1
    rows, cols = np.mgrid[0:size, 0:size]
    x, y = (cols - centre) / radius, -(rows - centre) / radius
    inside = x * x + y * y < 0.999
    z = np.sqrt(np.clip(1 - x * x - y * y, 0, 1))
    normals = np.stack([x, y, z], -1) * inside[..., None]
    normals[~inside] = (0.0, 0.0, 1.0)
    return normals.astype(np.float32), (z * radius * inside).astype(np.float32), inside


def brute_force_shading(pano: np.ndarray, normals: np.ndarray, rows: int = 128) -> np.ndarray:
    """E(n)/π = (1/π) ∫ L(ω) max(0, n·ω) dω summed over every texel of a 128-row panorama: the
    Phong lobe of exponent 1, whose normalisation (n+1)/2π is 1/π."""
    return brute_force_lobe(pano, normals, 1.0, rows=rows)


def brute_force_lobe(pano: np.ndarray, directions: np.ndarray, exponent: float,
                     rows: int = 256) -> np.ndarray:
    """∫ L(ω) (n+1)/2π max(0, r·ω)^n dω over every texel of a 256-row panorama (…, 3);
    ``exponent`` a power of two."""
    small = envmap.downsample_pano(pano, rows)
    dirs = envmap.direction_grid(rows).reshape(-1, 3).astype(np.float32)
    flux = (small.reshape(-1, 3) * envmap.solid_angles(rows).reshape(-1, 1)).astype(np.float32)
    out = np.empty((len(directions), 3), np.float64)
    for start in range(0, len(directions), 512):
        lobe = np.clip(directions[start:start + 512].astype(np.float32) @ dirs.T, 0, None)
        for _ in range(int(np.log2(exponent))):  # cos^n by squaring (n a power of two)
            lobe *= lobe
        out[start:start + 512] = lobe @ flux
    return out * (exponent + 1) / (2 * np.pi)


# sky with a sun (rooitou, spruit), overcast, a dawn sky, a dim hall, and a glass bridge whose
# large bright overhead patch is a "large key" (rendered from its own map, not as a point)
@pytest.mark.parametrize("name", ["kiara_1_dawn_1k", "potsdamer_platz_1k",
                                  "st_fagans_interior_1k", "rooitou_park_1k",
                                  "adams_place_bridge_1k", "gainmap/spruit_sunrise_1k"])
def test_sphere_matches_analytic_shading_within_2_percent(name):
    pano = io.read_panorama(HDRI / f"{name}.hdr")
    env = lighting.environment_from_hdri(pano)
    maps = shading.LightMaps.from_environment(env)
    normals, height, inside = sphere()
    opaque = np.zeros(height.shape, np.float32)  # a Lambertian sphere lets no light through
    surface = shading.Surface(normals, height, opaque, translucency=opaque)
    diffuse, specular = surface.render(maps, shininess=0.0)
    assert np.all(specular == 0)
    albedo = 0.5
    rendered = (albedo * diffuse[inside]) @ envmap.LUMINANCE
    expected = (albedo * brute_force_shading(pano, normals[inside])) @ envmap.LUMINANCE
    error = np.abs(rendered - expected).mean() / expected.mean()
    assert error < 0.02, f"{name}: mean error {error:.3%}"
    assert abs(rendered.mean() / expected.mean() - 1) < 0.02


def test_hard_light_casts_shadows_and_soft_light_stays_soft():
    """A 'nose' (cone) on a plane, lit from the right at low elevation."""
    size = 121
    rows, cols = np.mgrid[0:size, 0:size]
    plane = np.full((size, size), 20.0, np.float32)
    cone = np.maximum(0, 30 - np.hypot(rows - 60, cols - 60)) * 1.5
    height = plane + cone.astype(np.float32)
    light = np.array([np.cos(np.radians(20)), 0.0, np.sin(np.radians(20))])
    hard = shading.key_visibility(height, light, size_deg=0.5)
    soft = shading.key_visibility(height, light, size_deg=25.0)
    assert hard[60, 5] < 0.05  # left of the cone: in its shadow
    assert hard[60, 115] > 0.95 and hard[5, 5] > 0.95  # lit side, and away from the cone
    penumbra_hard = ((hard > 0.05) & (hard < 0.95)).sum()
    penumbra_soft = ((soft > 0.05) & (soft < 0.95)).sum()
    assert penumbra_soft > 3 * max(penumbra_hard, 1)


def test_shadowed_side_gets_only_ambient_light():
    pano = io.read_panorama(HDRI / "rooitou_park_1k.hdr")
    env = lighting.environment_from_hdri(pano)
    maps = shading.LightMaps.from_environment(env)
    normals, height, inside = sphere()
    opaque = np.zeros(height.shape, np.float32)
    surface = shading.Surface(normals, height, opaque, translucency=opaque)
    # the park's sun is behind this camera's subject: turn it round to the front
    lit, _ = surface.render(maps, yaw_deg=180.0, shininess=0.0)
    facing = normals @ (envmap.rotation_y(180.0) @ maps.key_direction)
    bright = lit[inside & (facing > 0.7)] @ envmap.LUMINANCE
    dark = lit[inside & (facing < -0.3)] @ envmap.LUMINANCE
    assert bright.mean() > 4 * dark.mean()  # a real dark side under a sun
    turned, _ = surface.render(maps, yaw_deg=0.0, shininess=0.0)
    assert not np.allclose(turned, lit)
    full_turn, _ = surface.render(maps, yaw_deg=540.0, shininess=0.0)
    np.testing.assert_allclose(full_turn, lit, atol=1e-6)


def test_backlight_gives_a_rim_on_translucent_edges():
    pano = io.read_panorama(HDRI / "rooitou_park_1k.hdr")
    maps = shading.LightMaps.from_environment(lighting.environment_from_hdri(pano))
    assert maps.key_direction[2] < -0.5  # the park's sun is behind the subject
    normals, height, inside = sphere()
    opaque = np.zeros(height.shape, np.float32)
    hair = shading.Surface(normals, height, opaque).render(maps, shininess=0.0)[0]
    solid = shading.Surface(normals, height, opaque, opaque).render(maps, shininess=0.0)[0]
    edge = inside & (normals[..., 2] < 0.3)
    centre = inside & (normals[..., 2] > 0.9)
    gain = (hair[edge] @ envmap.LUMINANCE).mean() / (solid[edge] @ envmap.LUMINANCE).mean()
    assert gain > 1.5
    lum_hair, lum_solid = hair @ envmap.LUMINANCE, solid @ envmap.LUMINANCE
    centre_gain = lum_hair[centre].mean() / lum_solid[centre].mean()
    assert centre_gain < 1.05  # the face-on middle stays as it was


def test_specular_lobes_and_weights():
    for glossy in (True, False):
        for s in np.linspace(0, 1, 11):
            weights = shading.specular_weights(s, glossy)
            assert weights.min() >= 0 and abs(weights.sum() - 1) < 1e-9
    assert shading.specular_weights(1.0, True)[3] == 1.0  # sharpest lobe n = 64
    assert shading.specular_weights(0.0, False)[0] == 1.0  # broadest lobe n = 1
    pano = io.read_panorama(HDRI / "rooitou_park_1k.hdr")
    maps = shading.LightMaps.from_environment(lighting.environment_from_hdri(pano))
    assert [m.shape for m in maps.specular_maps] == [(64, 128, 3)] * 4
    peaks = [float(m.max()) for m in maps.specular_maps]
    assert peaks == sorted(peaks)  # sharper lobes keep the sun brighter
    normals, height, inside = sphere()
    surface = shading.Surface(normals, height, np.ones(height.shape, np.float32))
    _, dull = surface.render(maps, shininess=0.1)
    _, shiny = surface.render(maps, shininess=0.9)
    assert shiny[inside].max() > dull[inside].max()


def test_specular_texture_follows_strands_on_hair_and_leaves_skin_alone():
    """Dark hair with brighter strands: the sheen goes to the strands (a smooth sheet over
    the hair washed them out), its local mean stays ~1; skin keeps its own lobe (1)."""
    height, width = 120, 200
    albedo = np.full((height, width, 3), 0.05, np.float32)  # dark hair
    albedo[:, ::4] = 0.15  # every fourth column a brighter strand
    albedo[:, 100:] = 0.4  # the face
    alpha = np.ones((height, width), np.float32)
    alpha[:, :10] = 0.0  # background: no say in the hair's mean
    skin = np.zeros((height, width), np.float32)
    skin[:, 110:] = 1.0
    texture = shading.specular_texture(albedo, alpha, skin)
    assert texture.dtype == np.float32 and texture.shape == (height, width)
    hair = texture[:, 30:80]
    strands, gaps = hair[:, 2::4], hair[:, 3::4]
    assert strands.mean() > 1.5 and gaps.mean() < 0.7
    assert hair.mean() == pytest.approx(1.0, abs=0.1)
    assert np.all(texture[:, 110:] == 1.0)
    assert texture.max() <= shading.SPECULAR_TEXTURE_MAX


def test_specular_texture_does_not_pepper_near_black_hair():
    """Black hair in shadow: its albedo is an 8-bit photo's noise (codes 0–4: linear 0 to
    0.0012) and its ratio to the local mean ran from 0 to 3, black pixels in a bright sheen;
    the floor keeps it near 1 there, while strands on dark-brown hair still catch it."""
    rng = np.random.default_rng(3)
    codes = rng.integers(0, 5, size=(120, 200)).astype(np.float32)
    albedo = np.repeat((codes / 255 / 12.92)[..., None], 3, axis=2)
    alpha = np.ones((120, 200), np.float32)
    skin = np.zeros((120, 200), np.float32)
    texture = shading.specular_texture(albedo, alpha, skin)[10:-10, 10:-10]
    assert texture.std() < 0.15 and texture.min() > 0.7
    albedo[:] = 0.05
    albedo[:, ::4] = 0.15
    texture = shading.specular_texture(albedo, alpha, skin)[10:-10, 10:-10]
    assert texture[:, 2::4].mean() > 1.5 and texture[:, 3::4].mean() < 0.7


@pytest.mark.parametrize("keep", [0.0, 0.4, 1.0])
def test_layers_rebuild_relit_exactly(keep):
    rng = np.random.default_rng(1)
    albedo = rng.random((32, 48, 3), np.float32)
    albedo[0, 0] = 0.0
    original = (0.2 + rng.random((32, 48), np.float32)).astype(np.float32)
    foreground = albedo * original[..., None]
    new_shading = (2 * rng.random((32, 48, 3))).astype(np.float32)
    specular = (0.1 * rng.random((32, 48, 3))).astype(np.float32)
    layer_shading, layer_specular, relit = shading.compose(
        albedo, foreground, new_shading, specular, original, keep)
    assert np.array_equal(albedo * layer_shading + layer_specular, relit)
    if keep == 1.0:
        np.testing.assert_allclose(relit, foreground, atol=1e-6)
    if keep == 0.0:
        np.testing.assert_array_equal(layer_shading, new_shading)


@pytest.mark.parametrize("name", ["rooitou_park_1k", "gainmap/spruit_sunrise_1k"])
def test_sun_highlight_matches_a_brute_force_phong_integral(name):
    """Specular at shininess 1 on hair/cloth is 2 × 0.5 × Fresnel × the n = 32 lobe at the
    mirror direction; the sun's highlight must keep its strength (prefiltered at 128 rows)."""
    pano = io.read_panorama(HDRI / f"{name}.hdr")
    env = lighting.environment_from_hdri(pano)
    maps = shading.LightMaps.from_environment(env)
    normals, height, inside = sphere(41)
    opaque = np.zeros(height.shape, np.float32)
    surface = shading.Surface(normals, np.zeros_like(height), opaque, translucency=opaque)
    # turn the sun in front of the sphere, where the mirror directions of the rim see it
    yaw = float(np.degrees(np.arctan2(env.key_direction[0], env.key_direction[2])))
    _, specular = surface.render(maps, yaw_deg=-yaw + 180.0, shininess=1.0)
    n = normals[inside].astype(np.float64)
    mirror = 2 * n[:, 2:3] * n - np.array([0.0, 0.0, 1.0])
    mirror = mirror @ envmap.rotation_y(-yaw + 180.0)  # back into the panorama's frame
    fresnel = shading.FRESNEL_F0 + (shading.FRESNEL_GRAZING - shading.FRESNEL_F0) * (
        1 - np.clip(n[:, 2:3], 0, 1)) ** 5
    expected = fresnel * brute_force_lobe(pano, mirror, 32.0)
    rendered = specular[inside].astype(np.float64)
    error = np.abs(rendered - expected).sum() / expected.sum()
    assert error < 0.03, f"{name}: specular off by {error:.2%}"


def test_turning_the_light_turns_the_lookup_not_the_maps():
    pano = io.read_panorama(HDRI / "rooitou_park_1k.hdr")
    env = lighting.environment_from_hdri(pano)
    maps = shading.LightMaps.from_environment(env)
    normals, height, inside = sphere(61)
    opaque = np.zeros(height.shape, np.float32)
    flat = np.zeros_like(height)
    for yaw in (37.3, 181.4):
        turned = shading.Surface(normals, flat, opaque, opaque).render(maps, yaw, 1.0, 1.0)
        maps_turned = shading.LightMaps.from_environment(lighting.rotated(env, yaw))
        direct = shading.Surface(normals, flat, opaque, opaque).render(maps_turned, 0.0, 1.0, 1.0)
        for a, b in zip(turned, direct, strict=True):
            assert np.abs(a - b)[inside].sum() / b[inside].sum() < 0.01
