"""relight_core.io: every format becomes linear float32 once; bad files give one clear error."""

from pathlib import Path

import cv2
import numpy as np
import pytest
from icc_profiles import ADOBE_RGB_D50, matrix_profile
from PIL import Image

from relight_core import io
from relight_core.io import RelightError

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
PORTRAITS = DATA / "portraits"
PORTRAIT_RGB = PORTRAITS / "01_eileen_collins_nasa_studio_pd.png"  # tagged sRGB: decoded as is
PORTRAIT_DISPLAY = PORTRAITS / "05_woman_long_wavy_hair_window_light_cc0.png"  # a Mac's profile
PORTRAIT_GREY = PORTRAITS / "03_man_camera_tripod_outdoor_sun_bw_cc0.png"
PORTRAIT_RGBA = PORTRAITS / "07_man_outdoor_open_shade_cc0.png"
PORTRAIT_JPEG = PORTRAITS / "17_elderly_man_outdoor_overcast_cc0.jpg"
HDRI = DATA / "hdri" / "kiara_1_dawn_1k.hdr"


def srgb_formula(code: np.ndarray) -> np.ndarray:
    c = code / 255.0
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)


def test_a_mask_is_read_as_coverage_not_light(tmp_path):
    grey = np.array([[0, 128, 255]], np.uint8).repeat(2, axis=0)
    cv2.imwrite(str(tmp_path / "grey.png"), grey)
    np.testing.assert_allclose(io.read_mask(tmp_path / "grey.png")[0], [0, 128 / 255, 1])
    deep = (grey.astype(np.uint16) * 257)
    cv2.imwrite(str(tmp_path / "deep.png"), deep)
    np.testing.assert_allclose(io.read_mask(tmp_path / "deep.png"), grey / 255.0, atol=1e-6)
    rgba = np.zeros((2, 3, 4), np.uint8)
    rgba[..., :3] = (255, 255, 0)  # yellow: two of three channels
    rgba[..., 3] = (255, 0, 255)  # the middle column is transparent: not selected
    Image.fromarray(rgba).save(tmp_path / "rgba.png")
    np.testing.assert_allclose(io.read_mask(tmp_path / "rgba.png")[0], [2 / 3, 0, 2 / 3],
                               atol=1e-6)
    with pytest.raises(RelightError, match="no such file"):
        io.read_mask(tmp_path / "missing.png")


def test_png_8bit_becomes_linear_float32():
    image = io.read_image(PORTRAIT_RGB)
    raw = np.asarray(Image.open(PORTRAIT_RGB).convert("RGB"))
    assert image.dtype == np.float32 and image.shape == (*raw.shape[:2], 3)
    np.testing.assert_allclose(image[100, 200], srgb_formula(raw[100, 200].astype(float)),
                               atol=1e-6)
    assert 0.0 <= image.min() and image.max() <= 1.0


def test_grey_png_becomes_rgb():
    image = io.read_image(PORTRAIT_GREY)
    assert image.shape[2] == 3
    assert np.array_equal(image[..., 0], image[..., 2])


def test_rgba_png_keeps_alpha():
    image = io.read_image(PORTRAIT_RGBA)
    assert image.shape[2] == 4
    assert np.all(image[..., 3] == 1.0)  # the manifest: alpha is fully opaque


def test_16bit_png_keeps_precision(tmp_path):
    codes = (np.arange(64 * 64 * 3, dtype=np.uint32) * 7 % 65536).astype(np.uint16)
    codes = codes.reshape(64, 64, 3)
    path = tmp_path / "deep.png"
    cv2.imwrite(str(path), codes[..., ::-1])
    image = io.read_image(path)
    c = codes / 65535.0
    expected = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    np.testing.assert_allclose(image, expected, atol=2e-6)


def test_jpeg_exif_orientation_is_applied(tmp_path):
    source = np.zeros((40, 80, 3), np.uint8)
    source[:, :40] = 255  # left half white
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise to display
    path = tmp_path / "rotated.jpg"
    Image.fromarray(source).save(path, exif=exif, quality=95)
    image = io.read_image(path)
    assert image.shape[:2] == (80, 40)
    assert image[5, 20].mean() > 0.8 and image[75, 20].mean() < 0.2  # white now on top


def test_real_jpeg_and_webp_and_tiff(tmp_path):
    jpeg = io.read_image(PORTRAIT_JPEG)
    assert jpeg.shape == (1000, 1000, 3)
    webp_path = tmp_path / "p.webp"
    Image.open(PORTRAIT_RGB).save(webp_path, lossless=True)
    np.testing.assert_allclose(io.read_image(webp_path), io.read_image(PORTRAIT_RGB), atol=1e-6)
    tiff_path = tmp_path / "p.tif"
    io.write_tiff_linear(tiff_path, jpeg)
    np.testing.assert_array_equal(io.read_image(tiff_path), jpeg)  # float TIFF = linear


