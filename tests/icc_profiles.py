"""A minimal ICC profile for the colour-management tests (no profile file is needed)."""

from __future__ import annotations

import struct

import numpy as np

# Adobe RGB (1998)'s colorants, D50-adapted as ICC profiles store them (rows R, G, B; XYZ)
ADOBE_RGB_D50 = np.array([[0.6097, 0.3111, 0.0195], [0.2053, 0.6257, 0.0609],
                          [0.1492, 0.0632, 0.7446]])


def matrix_profile(colorants_d50: np.ndarray, gamma: float) -> bytes:
    """A minimal ICC v2 RGB display profile: three colorants (XYZ, D50-adapted, rows R, G, B),
    a D50 white point and one gamma curve per channel (what Adobe RGB and Display P3 files
    carry, P3 with a parametric curve instead)."""

    def s15(value: float) -> bytes:
        return struct.pack(">i", round(value * 65536))

    def xyz(values) -> bytes:
        return b"XYZ \0\0\0\0" + b"".join(s15(v) for v in values)

    curve = b"curv\0\0\0\0" + struct.pack(">IH", 1, round(gamma * 256)) + b"\0\0"
    text = b"Adobe-like test profile\0"
    description = (b"desc\0\0\0\0" + struct.pack(">I", len(text)) + text
                   + struct.pack(">II", 0, 0) + struct.pack(">HB", 0, 0) + b"\0" * 67)
    d50 = (0.9642, 1.0, 0.8249)
    tags = [(b"desc", description), (b"wtpt", xyz(d50)), (b"rXYZ", xyz(colorants_d50[0])),
            (b"gXYZ", xyz(colorants_d50[1])), (b"bXYZ", xyz(colorants_d50[2])),
            (b"rTRC", curve), (b"gTRC", curve), (b"bTRC", curve)]
    offset = 128 + 4 + 12 * len(tags)
    table, data = b"", b""
    for signature, body in tags:
        body += b"\0" * (-len(body) % 4)
        table += signature + struct.pack(">II", offset + len(data), len(body))
        data += body
    size = offset + len(data)
    header = (struct.pack(">I", size) + b"\0" * 4 + struct.pack(">I", 0x02100000) + b"mntrRGB XYZ "
              + b"\0" * 12 + b"acsp" + b"\0" * 24 + struct.pack(">I", 0)
              + b"".join(s15(v) for v in d50) + b"\0" * 48)
    return header + struct.pack(">I", len(tags)) + table + data
