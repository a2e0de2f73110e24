"""Pure logic of the Krita adapter: pixel formats, input checks and the output-layer plan.

No Krita and no Qt in here, so it is tested without a host (tests/test_krita_adapter.py).

Krita hands out pixels in the layer's own colour space, row-major and interleaved:
integer depths (U8, U16) as B, G, R, A; float depths (F16, F32) as R, G, B, A. Integer RGB
documents use an sRGB-tone-curve profile (encoded values); Krita's default float profile is
``sRGB-elle-V2-g10.icc`` (linear, gamma 1.0).
"""

from __future__ import annotations

from dataclasses import dataclass

DEPTH_TO_DTYPE = {"U8": "u8", "U16": "u16", "F16": "f16", "F32": "f32"}
BYTES_PER_CHANNEL = {"U8": 1, "U16": 2, "F16": 2, "F32": 4}
MODEL_NAMES = {
    "RGBA": "RGB",
    "GRAYA": "greyscale",
    "CMYKA": "CMYK",
    "LABA": "L*a*b*",
    "XYZA": "XYZ",
    "YCbCrA": "YCbCr",
    "A": "alpha-only",
}
# Output layers the user can choose; "relit" always comes (it carries the matte).
OUTPUT_CHOICES = ("relit", "components", "normals", "composite")
DEFAULT_OUTPUTS = ("relit", "components", "composite")


class InputError(Exception):
    """Bad input the user can fix; ``str(err)`` is one line for the docker."""


@dataclass(frozen=True)
class PixelFormat:
    """How a Krita layer's bytes are laid out, in the worker protocol's terms."""

    depth: str  # Krita's colour depth id: U8, U16, F16, F32
    dtype: str  # protocol dtype: u8, u16, f16, f32
    channel_order: str  # BGRA (integer) or RGBA (float)
    encoding: str  # srgb or linear

    @property
    def bytes_per_pixel(self) -> int:
        return 4 * BYTES_PER_CHANNEL[self.depth]


def profile_is_linear(profile: str) -> bool:
    """Krita's linear RGB profiles carry g10 / linear in their names."""
    name = profile.lower()
    return "g10" in name or "linear" in name or "scrgb" in name


def pixel_format(color_model: str, color_depth: str, color_profile: str) -> PixelFormat:
    """The protocol format of a layer, or :class:`InputError` for what we do not handle."""
    if color_model != "RGBA":
        kind = MODEL_NAMES.get(color_model, color_model)
        raise InputError(
            f"Relight works on RGB images; this one is {kind}. Convert it with "
            "Image ▸ Convert Image Color Space… (RGB/Alpha) and try again."
        )
    if color_depth not in DEPTH_TO_DTYPE:
        raise InputError(f"Relight does not support the colour depth {color_depth}.")
    is_float = color_depth.startswith("F")
    linear = profile_is_linear(color_profile) if is_float else False
    if not is_float and profile_is_linear(color_profile):
        linear = True  # a linear 16-bit integer profile is possible, if rare
    return PixelFormat(
        depth=color_depth,
        dtype=DEPTH_TO_DTYPE[color_depth],
        channel_order="RGBA" if is_float else "BGRA",
        encoding="linear" if linear else "srgb",
    )


def check_rect(width: int, height: int, what: str, max_megapixels: float = 100.0) -> None:
    """Refuse an empty layer or one over the size limit with a message that says why."""
    if width <= 0 or height <= 0:
        raise InputError(f"The {what} layer is empty: paint or paste an image into it first.")
    megapixels = width * height / 1e6
    if megapixels > max_megapixels:
        raise InputError(
            f"The {what} layer is {width}×{height} ({megapixels:.0f} MP); Relight's limit is "
            f"{max_megapixels:.0f} MP. Scale the image down first."
        )