def test_hdr_and_exr_panoramas(tmp_path):
    pano = io.read_panorama(HDRI)
    assert pano.dtype == np.float32 and pano.shape == (512, 1024, 3)
    assert pano.max() > 1.0  # real HDR
    exr = tmp_path / "pano.exr"
    io.write_exr_linear(exr, pano)
    np.testing.assert_array_equal(io.read_panorama(exr), pano)


def test_pixels_out_of_range_become_finite_light_and_an_overflowed_sun_stays_brightest():
    pixels = np.array([[[np.nan, -np.inf, 0.5], [np.inf, -2.0, 70000.0]]], np.float32)
    clean = io.finite_pixels(pixels)
    assert np.isfinite(clean).all() and clean.min() >= 0.0
    np.testing.assert_array_equal(clean[0, 0], [0.0, 0.0, 0.5])
    # +inf is more than a half float holds: at least 65504, and at least the channel's peak
    assert clean[0, 1, 0] == io.HALF_FLOAT_MAX and clean[0, 1, 2] == 70000.0
    ordinary = np.full((2, 2, 3), 0.25, np.float32)
    assert io.finite_pixels(ordinary) is ordinary  # clean pixels are not copied


def test_a_half_float_exr_whose_sun_overflowed_keeps_its_sun(tmp_path):
    """Written as half floats, a sun brighter than 65504 is +inf in the file; read as 0 it was
    a black hole, and the panorama's light pointed away from the sun."""
    import OpenEXR

    from relight_core import envmap, lighting

    height = 64
    pano = np.full((height, 2 * height, 3), 0.5, np.float32)
    rows = np.s_[height // 2 - 12: height // 2 - 9]
    cols = np.s_[3 * height // 2 - 2: 3 * height // 2 + 1]
    pano[rows, cols] = 1e5  # 30–40° up, 90° to the right (+x)
    with np.errstate(over="ignore"):
        half = pano.astype(np.float16)
    assert np.isinf(half).any()
    header = {"compression": OpenEXR.ZIP_COMPRESSION, "type": OpenEXR.scanlineimage}
    with OpenEXR.File(header, {"RGB": half}) as exr:
        exr.write(str(tmp_path / "sun.exr"))
    read = io.read_panorama(tmp_path / "sun.exr")
    assert np.isfinite(read).all() and read[rows, cols].min() >= io.HALF_FLOAT_MAX
    direction = envmap.dominant_direction(lighting.environment_from_hdri(read).sh)
    assert direction[0] > 0.8


def test_writers_round_trip(tmp_path):
    linear = io.read_image(PORTRAIT_RGB)
    alpha = np.linspace(0, 1, linear.shape[1], dtype=np.float32)[None].repeat(linear.shape[0], 0)
    io.write_png_srgb8(tmp_path / "a.png", linear, alpha)
    back = np.asarray(Image.open(tmp_path / "a.png"))
    assert back.shape[2] == 4
    assert np.array_equal(back[..., :3], np.asarray(Image.open(PORTRAIT_RGB).convert("RGB")))
    every_code = np.arange(256, dtype=np.uint8)
    assert np.array_equal(io.to_srgb8(io.decode_srgb(every_code)), every_code)


def test_8bit_encoding_is_the_same_across_its_bands():
    """Large layers are encoded in bands; the band edges must not show."""
    steps = 15 * (io._BAND // 5 + 823)  # three full bands and a partial one
    linear = np.linspace(-0.1, 1.1, steps, dtype=np.float32).reshape(-1, 5, 3)[:, ::-1]
    encoded = io.to_srgb8(linear)
    assert encoded.shape == linear.shape and encoded.dtype == np.uint8
    exact = np.round(io.linear_to_srgb(linear) * 255.0)
    assert np.abs(encoded.astype(int) - exact).max() <= 1
    assert np.array_equal(io.alpha_to_u8(linear), np.floor(np.clip(linear, 0, 1) * 255 + 0.5))


@pytest.mark.parametrize("case", ["missing", "folder", "empty", "text", "one_pixel", "too_big",
                                  "flat_0x"])
def test_bad_files_raise_one_clear_error(tmp_path, case):
    path = tmp_path / f"{case}.png"
    limit = io.DEFAULT_MAX_MEGAPIXELS
    if case == "folder":
        path.mkdir()
    elif case == "empty":
        path.write_bytes(b"")
    elif case == "text":
        path.write_text("this is not an image\n")
    elif case == "one_pixel":
        Image.new("RGB", (1, 1)).save(path)
    elif case == "too_big":
        Image.open(PORTRAIT_RGB).save(path)
        limit = 0.1
    elif case == "flat_0x":
        Image.new("RGB", (1, 40)).save(path)
    with pytest.raises(RelightError) as raised:
        io.read_image(path, max_megapixels=limit)
    assert raised.value.code == "bad_input"
    assert str(path) in raised.value.message and "\n" not in raised.value.message


def test_panorama_must_be_two_to_one(tmp_path):
    path = tmp_path / "wide.png"
    Image.new("RGB", (300, 200), (90, 120, 200)).save(path)
    with pytest.raises(RelightError, match="2 × height"):
        io.read_panorama(path)


def test_embedded_colour_profile_is_converted_to_srgb(tmp_path):
    """An Adobe RGB photo's colours are what a colour-managed viewer shows (its saturated
    red is redder in sRGB terms); an sRGB-tagged one keeps the decoder's exact pixels."""
    from PIL import ImageCms

    pixels = np.zeros((8, 8, 3), np.uint8)
    pixels[:4] = (180, 60, 40)  # a saturated red
    pixels[4:] = (128, 128, 128)  # grey: the same in both spaces (same white, similar curves)
    tagged = tmp_path / "adobe.png"
    Image.fromarray(pixels).save(tagged, icc_profile=matrix_profile(ADOBE_RGB_D50, 2.2))
    linear = io.read_image(tagged)
    # the same colour through Adobe RGB's own (D65) matrix, then XYZ → linear sRGB
    adobe_to_xyz = np.array([[0.5767, 0.1856, 0.1882], [0.2974, 0.6273, 0.0753],
                             [0.0270, 0.0707, 0.9911]])
    xyz_to_srgb = np.array([[3.2406, -1.5372, -0.4986], [-0.9689, 1.8758, 0.0415],
                            [0.0557, -0.2040, 1.0570]])
    expected = xyz_to_srgb @ adobe_to_xyz @ ((np.array([180, 60, 40]) / 255.0) ** 2.2)
    assert np.allclose(linear[0, 0], np.clip(expected, 0, 1), atol=0.02), (linear[0, 0], expected)
    assert linear[0, 0, 0] > io.decode_srgb(np.array([180], np.uint8))[0] + 0.03  # redder
    assert np.allclose(linear[6, 6], linear[6, 6].mean(), atol=0.01)  # grey stays grey

    srgb_tagged = tmp_path / "srgb.jpg"
    Image.fromarray(pixels).save(srgb_tagged, quality=95, icc_profile=ImageCms.ImageCmsProfile(
        ImageCms.createProfile("sRGB")).tobytes())
    untagged = tmp_path / "plain.jpg"
    Image.fromarray(pixels).save(untagged, quality=95)
    assert np.array_equal(io.read_image(srgb_tagged), io.read_image(untagged))
    # a real photo tagged with the profile of the Mac display it was saved on ("Display")
    shown = io.read_image(PORTRAIT_DISPLAY)
    as_srgb = io.decode_srgb(np.asarray(Image.open(PORTRAIT_DISPLAY).convert("RGB")))
    shift = np.abs(shown - as_srgb)
    assert 0.002 < shift.mean() < 0.05 and shift.max() < 0.2
    broken = tmp_path / "broken.png"
    Image.fromarray(pixels).save(broken, icc_profile=b"not a profile" * 20)
    assert np.array_equal(io.read_image(broken), io.decode_srgb(pixels))


def test_profile_of_a_16bit_file_is_named_not_applied(tmp_path):
    """LittleCMS (through Pillow) transforms 8-bit pixels only: a 16-bit file keeps its
    precision and is read as sRGB, and the caller is told which profile was left unapplied."""
    import tifffile

    codes = (np.arange(32 * 32 * 3, dtype=np.uint32) * 61 % 65536).astype(np.uint16)
    codes = codes.reshape(32, 32, 3)
    tagged = tmp_path / "deep.tif"
    tifffile.imwrite(tagged, codes, photometric="rgb",
                     iccprofile=matrix_profile(ADOBE_RGB_D50, 2.2))
    notes: list[str] = []
    image = io.read_image(tagged, notes=notes)
    c = codes / 65535.0
    np.testing.assert_allclose(image, np.where(c <= 0.04045, c / 12.92,
                                               ((c + 0.055) / 1.055) ** 2.4), atol=2e-6)
    assert len(notes) == 1 and "deep.tif" in notes[0] and "16-bit" in notes[0]
    assert "Adobe-like test profile" in notes[0]
    plain = tmp_path / "plain.tif"
    tifffile.imwrite(plain, codes, photometric="rgb")
    io.read_image(plain, notes=notes)
    io.read_image(PORTRAIT_DISPLAY, notes=notes)  # 8-bit: converted, nothing to say
    assert len(notes) == 1
