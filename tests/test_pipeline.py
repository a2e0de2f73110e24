"""relight_core.pipeline end to end on a real portrait (small, for speed)."""

import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from relight_core import io
from relight_core.pipeline import Layers, Relighter, RelightError, Settings

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
PORTRAIT = DATA / "portraits" / "05_woman_long_wavy_hair_window_light_cc0.png"
BACKGROUND = DATA / "backgrounds" / "spruit_sunrise_towards_sun.jpg"


@pytest.fixture(scope="module")
def portrait():
    image = io.read_image(PORTRAIT)
    return cv2.resize(image, (340, 384), interpolation=cv2.INTER_AREA)


@pytest.fixture(scope="module")
def prepared(portrait):
    stages = []
    relighter = Relighter(portrait, Settings(max_size=384),
                          progress=lambda stage, fraction: stages.append((stage, fraction)))
    layers = relighter.relight(io.read_image(BACKGROUND))
    return relighter, layers, stages


def test_every_layer_has_its_contract(prepared, portrait):
    _, layers, _ = prepared
    assert isinstance(layers, Layers)
    height, width = portrait.shape[:2]
    assert layers.alpha.shape == (height, width)
    for name in ("foreground", "normals", "albedo", "shading", "specular", "relit", "composite"):
        array = getattr(layers, name)
        assert array.shape == (height, width, 3) and array.dtype == np.float32, name
        assert np.isfinite(array).all(), name
    assert 0 <= layers.alpha.min() and layers.alpha.max() <= 1
    assert ((layers.alpha > 0.05) & (layers.alpha < 0.95)).sum() > 200  # soft hair edge
    assert 0 <= layers.albedo.min() and layers.albedo.max() <= 1
    assert layers.shading.min() >= 0 and layers.specular.min() >= 0
    person = layers.alpha > 0
    np.testing.assert_allclose(np.linalg.norm(layers.normals[person], axis=-1), 1, atol=1e-3)
    assert layers.faces == 1


def test_layers_stack_to_relit_and_composite(prepared, portrait):
    _, layers, _ = prepared
    assert np.array_equal(layers.albedo * layers.shading + layers.specular, layers.relit)
    from relight_core import composite

    background = composite.cover(io.read_image(BACKGROUND), *portrait.shape[:2])
    expected = layers.relit * layers.alpha[..., None] + background * (1 - layers.alpha[..., None])
    np.testing.assert_allclose(layers.composite, expected, atol=1e-5)
    opaque = layers.alpha == 1
    assert np.array_equal(layers.composite[opaque], layers.relit[opaque])


def test_light_comes_from_the_scene(prepared):
    """The light report is complete and the sunrise light is warm."""
    _, layers, _ = prepared
    light = layers.light
    assert len(light["sh"]) == 9 and len(light["dominant_direction"]) == 3
    assert light["dominant_colour"][0] > light["dominant_colour"][2]  # sunrise light is warm
    assert light["advice"] == [] and layers.warnings == []  # the sun is in view


def test_a_guessed_sun_is_a_warning_the_host_shows(portrait):
    """Under a clear sky with no sun in view and no sky pattern to place it (the meadow of
    immenstadter_horn.png), the estimate's guess is said, with the control that fixes it."""
    meadow = io.read_image(DATA / "backgrounds" / "immenstadter_horn.png")
    relighter = Relighter(portrait, Settings(max_size=256))
    layers = relighter.relight(meadow)
    assert layers.light["advice"] and layers.warnings == layers.light["advice"]
    assert "turn the light's rotation" in layers.warnings[0]
    turned = relighter.relight(meadow, settings=Settings(max_size=256, rotate_deg=90))
    assert turned.warnings == []  # the user has placed the light


def test_progress_timings_and_fast_relight(prepared):
    relighter, layers, stages = prepared
    names = [stage for stage, _ in stages]
    for stage in ("detect", "matting", "geometry", "albedo", "lighting", "shading", "composite"):
        assert stage in names and stage in layers.timings
    fractions = [fraction for _, fraction in stages]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    background = io.read_image(BACKGROUND)
    turned = relighter.relight(background, settings=Settings(rotate_deg=180, shininess=0.8))
    assert not np.allclose(turned.shading, layers.shading)
    assert np.array_equal(turned.alpha, layers.alpha)  # the matte was kept, not recomputed
    kept = relighter.relight(background, settings=Settings(keep_original=1.0))
    np.testing.assert_allclose(kept.relit, kept.foreground, atol=1e-4)
    preview = relighter.relight(background, size=128)
    assert max(preview.alpha.shape) == 128 and preview.composite.shape[:2] == preview.alpha.shape


