"""bench/fetch_panoramas.py: the held-out panoramas are decoded and oriented right.

The lighting benchmark's unseen set is only as good as this conversion: a mini-float decoded
wrongly or a cube face turned the wrong way would put the sun in the wrong place and the
"truth" with it. No download here; the KTX container is built in memory.
"""

from __future__ import annotations

import importlib.util
import struct
from pathlib import Path

import numpy as np

_SPEC = importlib.util.spec_from_file_location(
    "fetch_panoramas", Path(__file__).resolve().parents[1] / "bench" / "fetch_panoramas.py")
fetch = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(fetch)


def _pack(r_bits: int, g_bits: int, b_bits: int) -> int:
    return r_bits | (g_bits << 11) | (b_bits << 22)


def test_r11g11b10_mini_floats_decode_to_their_values():
    # 1.0 = exponent 15 (bias 15), mantissa 0; 2.0 = exponent 16; 0.5 = exponent 14;
    # 1.5 = exponent 15 with the top mantissa bit (6-bit R/G, 5-bit B)
    words = np.array([_pack(15 << 6, 16 << 6, 14 << 5),
                      _pack((15 << 6) | 32, (15 << 6) | 32, (15 << 5) | 16),
                      _pack(0, 0, 0)], np.uint32)
    rgb = fetch.decode_r11g11b10(words)
    np.testing.assert_array_equal(rgb, [[1.0, 2.0, 0.5], [1.5, 1.5, 1.5], [0.0, 0.0, 0.0]])


def _ktx_cube(faces_rgb_bits: list[tuple[int, int, int]], size: int = 4) -> bytes:
    """A KTX 1 cube map, R11G11B10F, one colour per face."""
    header = struct.pack("<12I", 0x04030201, 0x8C3B, 1, 0x8C3A, 0x8C3A, 0x8C3A, size, size, 0,
                         0, 6, 1) + struct.pack("<I", 0)
    identifier = b"\xabKTX 11\xbb\r\n\x1a\n"
    face_bytes = size * size * 4
    body = struct.pack("<I", face_bytes)
    for r, g, b in faces_rgb_bits:
        body += np.full(size * size, _pack(r, g, b), "<u4").tobytes()
    return identifier + header + body


def test_cube_faces_land_where_the_shared_convention_puts_them():
    one, two = 15 << 6, 16 << 6  # 1.0 and 2.0 in the 11-bit channels
    # +X red, −X green, +Y (up) blue-ish white, −Y (down) black, +Z grey, −Z (ahead) yellow
    faces = fetch.read_ktx_cube(_ktx_cube([(two, 0, 0), (0, two, 0), (one, one, 16 << 5),
                                           (0, 0, 0), (one, one, 15 << 5), (two, two, 0)]))
    assert [face.shape for face in faces] == [(4, 4, 3)] * 6
    pano = fetch.cube_to_equirect(faces, height=32)
    assert pano.shape == (32, 64, 3)
    np.testing.assert_array_equal(pano[0, 10], [1.0, 1.0, 2.0])       # zenith: +Y
    np.testing.assert_array_equal(pano[-1, 10], [0.0, 0.0, 0.0])      # nadir: −Y
    np.testing.assert_array_equal(pano[16, 32], [2.0, 2.0, 0.0])      # centre column: −z
    np.testing.assert_array_equal(pano[16, 48], [2.0, 0.0, 0.0])      # u = 0.75: +x
    np.testing.assert_array_equal(pano[16, 16], [0.0, 2.0, 0.0])      # u = 0.25: −x
    np.testing.assert_array_equal(pano[16, 0], [1.0, 1.0, 1.0])       # seam: +z


def test_equirect_directions_match_the_shared_tools():
    # cube_to_equirect samples envmap's grid, which follows ../shared/data/tools/pano.py
    from relight_core import envmap

    d = envmap.direction_grid(8).astype(np.float64)
    assert d.shape == (8, 16, 3)
    np.testing.assert_allclose(np.linalg.norm(d, axis=-1), 1.0, atol=1e-6)
    # the centre column looks along −z; rows run from the zenith down
    assert d[4, 8, 2] < -0.9 and d[0, 8, 1] > 0.9 and d[-1, 8, 1] < -0.9