def alpha_is_empty(data: bytes, fmt: PixelFormat, stride_pixels: int = 97) -> bool:
    """True when every sampled pixel is fully transparent (an empty or erased layer).

    Samples every ``stride_pixels``-th pixel so a 100 MP layer costs milliseconds; a layer with
    any real content has far more than one opaque pixel in a hundred.
    """
    bpp = fmt.bytes_per_pixel
    channel = BYTES_PER_CHANNEL[fmt.depth]
    alpha_offset = 3 * channel
    count = len(data) // bpp
    zero = bytes(channel)
    for index in range(0, count, stride_pixels):
        start = index * bpp + alpha_offset
        if data[start : start + channel] != zero:
            return False
    return True


@dataclass(frozen=True)
class LayerSpec:
    """One output paint layer: what the worker must return and how Krita shows it."""

    key: str  # the worker's layer name: relit, albedo, shading, specular, normals, composite
    name: str  # the layer name in Krita
    blending: str  # Krita composite-op id
    visible: bool
    parent: str  # "" = inside the Relight group; "components" = inside its sub-group
    masked: bool  # gets the matte as a transparency mask


def output_plan(
    outputs: tuple[str, ...] | list[str], integer_depth: bool = False
) -> list[LayerSpec]:
    """The new layers, top to bottom inside the "Relight" group.

    The relit person (with the matte as a transparency mask) is on top and visible; under it
    the composite (visible, opaque: relit over the background), so the group shows the
    finished picture. The components sub-group (hidden, since it shows the same as "relit")
    stacks albedo (Normal), shading (Multiply) and specular (Addition), which together
    reproduce the relit person; it carries the matte too. Normals are hidden.

    Integer layers clip at 1 but diffuse shading may exceed 1 under bright light, so integer
    documents get "Shading over 1" (albedo × max(shading − 1, 0), Addition) as well: albedo ×
    clipped shading + that = albedo × shading. (Krita blends integer layers in their encoded
    values, so the stack matches "Relit" closely but exactly only in linear float documents.)
    """
    chosen = set(outputs) | {"relit"}
    unknown = chosen - set(OUTPUT_CHOICES)
    if unknown:
        raise InputError(f"unknown output layers: {', '.join(sorted(unknown))}")
    plan = [LayerSpec("relit", "Relit", "normal", True, "", True)]
    if "components" in chosen:
        plan += [
            LayerSpec("specular", "Specular", "add", True, "components", False),
        ]
        if integer_depth:
            plan.append(LayerSpec("shading_over", "Shading over 1", "add", True, "components",
                                  False))
        plan += [
            LayerSpec("shading", "Shading", "multiply", True, "components", False),
            LayerSpec("albedo", "Albedo", "normal", True, "components", False),
        ]
    if "normals" in chosen:
        plan.append(LayerSpec("normals", "Normals", "normal", False, "", False))
    if "composite" in chosen:
        plan.append(LayerSpec("composite", "Composite", "normal", True, "", False))
    return plan


def worker_layer_keys(plan: list[LayerSpec], with_alpha: bool) -> list[str]:
    """The layers to ask the worker for; the alpha matte too when it comes as 8-bit."""
    keys = [spec.key for spec in plan]
    return keys + ["alpha"] if with_alpha else keys


def unique_group_name(existing: list[str], base: str = "Relight") -> str:
    """"Relight", or "Relight 2", "Relight 3"… when the document already has one."""
    if base not in existing:
        return base
    number = 2
    while f"{base} {number}" in existing:
        number += 1
    return f"{base} {number}"


def rect_contains(outer: tuple[int, int, int, int], inner: tuple[int, int, int, int]) -> bool:
    """Whether rectangle ``inner`` (x, y, w, h) lies inside ``outer``."""
    ox, oy, ow, oh = outer
    ix, iy, iw, ih = inner
    return ox <= ix and oy <= iy and ix + iw <= ox + ow and iy + ih <= oy + oh


def preview_size_for(width: int, height: int, long_side: int = 256) -> tuple[int, int]:
    """Preview dimensions: the long side ``long_side`` px, aspect kept, never upscaled."""
    scale = min(1.0, long_side / max(width, height))
    return max(1, round(width * scale)), max(1, round(height * scale))