def test_given_alpha_is_respected(portrait):
    alpha = np.zeros(portrait.shape[:2], np.float32)
    alpha[60:340, 60:280] = 1.0
    alpha[60:340, 55:60] = 0.5
    rgba = np.concatenate([portrait[..., :3], alpha[..., None]], axis=2)
    layers = Relighter(rgba, Settings(max_size=384)).relight(io.read_image(BACKGROUND))
    np.testing.assert_array_equal(layers.alpha, alpha)


def test_hdri_lighting(portrait):
    pano = io.read_panorama(DATA / "hdri" / "kiara_1_dawn_1k.hdr")
    relighter = Relighter(portrait, Settings(max_size=384))
    layers = relighter.relight(io.read_image(BACKGROUND), hdri=pano)
    assert layers.light["source"] == "hdri"
    assert any("exposure" in warning for warning in layers.warnings)
    # a later relight of the same portrait says only what holds for its own light
    assert relighter.relight(io.read_image(BACKGROUND)).warnings == []
    with pytest.raises(RelightError) as raised:
        relighter.relight(io.read_image(BACKGROUND), hdri=pano[:, :700])
    assert raised.value.code == "bad_input"
    # an empty layer picked as the background: refused, not lit as black
    clear = np.zeros((200, 300, 4), np.float32)
    with pytest.raises(RelightError) as raised:
        relighter.relight(clear)
    assert raised.value.code == "bad_input" and "transparent" in str(raised.value)
    clear[..., 3] = 1.0  # the same pixels opaque: a black scene, lit as such
    assert relighter.relight(clear).relit.max() < 1e-3


@pytest.mark.parametrize("case", ["landscape", "flat", "black", "transparent", "tiny", "huge"])
def test_bad_portraits(case):
    if case == "landscape":
        image, code = io.read_image(DATA / "backgrounds" / "empty_warehouse.png"), "no_person"
    elif case == "flat":
        image, code = np.full((200, 200, 3), 0.3, np.float32), "bad_input"
    elif case == "black":  # a 16-bit file holding 8-bit values: codes 0–1 of 255
        image = io.read_image(PORTRAIT)[..., :3] * 3e-4
        code = "bad_input"
    elif case == "transparent":
        image, code = np.zeros((200, 200, 4), np.float32), "bad_input"
    elif case == "tiny":
        image, code = np.zeros((1, 1, 3), np.float32), "bad_input"
    else:
        image, code = np.zeros((1000, 1200, 3), np.float32), "bad_input"
    with pytest.raises(RelightError) as raised:
        relighter = Relighter(image, Settings(max_megapixels=1.0))
        relighter.relight(io.read_image(BACKGROUND))
    assert raised.value.code == code
    if case in ("flat", "black"):
        assert ("almost black" in str(raised.value)) == (case == "black")


def test_cancel_stops_at_the_next_stage(portrait):
    relighter = Relighter(portrait, Settings(max_size=256))
    relighter.cancel()
    with pytest.raises(RelightError) as raised:
        relighter.prepare()
    assert raised.value.code == "cancelled"


def test_a_selection_takes_one_of_two_people():
    """Two portraits side by side, the right one selected: only that person is matted and
    relit, with the matte it gets alone in the picture; the other is background."""
    def at_height(path, height=320):
        image = io.read_image(path)[..., :3]
        width = round(image.shape[1] * height / image.shape[0])
        return cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)

    left = at_height(PORTRAIT)
    right = at_height(DATA / "portraits" / "07_man_outdoor_open_shade_cc0.png")
    both = np.concatenate([left, right], axis=1)
    split = left.shape[1]
    selection = np.zeros(both.shape[:2], np.float32)
    selection[:, split:] = 1.0
    whole = Relighter(both, Settings(max_size=640))
    whole.prepare()
    chosen = Relighter(both, Settings(max_size=640), selection=selection)
    chosen.prepare()
    assert whole.faces == 2 and chosen.faces == 1
    chosen_alpha = chosen.framed_alpha()
    assert whole.alpha[:, :split].mean() > 0.5 and chosen_alpha[:, :split].max() == 0.0
    # away from the selection's edge, the chosen person's matte is nearly what it is alone:
    # cut out in its box, the matte's band has the width it has alone (in the whole picture,
    # almost twice as wide, the hair's 99th-percentile difference is 0.23; here 0.13)
    alone = Relighter(right, Settings(max_size=640))
    alone.prepare()
    difference = np.abs(chosen_alpha[:, split + 8:] - alone.alpha[:, 8:])
    as_in_whole = np.abs(whole.alpha[:, split + 8:] - alone.alpha[:, 8:])
    assert chosen.box is not None and whole.box is None
    assert difference.mean() < 0.006 and np.percentile(difference, 99) < 0.2
    assert np.percentile(difference, 99) < 0.7 * np.percentile(as_in_whole, 99)
    layers = chosen.relight(io.read_image(BACKGROUND))
    assert np.array_equal(layers.composite[:, :split],
                          layers.composite[:, :split] * 0 + layers.composite[:, :split])
    feathered = cv2.GaussianBlur(selection, (0, 0), 6)
    soft = Relighter(both, Settings(max_size=640), selection=feathered)
    soft.prepare()
    inside = chosen_alpha[:, split:split + 30] > 0.99  # where the man's shirt meets the edge
    ramp = soft.framed_alpha()[:, split:split + 30][inside]
    np.testing.assert_allclose(ramp, feathered[:, split:split + 30][inside], atol=0.02)
    with pytest.raises(RelightError, match="selected"):
        Relighter(both, selection=np.zeros_like(selection))
    with pytest.raises(RelightError, match="must cover the portrait"):
        Relighter(both, selection=selection[:, 1:])


