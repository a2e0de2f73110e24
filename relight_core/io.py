"""Read and write images and panoramas; sRGB ↔ linear happens here, once, at the edge.

Contract
--------
* ``read_image(path) -> (H, W, 3|4) float32``: **linear** light, straight (not premultiplied)
  colour; a 4th channel is alpha in [0, 1]. 8/16-bit integer files are sRGB-decoded; float TIFFs
  are taken as already linear. EXIF orientation is applied. Grey images become RGB. An 8-bit
  image with an embedded colour profile other than sRGB (Display P3, Adobe RGB, a CMYK press
  profile) is converted to sRGB first (Pillow's LittleCMS, relative colorimetric), so its
  colours are what a colour-managed viewer shows; 16-bit and float files are taken as they
  are (a 16-bit file's unapplied profile is named in ``notes``). Float pixels come out finite
  and ≥ 0 (``finite_pixels``: +∞, a half float's overflow, stays the brightest light).
* ``read_mask(path) -> (H, W) float32`` in [0, 1]: a selection mask's code values (white = 1),
  no transfer curve.
* ``read_panorama(path) -> (h, 2h, 3) float32`` linear, equirectangular. ``.hdr`` (OpenCV) and
  ``.exr`` (the OpenEXR package) are linear already; 8/16-bit files are sRGB-decoded.
* ``write_png_srgb8(path, linear, alpha=None)``: 8-bit sRGB PNG (RGB or RGBA) for viewing.
* ``write_tiff_linear(path, array)``: lossless float32 linear TIFF (tifffile, zlib).

Every problem with an input file raises :class:`RelightError` with ``code="bad_input"`` and a
one-line message naming the file.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, UnidentifiedImageError

DEFAULT_MAX_MEGAPIXELS = 100.0
MIN_SIDE = 2
ERROR_CODES = ("bad_input", "no_person", "cancelled", "internal")
_EXIF_ORIENTATION = 0x0112
_RELATIVE_COLORIMETRIC = 1  # ImageCms.Intent's value (the enum is newer than Pillow 10.0)
# Pillow's own guard against decompression bombs would fire before ours; we check size ourselves.
Image.MAX_IMAGE_PIXELS = None


class RelightError(Exception):
    """A failure a user can act on. ``code`` ∈ bad_input | no_person | cancelled | internal."""

    def __init__(self, code: str, message: str):
        if code not in ERROR_CODES:
            raise ValueError(f"unknown RelightError code {code!r}")
        super().__init__(message)
        self.code = code
        self.message = message


# ---------------------------------------------------------------- transfer functions

def srgb_to_linear(values: np.ndarray) -> np.ndarray:
    """sRGB-encoded values in [0, 1] → linear float32 (IEC 61966-2-1)."""
    x = np.asarray(values, dtype=np.float32)
    return np.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4).astype(np.float32)


def linear_to_srgb(values: np.ndarray) -> np.ndarray:
    """Linear values → sRGB-encoded float32 in [0, 1] (clipped)."""
    x = np.clip(np.asarray(values, dtype=np.float32), 0.0, 1.0)
    return np.where(x <= 0.0031308, 12.92 * x, 1.055 * np.power(x, 1 / 2.4) - 0.055).astype(
        np.float32
    )


HALF_FLOAT_MAX = 65504.0  # the largest finite half float: what +∞ in pixels is at least


def finite_pixels(pixels: np.ndarray) -> np.ndarray:
    """Float pixels (H, W) or (H, W, C) → float32, finite and ≥ 0 (a copy unless they were).

    NaN, −∞ and negative values become 0 (no light). +∞ is a value too bright for the number
    type it was stored in (a sun in a half-float EXR or layer overflows past 65504), so it
    becomes its channel's largest finite value, at least that lower bound: the light stays the
    brightest thing in the picture instead of turning into a black hole read as shade.
    """
    out = np.asarray(pixels, dtype=np.float32)
    if np.isfinite(out).all():
        return out if out.min() >= 0.0 else np.maximum(out, 0.0)
    out = out.copy()
    channels = out[..., None] if out.ndim == 2 else out
    for channel in range(channels.shape[-1]):
        values = channels[..., channel]  # a view into ``out``
        too_bright = np.isposinf(values)
        values[~np.isfinite(values)] = 0.0
        if too_bright.any():
            values[too_bright] = max(HALF_FLOAT_MAX, float(values.max()))
    np.maximum(out, 0.0, out=out)
    return out


# Lookup tables: a power function over 12 MP × 3 costs ~1 s, a table lookup ~50 ms.
_DECODE_U8 = srgb_to_linear(np.arange(256) / 255.0)
_DECODE_U16 = srgb_to_linear(np.arange(65536) / 65535.0)
_ENCODE_STEPS = 1 << 16
_ENCODE_U8 = np.round(linear_to_srgb(np.arange(_ENCODE_STEPS) / (_ENCODE_STEPS - 1)) * 255).astype(
    np.uint8
)


def decode_srgb(pixels: np.ndarray) -> np.ndarray:
    """uint8/uint16 sRGB code values → linear float32."""
    if pixels.dtype == np.uint8:
        return _DECODE_U8[pixels]
    if pixels.dtype == np.uint16:
        return _DECODE_U16[pixels]
    raise TypeError(f"decode_srgb expects uint8 or uint16, got {pixels.dtype}")


_BAND = 1 << 20  # values converted at a time: the float temporaries stay a few MB


def _to_u8_in_bands(values: np.ndarray, convert: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """``convert`` (float32 1-D chunk, clipped to [0, 1], its own copy → uint8) over ``values``
    in bands: converted whole, a 12 MP layer made ~430 MB of temporaries, several at once when
    the files are written in parallel."""
    values = np.asarray(values, dtype=np.float32)
    out = np.empty(values.shape, np.uint8)
    flat_in, flat_out = values.reshape(-1), out.reshape(-1)
    for start in range(0, flat_in.size, _BAND):
        chunk = np.clip(flat_in[start:start + _BAND], 0.0, 1.0)
        flat_out[start:start + _BAND] = convert(chunk)
    return out


def _encode_chunk(chunk: np.ndarray) -> np.ndarray:
    chunk *= _ENCODE_STEPS - 1
    chunk += 0.5
    return _ENCODE_U8[chunk.astype(np.int32)]


def _quantise_chunk(chunk: np.ndarray) -> np.ndarray:
    chunk *= 255.0
    chunk += 0.5
    return chunk.astype(np.uint8)


def to_srgb8(linear: np.ndarray) -> np.ndarray:
    """Linear float (any shape) → uint8 sRGB, clipped to [0, 1] (finely quantised lookup)."""
    return _to_u8_in_bands(linear, _encode_chunk)


def alpha_to_u8(alpha: np.ndarray) -> np.ndarray:
    """Alpha in [0, 1] → uint8 (alpha is not gamma-encoded)."""
    return _to_u8_in_bands(alpha, _quantise_chunk)


# ---------------------------------------------------------------- reading

def _fail(path: Path, problem: str) -> RelightError:
    return RelightError("bad_input", f"{path}: {problem}")


def _check_size(path: Path, width: int, height: int, max_megapixels: float) -> None:
    if width == 0 or height == 0:
        raise _fail(path, "the image is empty (0 pixels)")
    if width < MIN_SIDE or height < MIN_SIDE:
        raise _fail(path, f"the image is only {width}×{height} pixels; nothing to work on")
    megapixels = width * height / 1e6
    if megapixels > max_megapixels:
        raise _fail(
            path,
            f"the image is {width}×{height} ({megapixels:.0f} MP), over the "
            f"{max_megapixels:g} MP limit; scale it down or raise the limit",
        )


def _open_checked(path: Path) -> None:
    if not path.exists():
        raise _fail(path, "no such file")
    if path.is_dir():
        raise _fail(path, "is a folder, not an image file")
    if path.stat().st_size == 0:
        raise _fail(path, "the file is empty (0 bytes)")
    if not os.access(path, os.R_OK):
        raise _fail(path, "the file cannot be read (permission denied)")


def _orient(pixels: np.ndarray, orientation: int) -> np.ndarray:
    """Apply an EXIF orientation (1..8) to an (H, W, C) array."""
    ops = {
        2: lambda a: a[:, ::-1],
        3: lambda a: a[::-1, ::-1],
        4: lambda a: a[::-1],
        5: lambda a: np.swapaxes(a, 0, 1),
        6: lambda a: np.swapaxes(a, 0, 1)[:, ::-1],
        7: lambda a: np.swapaxes(a, 0, 1)[::-1, ::-1],
        8: lambda a: np.swapaxes(a, 0, 1)[::-1],
    }
    op = ops.get(orientation)
    return np.ascontiguousarray(op(pixels)) if op else pixels


def _decode_cv2(data: bytes) -> np.ndarray | None:
    """Decode with OpenCV keeping depth and alpha; returns RGB(A) or grey, or None."""
    buffer = np.frombuffer(data, dtype=np.uint8)
    pixels = cv2.imdecode(buffer, cv2.IMREAD_UNCHANGED)
    if pixels is None:
        return None
    if pixels.ndim == 3 and pixels.shape[2] == 3:
        pixels = pixels[..., ::-1]
    elif pixels.ndim == 3 and pixels.shape[2] == 4:
        pixels = pixels[..., [2, 1, 0, 3]]
    return np.ascontiguousarray(pixels)


def _decode_pillow(image: Image.Image) -> np.ndarray:
    has_alpha = image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info
    return np.asarray(image.convert("RGBA" if has_alpha else "RGB"))


def _profile_transform(image: Image.Image):
    """LittleCMS transform from the image's embedded ICC profile to sRGB (8-bit RGB or CMYK
    in, RGB out), and the profile's name; None when there is no profile, it maps colours as
    sRGB does (within one code value: most cameras tag JPEGs with sRGB itself), or LittleCMS
    cannot use it (a broken profile is ignored, as viewers ignore it)."""
    icc = image.info.get("icc_profile")
    if not icc or image.mode not in ("RGB", "RGBA", "CMYK"):
        return None
    from io import BytesIO

    from PIL import ImageCms

    colour_mode = "CMYK" if image.mode == "CMYK" else "RGB"
    try:
        profile = ImageCms.ImageCmsProfile(BytesIO(icc))
        transform = ImageCms.buildTransform(profile, ImageCms.createProfile("sRGB"),
                                            colour_mode, "RGB",
                                            renderingIntent=_RELATIVE_COLORIMETRIC)
        name = ImageCms.getProfileDescription(profile).strip() or "unnamed"
    except (ImageCms.PyCMSError, OSError, ValueError):
        return None
    if colour_mode == "RGB":
        levels = np.arange(0, 256, 17, dtype=np.uint8)
        grid = np.stack(np.meshgrid(levels, levels, levels, indexing="ij"), -1).reshape(16, -1, 3)
        probe = np.asarray(ImageCms.applyTransform(Image.fromarray(grid), transform))
        if np.abs(probe.astype(np.int16) - grid).max() <= 1:
            return None
    return transform, name


def _srgb_by_profile(image: Image.Image, transform) -> np.ndarray:
    """An 8-bit RGB(A) or CMYK image → (H, W, 3|4) uint8 sRGB through ``transform`` (alpha
    kept)."""
    from PIL import ImageCms

    colour_mode = "CMYK" if image.mode == "CMYK" else "RGB"
    converted = np.asarray(ImageCms.applyTransform(image.convert(colour_mode), transform))
    if image.mode == "RGBA":
        converted = np.dstack([converted, np.asarray(image.getchannel("A"))])
    return converted


def _to_linear_float(pixels: np.ndarray, path: Path) -> np.ndarray:
    """Integer sRGB / float linear pixels (H,W[,C]) → float32 linear RGB or RGBA."""
    if pixels.ndim == 2:
        pixels = pixels[..., None]
    channels = pixels.shape[2]
    if channels == 2:  # grey + alpha
        pixels = pixels[..., [0, 0, 0, 1]]
    elif channels == 1:
        pixels = np.repeat(pixels, 3, axis=2)
    elif channels > 4:
        pixels = pixels[..., :4]
    if pixels.dtype in (np.uint8, np.uint16):
        colour = decode_srgb(pixels[..., :3])
        if pixels.shape[2] == 4:
            scale = 255.0 if pixels.dtype == np.uint8 else 65535.0
            alpha = pixels[..., 3:4].astype(np.float32) / scale
            colour = np.concatenate([colour, alpha], axis=2)
        return colour
    if np.issubdtype(pixels.dtype, np.floating):
        out = finite_pixels(pixels)  # the decoder's own array: clipping alpha in place is safe
        if out.shape[2] == 4:
            np.clip(out[..., 3], 0.0, 1.0, out=out[..., 3])
        return out
    if np.issubdtype(pixels.dtype, np.integer):  # 32-bit integer TIFFs and the like
        info = np.iinfo(pixels.dtype)
        as_u16 = (pixels.astype(np.float64) / info.max * 65535).clip(0, 65535).astype(np.uint16)
        return _to_linear_float(as_u16, path)
    raise _fail(path, f"unsupported pixel type {pixels.dtype}")


def _read_tiff(path: Path, max_megapixels: float) -> np.ndarray | None:
    """Float / unusual TIFFs Pillow cannot open; None when it is no TIFF at all."""
    import tifffile

    try:
        with tifffile.TiffFile(path) as tiff:
            page = tiff.pages[0]
            planar = len(page.shape) == 3 and page.shape[0] <= 4 < page.shape[2]
            height, width = page.shape[1:3] if planar else page.shape[:2]
            _check_size(path, width, height, max_megapixels)
            pixels = page.asarray()
            return np.moveaxis(pixels, 0, -1) if planar else pixels
    except RelightError:
        raise
    except Exception:  # noqa: BLE001 - any decoder failure means "not a readable TIFF"
        return None


def _read_exr(path: Path, max_megapixels: float) -> np.ndarray:
    """OpenEXR (the ASWF ``OpenEXR`` bindings) → (H, W, 3|4) float32 linear."""
    try:
        import OpenEXR
    except ImportError:
        raise _fail(path, "reading OpenEXR needs the OpenEXR package "
                          "(pip install OpenEXR)") from None
    try:
        with OpenEXR.File(str(path), separate_channels=True) as exr:
            channels = {name: np.asarray(c.pixels) for name, c in exr.channels().items()}
    except Exception as error:  # noqa: BLE001 - report as a bad file, one line
        raise _fail(path, f"not a readable OpenEXR file ({error})") from None
    names = {name.split(".")[-1].upper(): name for name in channels}
    if all(k in names for k in "RGB"):
        planes = [channels[names[k]] for k in "RGB"]
        if "A" in names:
            planes.append(channels[names["A"]])
    elif "Y" in names:
        planes = [channels[names["Y"]]] * 3
    else:
        raise _fail(path, f"no R, G, B or Y channels in the OpenEXR file ({sorted(channels)})")
    height, width = planes[0].shape[:2]
    _check_size(path, width, height, max_megapixels)
    return _to_linear_float(np.stack(planes, axis=2).astype(np.float32), path)


def read_image(path: str | os.PathLike,
               max_megapixels: float = DEFAULT_MAX_MEGAPIXELS,
               notes: list[str] | None = None) -> np.ndarray:
    """Read PNG/JPEG/TIFF/WebP/EXR/HDR (8/16-bit or float, ±alpha) → (H, W, 3|4) float32
    linear.

    The size limit is checked from the header, before any pixel is decoded. ``notes``, when
    given, gets one line for what the reader could not do that changes the colours (a colour
    profile it could not apply to 16-bit pixels).
    """
    path = Path(path)
    _open_checked(path)
    if path.suffix.lower() == ".exr":
        return _read_exr(path, max_megapixels)
    if path.suffix.lower() in RADIANCE_SUFFIXES:
        return _read_radiance(path, max_megapixels)
    return _to_linear_float(_decode_file(path, max_megapixels, notes), path)


RADIANCE_SUFFIXES = (".hdr", ".pic")


def _read_radiance(path: Path, max_megapixels: float) -> np.ndarray:
    """Radiance RGBE (.hdr, OpenCV) → (H, W, 3) float32 linear."""
    pixels = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if pixels is None:
        raise _fail(path, "not a readable Radiance HDR file")
    _check_size(path, pixels.shape[1], pixels.shape[0], max_megapixels)
    if pixels.ndim == 2:
        pixels = np.repeat(pixels[..., None], 3, axis=2)
    return _to_linear_float(np.ascontiguousarray(pixels[..., 2::-1]), path)


def _decode_file(path: Path, max_megapixels: float, notes: list[str] | None,
                 colour_managed: bool = True) -> np.ndarray:
    """A PNG/JPEG/TIFF/WebP file → its pixels as stored (integer code values or floats),
    EXIF orientation applied; 8-bit colour converted to sRGB by its profile when
    ``colour_managed``."""
    try:
        with Image.open(path) as image:
            width, height = image.size
            _check_size(path, width, height, max_megapixels)
            orientation = int(image.getexif().get(_EXIF_ORIENTATION, 1) or 1)
            pixels = _decode_cv2(path.read_bytes())
            if pixels is None or pixels.shape[:2] != (height, width):
                # Pillow handles what OpenCV does not (GIF, palette quirks, …)
                pixels = _decode_pillow(image)
            by_profile = _profile_transform(image) if colour_managed else None
            if by_profile is not None and pixels.dtype == np.uint8:
                pixels = _srgb_by_profile(image, by_profile[0])
            elif by_profile is not None and notes is not None:
                notes.append(f"{path.name}: its embedded colour profile ({by_profile[1]}) was "
                             f"not applied to its {pixels.dtype.itemsize * 8}-bit pixels, "
                             "which are read as sRGB; convert the file to sRGB for true colours")
    except RelightError:
        raise
    except UnidentifiedImageError:
        pixels = _read_tiff(path, max_megapixels)  # float TIFFs are beyond Pillow
        if pixels is None:
            raise _fail(path, "not an image file (format not recognised)") from None
        orientation = 1
    except (OSError, ValueError, SyntaxError) as error:
        raise _fail(path, f"the image cannot be decoded ({error})") from None
    return _orient(pixels, orientation)


def read_mask(path: str | os.PathLike,
              max_megapixels: float = DEFAULT_MAX_MEGAPIXELS) -> np.ndarray:
    """Read a mask (a selection: white = selected) → (H, W) float32 in [0, 1].

    A mask is data, not light: integer code values map linearly to [0, 1] (128 of 255 is half
    selected), with no transfer curve and no colour profile; float files are taken as they
    are. Colour channels are averaged; an alpha channel multiplies in (transparent = not
    selected).
    """
    path = Path(path)
    _open_checked(path)
    if path.suffix.lower() == ".exr":
        pixels = _read_exr(path, max_megapixels)
    else:
        pixels = _decode_file(path, max_megapixels, None, colour_managed=False)
    if pixels.ndim == 2:
        pixels = pixels[..., None]
    if np.issubdtype(pixels.dtype, np.integer):
        values = pixels.astype(np.float32) / float(np.iinfo(pixels.dtype).max)
    elif np.issubdtype(pixels.dtype, np.floating):
        values = np.nan_to_num(pixels.astype(np.float32), nan=0.0, posinf=1.0, neginf=0.0)
    else:
        raise _fail(path, f"unsupported pixel type {pixels.dtype}")
    channels = values.shape[2]
    colour = values[..., :3] if channels >= 3 else values[..., :1]
    mask = colour.mean(axis=2)
    if channels in (2, 4):
        mask = mask * values[..., -1]
    return np.clip(mask, 0.0, 1.0).astype(np.float32)


def read_panorama(
    path: str | os.PathLike, max_megapixels: float = DEFAULT_MAX_MEGAPIXELS
) -> np.ndarray:
    """Read an equirectangular panorama (.hdr, .exr, or any image) → (h, 2h, 3) float32 linear."""
    path = Path(path)
    pano = read_image(path, max_megapixels)[..., :3]
    height, width = pano.shape[:2]
    if width != 2 * height:
        raise _fail(
            path,
            f"a panorama must be equirectangular with width = 2 × height, got {width}×{height}",
        )
    return np.ascontiguousarray(pano[..., :3])


# ---------------------------------------------------------------- writing

def write_png_srgb8(path: str | os.PathLike, linear: np.ndarray, alpha: np.ndarray | None = None):
    """Write linear RGB (H,W,3) or grey (H,W) [+ alpha (H,W)] as an 8-bit sRGB PNG."""
    pixels = to_srgb8(linear)
    if alpha is not None:
        if pixels.ndim == 2:
            pixels = np.repeat(pixels[..., None], 3, axis=2)
        pixels = np.concatenate([pixels, alpha_to_u8(alpha)[..., None]], axis=2)
    Image.fromarray(pixels).save(path, compress_level=3)


def write_png_data8(path: str | os.PathLike, values: np.ndarray):
    """Write data already in [0, 1] (alpha, encoded normals) as 8-bit PNG without gamma."""
    Image.fromarray(alpha_to_u8(values)).save(path, compress_level=3)


def write_exr_linear(path: str | os.PathLike, array: np.ndarray):
    """Write a float32 linear RGB array (H, W, 3) as a ZIP-compressed OpenEXR file."""
    import OpenEXR

    header = {"compression": OpenEXR.ZIP_COMPRESSION, "type": OpenEXR.scanlineimage}
    data = np.ascontiguousarray(array[..., :3], dtype=np.float32)
    with OpenEXR.File(header, {"RGB": data}) as exr:
        exr.write(str(path))


def write_tiff_linear(path: str | os.PathLike, array: np.ndarray):
    """Write a float32 linear array (H,W[,C]) losslessly (zlib) as TIFF."""
    import tifffile

    data = np.ascontiguousarray(array, dtype=np.float32)
    photometric = "rgb" if data.ndim == 3 and data.shape[2] in (3, 4) else "minisblack"
    extras = ["unassalpha"] if data.ndim == 3 and data.shape[2] == 4 else None
    # float data barely compresses (1 MP RGBA: 11.5 MB of 16); zlib's fastest level takes half
    # the time of its default for 2 % more bytes
    tifffile.imwrite(path, data, photometric=photometric, compression="zlib",
                     compressionargs={"level": 1}, extrasamples=extras)


def read_tiff_float(path: str | os.PathLike) -> np.ndarray:
    """Read back a float TIFF written by :func:`write_tiff_linear`."""
    import tifffile

    return tifffile.imread(path).astype(np.float32)


def resize_linear(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """Resize a float image: area averaging when shrinking, bilinear when enlarging."""
    if image.shape[1] == width and image.shape[0] == height:
        return image
    shrinking = width < image.shape[1] and height < image.shape[0]
    interpolation = cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
    channels = image.shape[2] if image.ndim == 3 else 1
    if channels <= 4:
        return cv2.resize(image, (width, height), interpolation=interpolation)
    parts = [cv2.resize(image[..., i], (width, height), interpolation=interpolation)
             for i in range(channels)]
    return np.stack(parts, axis=2)
