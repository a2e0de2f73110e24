"""The README's contact sheet: one real portrait relit onto shared backgrounds and one HDRI.

Columns: portrait | plain paste (our matte and decontaminated foreground over the background,
no relighting) | relit composite (default settings) | shading layer (E/π, clipped at 1).
Rows 1–4 light the person from the background *photo* alone (the estimate of
``relight_core.lighting``); row 5 uses the scene's own HDR panorama turned so the sun comes
from the right.

    python bench/contact_sheet.py [--out docs/contact-sheet.png] [--height 240]

Each row is what ``relight run PORTRAIT BACKGROUND`` writes (``composite.png``,
``shading.png``); the portrait is prepared once and re-lit per row, as the fast re-light does.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from relight_core import io
from relight_core.pipeline import Relighter, Settings

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
PORTRAIT = DATA / "portraits" / "05_woman_long_wavy_hair_window_light_cc0.png"
ROWS = [  # (label, background, hdri, settings)
    ("spruit_sunrise_pylons", "spruit_sunrise_pylons.jpg", None, Settings()),
    ("potsdamer_platz", "potsdamer_platz.png", None, Settings()),
    ("rooitou_park_towards_sun", "rooitou_park_towards_sun.png", None, Settings()),
    ("st_fagans_hall", "st_fagans_hall.png", None, Settings()),
    ("HDRI, sun from the right", "rooitou_park_away_from_sun.png", "rooitou_park_1k.hdr",
     Settings(rotate_deg=80, strength=0.6)),
]


def _tile(linear: np.ndarray, height: int) -> np.ndarray:
    """Linear float image → sRGB uint8 tile of the given height."""
    srgb = io.to_srgb8(np.clip(linear[..., :3], 0.0, 1.0))
    width = round(srgb.shape[1] * height / srgb.shape[0])
    return np.asarray(Image.fromarray(srgb).resize((width, height), Image.LANCZOS))


def _paste(foreground: np.ndarray, alpha: np.ndarray, background: np.ndarray) -> np.ndarray:
    """Plain linear-light paste of the cut-out over the background scaled to cover it."""
    height, width = alpha.shape
    scale = max(height / background.shape[0], width / background.shape[1])
    size = (max(width, round(background.shape[1] * scale)),
            max(height, round(background.shape[0] * scale)))
    covered = np.asarray(io.resize_linear(background, *size))
    top, left = (size[1] - height) // 2, (size[0] - width) // 2
    covered = covered[top:top + height, left:left + width, :3]
    return foreground * alpha[..., None] + covered * (1 - alpha[..., None])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "contact-sheet.png")
    parser.add_argument("--height", type=int, default=240, help="row height in pixels")
    args = parser.parse_args(argv)
    if not PORTRAIT.exists():
        print(f"contact_sheet: {PORTRAIT} is missing (../shared/data beside the checkout)",
              file=sys.stderr)
        return 2
    portrait = io.read_image(PORTRAIT)
    relighter = Relighter(portrait, Settings())
    gap = np.full((args.height, 6, 3), 255, np.uint8)
    rows = []
    for label, background_name, hdri_name, settings in ROWS:
        background = io.read_image(DATA / "backgrounds" / background_name)[..., :3]
        hdri = io.read_panorama(DATA / "hdri" / hdri_name) if hdri_name else None
        layers = relighter.relight(background, hdri=hdri, settings=settings)
        tiles = [_tile(portrait, args.height),
                 _tile(_paste(layers.foreground, layers.alpha, background), args.height),
                 _tile(layers.composite, args.height), _tile(layers.shading, args.height)]
        row = np.concatenate([t for tile in tiles for t in (tile, gap)][:-1], axis=1)
        rows.append(row)
        print(f"{label}: key {layers.light.get('key_light', {}).get('direction')}")
    width = max(row.shape[1] for row in rows)
    rows = [np.pad(row, ((0, 6), (0, width - row.shape[1]), (0, 0)), constant_values=255)
            for row in rows]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.concatenate(rows, axis=0)[:-6]).save(args.out, optimize=True)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