def test_a_portrait_the_free_memory_cannot_hold_is_refused_at_once(monkeypatch):
    """Past the memory available the system swaps for minutes or kills a process (the worker,
    or the host): the portrait is refused before any work, with the sizes in the message."""
    from relight_core import pipeline

    monkeypatch.setattr(pipeline, "available_memory_gb", lambda: 4.0)
    pipeline.check_memory(4000, 6000)  # 24 MP: 3.0 GB ≤ 0.9 × 4
    with pytest.raises(RelightError) as raised:
        pipeline.check_memory(6000, 8000)  # 48 MP: 6.0 GB
    assert raised.value.code == "bad_input"
    assert "8000×6000" in str(raised.value) and "4.0 GB" in str(raised.value)
    monkeypatch.setattr(pipeline, "available_memory_gb", lambda: 0.01)
    with pytest.raises(RelightError):
        Relighter(np.zeros((1000, 1000, 3), np.float32))
    monkeypatch.setattr(pipeline, "available_memory_gb", lambda: None)  # unknown: no check
    pipeline.check_memory(6000, 8000)


def test_available_memory_is_read_on_linux():
    from relight_core import pipeline

    available = pipeline.available_memory_gb()
    if sys.platform.startswith("linux"):
        assert available is not None and 0.1 < available < 10_000


def test_an_hdr_portrait_is_cut_out_and_relit_as_the_photo_it_was_made_from(prepared, portrait):
    """The same portrait as scene-linear floats 100× brighter (an EXR render, an HDR layer):
    detection and matting read it at a photographer's exposure, not clipped white (the matte
    was lost whole: mean alpha 0.02), and its foreground layer stays in its own units."""
    from relight_core.pipeline import hdr_portrait_gain

    _, layers, _ = prepared
    hdr = portrait * 100.0
    assert hdr_portrait_gain(portrait) == 1.0 and hdr_portrait_gain(hdr) < 0.02
    hdr_layers = Relighter(hdr, Settings(max_size=384)).relight(io.read_image(BACKGROUND))
    assert np.mean(np.abs(hdr_layers.alpha - layers.alpha)) < 0.01
    person = (layers.alpha > 0.99) & (hdr_layers.alpha > 0.99)
    ratio = hdr_layers.foreground[person].mean() / layers.foreground[person].mean()
    assert 95.0 < ratio < 105.0
    # relit in the background's units: the person's reflectance does not depend on them
    relit_ratio = hdr_layers.relit[person].mean() / layers.relit[person].mean()
    assert 0.8 < relit_ratio < 1.25


def test_a_partly_transparent_background_lights_from_what_it_shows(prepared, portrait):
    """Its sky cut away (transparent, stored black): the person was relit nearly black, with
    no word; now the light comes from the visible part, and a warning says so."""
    _, layers, _ = prepared
    background = io.read_image(BACKGROUND)[..., :3]
    alpha = np.ones(background.shape[:2], np.float32)
    alpha[: background.shape[0] // 2] = 0.0
    rgba = np.dstack([background * alpha[..., None], alpha])
    cut = Relighter(portrait, Settings(max_size=384)).relight(rgba)
    assert any("transparent" in warning for warning in cut.warnings)
    person = layers.alpha > 0.99
    assert cut.relit[person].mean() > 0.3 * layers.relit[person].mean()
