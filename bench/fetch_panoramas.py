"""Fetch 17 HDR panoramas that development never saw, for a held-out lighting evaluation.

Two wheels on PyPI carry real HDR environment maps:

* ``bpy`` 4.2.0 (Blender as a module): ``datafiles/studiolights/world/*.exr``, CC0
  panoramas by Greg Zaal (HDRI Haven, per the ``license.txt`` beside them), and USD's
  ``StinsonBeach.hdr``; its ``sunrise.exr`` is the shared data's spruit_sunrise (the same
  pixels) and is left out;
* ``open3d`` 0.18.0: ``resources/*_skybox.ktx``, nine cube maps (R11G11B10F, 256² per face)
  of HDRI Haven scenes (its ``default`` is a synthetic gradient and is left out).

They are downloaded once (about 0.9 GB, kept in ``bench/out/wheels``), converted to 1024×512
equirectangular ``.hdr`` in the shared panoramas' convention (``../shared/data/tools/pano.py``:
centre column looks along −z, +y up) and written to ``bench/out/panoramas``. Nothing of them
enters the repository. Then::

    bench/bench_lighting.py --render-views DIR --panoramas bench/out/panoramas --seed 5 \\
        --per-panorama 4
    bench/bench_lighting.py --views DIR ...
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import zipfile
from pathlib import Path

import cv2
import numpy as np

from relight_core import envmap, io

ROOT = Path(__file__).resolve().parents[1]
WHEELS = ROOT / "bench" / "out" / "wheels"
OUT = ROOT / "bench" / "out" / "panoramas"
SOURCES = {"bpy==4.2.0": "bpy-4.2.0-", "open3d==0.18.0": "open3d-0.18.0-"}
HEIGHT = 512
SHARED_SCENES = {"sunrise"}  # Blender's sunrise.exr is ../shared/data's spruit_sunrise


def fetch_wheels(folder: Path) -> list[Path]:
    """The two wheels (pip download, no dependencies), reusing any already in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    wheels = []
    for requirement, prefix in SOURCES.items():
        found = sorted(folder.glob(prefix + "*.whl"))
        if not found:
            subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps",
                            "--only-binary", ":all:", "-d", str(folder), requirement],
                           check=True)
            found = sorted(folder.glob(prefix + "*.whl"))
        wheels.append(found[0])
    return wheels


def decode_r11g11b10(words: np.ndarray) -> np.ndarray:
    """Packed GL_R11F_G11F_B10F texels (uint32) → float32 RGB (unsigned mini-floats,
    5-bit exponent with bias 15; 6-bit mantissas for R and G, 5-bit for B)."""
    def mini_float(bits: np.ndarray, mantissa_bits: int) -> np.ndarray:
        exponent = ((bits >> mantissa_bits) & 31).astype(np.float64)
        mantissa = (bits & ((1 << mantissa_bits) - 1)) / float(1 << mantissa_bits)
        return np.where(exponent == 0, mantissa * 2.0 ** -14,
                        (1 + mantissa) * 2.0 ** (exponent - 15)).astype(np.float32)
    return np.stack([mini_float(words & 0x7FF, 6), mini_float((words >> 11) & 0x7FF, 6),
                     mini_float((words >> 22) & 0x3FF, 5)], axis=-1)


def read_ktx_cube(data: bytes) -> list[np.ndarray]:
    """A KTX 1 cube map (one mip level, R11G11B10F) → its six faces +X −X +Y −Y +Z −Z."""
    header = np.frombuffer(data[12:64], "<u4")
    if header[4] != 0x8C3A or header[10] != 6:  # glInternalFormat GL_R11F_G11F_B10F, faces
        raise ValueError("not an R11G11B10F cube map")
    width, height, key_value_bytes = int(header[6]), int(header[7]), int(header[12])
    offset = 64 + key_value_bytes
    face_bytes = int(np.frombuffer(data[offset:offset + 4], "<u4")[0])
    offset += 4
    faces = []
    for _ in range(6):
        words = np.frombuffer(data[offset:offset + face_bytes], "<u4").reshape(height, width)
        faces.append(decode_r11g11b10(words))
        offset += face_bytes
    return faces


def cube_to_equirect(faces: list[np.ndarray], height: int = HEIGHT) -> np.ndarray:
    """OpenGL cube-map faces → equirectangular panorama (nearest texel)."""
    d = envmap.direction_grid(height).astype(np.float64)  # the shared convention
    x, y, z = d[..., 0], d[..., 1], d[..., 2]
    ax, ay, az = np.abs(x), np.abs(y), np.abs(z)
    on_x, on_y = (ax >= ay) & (ax >= az), (ay > ax) & (ay >= az)
    on_z = ~on_x & ~on_y
    # OpenGL's table: face → (major axis mask, s coordinate, t coordinate, |major axis|)
    table = [(on_x & (x > 0), -z, -y, ax), (on_x & (x <= 0), z, -y, ax),
             (on_y & (y > 0), x, z, ay), (on_y & (y <= 0), x, -z, ay),
             (on_z & (z > 0), x, -y, az), (on_z & (z <= 0), -x, -y, az)]
    out = np.zeros(d.shape, np.float32)
    size = faces[0].shape[0]
    for face, (mask, s, t, major) in zip(faces, table, strict=True):
        col = np.clip(((s[mask] / major[mask] + 1) / 2 * size).astype(int), 0, size - 1)
        row = np.clip(((t[mask] / major[mask] + 1) / 2 * size).astype(int), 0, size - 1)
        out[mask] = face[row, col]
    return out


def read_member(archive: zipfile.ZipFile, member: str, scratch: Path) -> np.ndarray:
    """A panorama file (.exr or .hdr) inside the wheel → (h, 2h, 3) float32 linear."""
    path = scratch / Path(member).name
    path.write_bytes(archive.read(member))
    try:
        return io.read_panorama(path)
    finally:
        path.unlink()


def to_size(panorama: np.ndarray, height: int = HEIGHT) -> np.ndarray:
    return cv2.resize(panorama, (2 * height, height), interpolation=cv2.INTER_AREA)


def write_hdr(path: Path, panorama: np.ndarray) -> None:
    cv2.imwrite(str(path), np.ascontiguousarray(panorama[..., ::-1]).astype(np.float32))


def extract(wheels: list[Path], out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for wheel in wheels:
        with zipfile.ZipFile(wheel) as archive:
            for member in archive.namelist():
                stem = Path(member).stem.lower()
                if "/studiolights/world/" in member and member.endswith(".exr") \
                        and stem not in SHARED_SCENES:
                    panorama = read_member(archive, member, out)
                    name = f"blender_{stem}"
                elif member.endswith("StinsonBeach.hdr"):
                    panorama = read_member(archive, member, out)
                    name = "usd_stinsonbeach"
                elif member.endswith("_skybox.ktx") and "default" not in stem:
                    panorama = cube_to_equirect(read_ktx_cube(archive.read(member)))
                    name = "open3d_" + stem.removesuffix("_skybox")
                else:
                    continue
                path = out / f"{name}.hdr"
                write_hdr(path, to_size(np.asarray(panorama, np.float32)))
                written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wheels", type=Path, default=WHEELS, help="where the wheels are kept")
    parser.add_argument("--out", type=Path, default=OUT, help="where the .hdr files go")
    args = parser.parse_args(argv)
    written = extract(fetch_wheels(args.wheels), args.out)
    print(f"wrote {len(written)} panoramas into {args.out}")
    return 0 if len(written) == 17 else 1


if __name__ == "__main__":
    sys.exit(main())
