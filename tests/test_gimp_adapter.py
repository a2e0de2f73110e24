"""Unit tests of plugin_gimp/relight/relight.py against a fake `Gimp` module (no GIMP needed).

The real-GIMP tests are in test_gimp_host.py; these check the adapter's own logic fast: input
checks, the pixel formats per precision, the request it sends, the layer stack it builds, the
undo group, and that failures become one-line error values, never exceptions.
"""

from __future__ import annotations

import enum
import importlib.util
import itertools
import os
import sys
import types
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PLUGIN = REPO / "plugin_gimp" / "relight" / "relight.py"
_ids = itertools.count(1)


class Nick(enum.Enum):
    @property
    def value_nick(self):
        return self.value


Precision = Nick("Precision", {name: name.lower().replace("_", "-") for name in (
    "U8_LINEAR", "U8_NON_LINEAR", "U8_PERCEPTUAL", "U16_LINEAR", "U16_NON_LINEAR",
    "U32_LINEAR", "HALF_LINEAR", "FLOAT_LINEAR", "FLOAT_NON_LINEAR", "DOUBLE_LINEAR")})


class Buffer:
    def __init__(self, item):
        self.item = item

    def get(self, rect, scale, fmt, abyss):
        self.item.read_formats.append(fmt)
        self.item.read_rects.append((rect.x, rect.y, rect.width, rect.height, abyss))
        size = {"u8": 1, "u16": 2, "float": 4}[fmt.split()[-1]]
        channels = 1 if fmt.startswith("Y ") else 4
        return bytes(rect.width * rect.height * channels * size)

    def set(self, rect, fmt, data):
        self.item.written = (fmt, len(data))

    def flush(self):
        pass


class Item:
    def __init__(self, image, name, width, height, mode="NORMAL", group=False):
        self.id, self.image, self.name = next(_ids), image, name
        self.width, self.height, self.mode, self.group = width, height, mode, group
        self.children, self.parent, self.offsets = [], None, (0, 0)
        self.visible, self.mask, self.written, self.read_formats = True, None, None, []
        self.read_rects, self.apply_mask = [], True
        self.blend_space = self.composite_space = None

    # the Gimp.Layer / Gimp.Drawable calls the plug-in makes
    def get_id(self): return self.id
    def get_name(self): return self.name
    def get_width(self): return self.width
    def get_height(self): return self.height
    def get_offsets(self): return (True, *self.offsets)
    def set_offsets(self, x, y): self.offsets = (x, y)
    def get_parent(self): return self.parent
    def get_children(self): return list(self.children)
    def get_image(self): return self.image
    def is_layer(self): return True
    def is_group_layer(self): return self.group
    def is_valid(self): return True
    def get_buffer(self): return Buffer(self)
    def update(self, *rect): pass
    def set_visible(self, visible): self.visible = visible
    def set_blend_space(self, space): self.blend_space = space
    def set_composite_space(self, space): self.composite_space = space
    def create_mask(self, kind): return Item(self.image, self.name + " mask", self.width,
                                             self.height)
    def add_mask(self, mask): self.mask = mask
    def get_mask(self): return self.mask
    def get_apply_mask(self): return self.apply_mask

    def mask_intersect(self):
        """(touches, x, y, w, h) of the image's selection box (x, y, w, h) and this layer."""
        box = self.image.selection_box
        if box is None:
            return True, 0, 0, self.width, self.height
        x0, y0 = max(box[0], self.offsets[0]), max(box[1], self.offsets[1])
        x1 = min(box[0] + box[2], self.offsets[0] + self.width)
        y1 = min(box[1] + box[3], self.offsets[1] + self.height)
        return x1 > x0 and y1 > y0, x0, y0, max(0, x1 - x0), max(0, y1 - y0)


class Image:
    def __init__(self, base="RGB", precision=Precision.U8_NON_LINEAR):
        self.id, self.base, self.precision, self.layers = next(_ids), base, precision, []
        self.undo_depth, self.undo_groups = 0, 0
        self.selection_box = None  # (x, y, w, h) of a rectangle selection; None: nothing
        self.selection = Item(self, "Selection", 0, 0)

    def get_id(self): return self.id
    def get_selection(self): return self.selection
    def get_base_type(self): return self.base
    def get_precision(self): return self.precision
    def get_layers(self): return list(self.layers)
    def siblings(self, parent): return parent.children if parent else self.layers
    def get_item_position(self, item): return self.siblings(item.parent).index(item)

    def insert_layer(self, layer, parent, position):
        layer.parent = parent
        self.siblings(parent).insert(position, layer)

    def remove_layer(self, layer):
        self.siblings(layer.parent).remove(layer)

    def undo_group_start(self):
        self.undo_depth += 1
        self.undo_groups += 1

    def undo_group_end(self):
        self.undo_depth -= 1


MESSAGES: list = []  # what the plug-in showed with Gimp.message


def fake_gi_modules() -> dict:
    gimp = types.SimpleNamespace(
        ImageBaseType=types.SimpleNamespace(RGB="RGB", GRAY="GRAY", INDEXED="INDEXED"),
        ImageType=types.SimpleNamespace(RGBA_IMAGE="RGBA"),
        LayerMode=types.SimpleNamespace(NORMAL="NORMAL", MULTIPLY="MULTIPLY",
                                        ADDITION="ADDITION"),
        LayerColorSpace=types.SimpleNamespace(RGB_LINEAR="rgb-linear"),
        AddMaskType=types.SimpleNamespace(WHITE="white"),
        PDBStatusType=types.SimpleNamespace(SUCCESS="success", CANCEL="cancel",
                                            EXECUTION_ERROR="execution-error"),
        RunMode=types.SimpleNamespace(INTERACTIVE="interactive",
                                      NONINTERACTIVE="noninteractive"),
        PlugIn=object, main=lambda *a: None,
        progress_init=lambda text: None, progress_set_text=lambda text: None,
        progress_update=lambda fraction: None, progress_end=lambda: None,
        displays_flush=lambda: None, message=MESSAGES.append,
    )
    gimp.Layer = types.SimpleNamespace(
        new=lambda image, name, w, h, kind, opacity, mode: Item(image, name, w, h, mode))
    gimp.Selection = types.SimpleNamespace(is_empty=lambda image: image.selection_box is None)
    gimp.GroupLayer = types.SimpleNamespace(
        new=lambda image, name: Item(image, name, 0, 0, group=True))
    gegl = types.SimpleNamespace(
        Rectangle=types.SimpleNamespace(
            new=lambda x, y, w, h: types.SimpleNamespace(x=x, y=y, width=w, height=h)),
        AbyssPolicy=types.SimpleNamespace(CLAMP="clamp", NONE="none"))
    glib = types.SimpleNamespace(Error=lambda message="": ("GLib.Error", message))
    repository = types.SimpleNamespace(Gimp=gimp, Gegl=gegl, GLib=glib,
                                       GObject=types.SimpleNamespace())
    gi = types.SimpleNamespace(require_version=lambda *a: None, repository=repository)
    return {"gi": gi, "gi.repository": repository}


@pytest.fixture
def plugin(monkeypatch):
    for name, module in fake_gi_modules().items():
        monkeypatch.setitem(sys.modules, name, module)
    spec = importlib.util.spec_from_file_location("relight_gimp_plugin", PLUGIN)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class FakeClient:
    """Answers a relight request by writing every requested layer in the requested format."""

    requests: list = []
    error = None
    warnings: list = []
    shading_over_max = 0.4

    def __init__(self):
        self.closed = False

    def request(self, op, params, progress=None):
        from relight_core import client

        FakeClient.requests.append((op, params))
        if FakeClient.error is not None:
            raise FakeClient.error
        progress("matting", 0.5, "matting")
        portrait = params["portrait"]
        output = params["output"]
        layers = {}
        for name in params["layers"]:
            order = "Y" if name == "alpha" else output["channel_order"]
            descriptor = client.pixel_descriptor(
                os.path.join(output["dir"], name + ".raw"), portrait["width"],
                portrait["height"], output["dtype"], output["encoding"], order)
            client.write_pixels(descriptor, bytes(client.expected_size(descriptor)))
            descriptor["max"] = FakeClient.shading_over_max if name == "shading_over" else 1.0
            layers[name] = descriptor
        return {"type": "result", "layers": layers, "warnings": list(FakeClient.warnings)}

    def close(self):
        self.closed = True


def scene(precision=Precision.U8_NON_LINEAR, base="RGB"):
    image = Image(base, precision)
    portrait = Item(image, "Portrait", 40, 30)
    background = Item(image, "Background", 80, 60)
    image.insert_layer(portrait, None, 0)
    image.insert_layer(background, None, 1)
    portrait.set_offsets(5, 7)
    return image, portrait, background


def options(**overrides):
    value = {"background": None, "hdri": None, "settings": {"strength": 1.0},
             "output_intrinsics": True, "output_normals": False, "output_composite": True}
    value.update(overrides)
    return value


@pytest.fixture(autouse=True)
def reset_client():
    FakeClient.requests, FakeClient.error, FakeClient.shading_over_max = [], None, 0.4
    FakeClient.warnings = []
    MESSAGES.clear()


def tree(items):
    return [(i.name, tree(i.children)) if i.group else i.name for i in items]


@pytest.mark.parametrize("precision, expected", [
    (Precision.U8_NON_LINEAR, ("u8", "srgb", "R'G'B'A u8", "Y u8", True)),
    (Precision.U8_PERCEPTUAL, ("u8", "srgb", "R'G'B'A u8", "Y u8", True)),
    (Precision.U8_LINEAR, ("u8", "linear", "RGBA u8", "Y u8", True)),
    (Precision.U16_NON_LINEAR, ("u16", "srgb", "R'G'B'A u16", "Y u16", True)),
    (Precision.U16_LINEAR, ("u16", "linear", "RGBA u16", "Y u16", True)),
    (Precision.U32_LINEAR, ("f32", "linear", "RGBA float", "Y float", False)),
    (Precision.HALF_LINEAR, ("f32", "linear", "RGBA float", "Y float", False)),
    (Precision.FLOAT_NON_LINEAR, ("f32", "linear", "RGBA float", "Y float", False)),
    (Precision.DOUBLE_LINEAR, ("f32", "linear", "RGBA float", "Y float", False)),
])
def test_pixel_format_per_precision(plugin, precision, expected):
    fmt = plugin.pixel_format(precision)
    assert (fmt.dtype, fmt.encoding, fmt.colour, fmt.mask, fmt.integer) == expected


def test_builds_one_group_above_the_portrait_in_one_undo_step(plugin):
    image, portrait, background = scene()
    group = plugin.relight_image(image, [portrait], options(output_normals=True), FakeClient)
    assert tree(image.layers) == [
        ("Relight", ["Normals", "Relit", ("Relit as layers",
                                          ["Specular", "Shading over 1", "Shading", "Albedo"]),
                     "Composite"]),
        "Portrait", "Background"]
    assert group.name == "Relight" and image.undo_groups == 1 and image.undo_depth == 0
    layers = {i.name: i for i in group.children}
    layers.update({i.name: i for i in layers["Relit as layers"].children})
    for name in ("Normals", "Relit", "Specular", "Shading over 1", "Shading", "Albedo",
                 "Composite"):
        assert layers[name].offsets == (5, 7) and (layers[name].width, layers[name].height) == \
            (40, 30), name
        assert layers[name].written == ("R'G'B'A u8", 40 * 30 * 4), name
        assert layers[name].composite_space == "rgb-linear"
    assert layers["Shading"].mode == "MULTIPLY" and layers["Specular"].mode == "ADDITION"
    assert layers["Shading over 1"].mode == "ADDITION"
    assert layers["Relit"].mask.written == ("Y u8", 40 * 30)
    assert layers["Relit as layers"].mask.written == ("Y u8", 40 * 30)
    assert not layers["Normals"].visible and not layers["Relit as layers"].visible
    # the user's layers were only read, in the image's own format
    assert portrait.written is None and background.written is None
    assert portrait.read_formats == ["R'G'B'A u8"] and background.read_formats == ["R'G'B'A u8"]


def test_request_names_formats_layers_and_background(plugin):
    image, portrait, background = scene(Precision.U16_NON_LINEAR)
    plugin.relight_image(image, [portrait], options(settings={"strength": 2.0}), FakeClient)
    op, params = FakeClient.requests[0]
    assert op == "relight" and params["settings"] == {"strength": 2.0}
    assert params["portrait"]["dtype"] == "u16" and params["portrait"]["encoding"] == "srgb"
    assert (params["background"]["width"], params["background"]["height"]) == (80, 60)
    assert params["layers"] == ["alpha", "relit", "albedo", "shading", "specular",
                                "shading_over", "composite"]
    assert params["output"]["dtype"] == "u16" and not os.path.exists(params["output"]["dir"])
    assert params["background_region"] == [5, 7, 40, 30]  # the part under the portrait


def test_a_selection_goes_with_the_portrait_and_one_that_misses_it_is_refused(plugin):
    image, portrait, _ = scene(Precision.U16_NON_LINEAR)
    plugin.relight_image(image, [portrait], options(), FakeClient)
    assert "selection" not in FakeClient.requests[-1][1]  # nothing selected: nothing sent
    image.selection_box = (20, 10, 30, 30)  # over the portrait's right part
    plugin.relight_image(image, [portrait], options(), FakeClient)
    selection = FakeClient.requests[-1][1]["selection"]
    assert (selection["width"], selection["height"], selection["channel_order"]) == (40, 30, "Y")
    assert selection["dtype"] == "u16" and selection["encoding"] == "linear"
    # read over the portrait layer's own rectangle (offsets 5, 7), nothing beyond the canvas
    assert image.selection.read_rects == [(5, 7, 40, 30, "none")]
    assert image.selection.read_formats == ["Y u16"]
    image.selection_box = (60, 50, 10, 5)  # beside the portrait: the user chose something else
    with pytest.raises(plugin.UserError, match="does not touch the portrait"):
        plugin.relight_image(image, [portrait], options(), FakeClient)
    assert len(FakeClient.requests) == 2 and tree(image.layers)[0] != "Relight"


def test_the_portraits_layer_mask_goes_with_it_when_applied(plugin):
    image, portrait, _ = scene(Precision.FLOAT_LINEAR)
    plugin.relight_image(image, [portrait], options(), FakeClient)
    assert "portrait_mask" not in FakeClient.requests[-1][1]
    portrait.add_mask(Item(image, "Portrait mask", 40, 30))
    plugin.relight_image(image, [portrait], options(), FakeClient)
    mask = FakeClient.requests[-1][1]["portrait_mask"]
    assert (mask["width"], mask["height"], mask["channel_order"], mask["dtype"]) == \
        (40, 30, "Y", "f32")
    assert portrait.mask.read_rects == [(0, 0, 40, 30, "none")]  # the mask's own pixels
    assert portrait.mask.read_formats == ["Y float"] and portrait.mask.written is None
    portrait.apply_mask = False  # Layer ▸ Mask ▸ Apply Layer Mask unticked: the user sees none
    plugin.relight_image(image, [portrait], options(), FakeClient)
    assert "portrait_mask" not in FakeClient.requests[-1][1]


def test_background_that_does_not_cover_the_portrait_is_sent_whole(plugin):
    image, portrait, background = scene()
    background.width = 20  # narrower than the portrait: scaled to cover by the worker
    plugin.relight_image(image, [portrait], options(), FakeClient)
    assert "background_region" not in FakeClient.requests[0][1]


def test_float_images_get_no_shading_over_layer_and_hdri_replaces_the_background(plugin,
                                                                                 tmp_path):
    hdri = tmp_path / "sky.hdr"
    hdri.write_bytes(b"#?RADIANCE")
    image, portrait, _ = scene(Precision.FLOAT_LINEAR)
    group = plugin.relight_image(image, [portrait], options(hdri=str(hdri)), FakeClient)
    _, params = FakeClient.requests[0]
    assert "background" not in params and params["hdri"] == {"path": str(hdri)}
    assert "shading_over" not in params["layers"]
    assert tree(group.children) == ["Relit", ("Relit as layers", ["Specular", "Shading",
                                                                  "Albedo"]), "Composite"]


def test_empty_shading_over_is_left_out(plugin):
    FakeClient.shading_over_max = 0.0
    image, portrait, _ = scene()
    group = plugin.relight_image(image, [portrait], options(output_composite=False), FakeClient)
    assert tree(group.children) == ["Relit", ("Relit as layers", ["Specular", "Shading",
                                                                  "Albedo"])]


def test_layer_below_and_chosen_background(plugin):
    image, portrait, background = scene()
    assert plugin.layer_below(portrait) is background
    assert plugin.layer_below(background) is None
    other = Item(image, "Other", 10, 10)
    image.insert_layer(other, None, 2)
    plugin.relight_image(image, [portrait], options(background=other), FakeClient)
    _, params = FakeClient.requests[0]
    assert (params["background"]["width"], params["background"]["height"]) == (10, 10)


@pytest.mark.parametrize("case, words", [
    ("grey", "RGB image"), ("two", "exactly one layer"), ("group", "not a mask, channel or group"),
    ("huge", "at most 100"), ("alone", "background"), ("hdri", "does not exist"),
    ("self", "must not be the portrait"),
])
def test_bad_input_is_refused_before_any_work(plugin, case, words):
    image, portrait, background = scene(base="GRAY" if case == "grey" else "RGB")
    drawables, opts = [portrait], options()
    if case == "two":
        drawables = [portrait, background]
    elif case == "group":
        portrait.group = True
    elif case == "huge":
        portrait.width = portrait.height = 10001
    elif case == "alone":
        image.remove_layer(background)
    elif case == "hdri":
        opts["hdri"] = "/nonexistent/sky.hdr"
    elif case == "self":
        opts["background"] = portrait
    with pytest.raises(plugin.UserError, match=words):
        plugin.relight_image(image, drawables, opts, FakeClient)
    assert FakeClient.requests == [] and tree(image.layers)[0] != "Relight"


class Config:
    def __init__(self, **values):
        self.values = {"background-layer": None, "hdri-file": None, "rotation": 0.0,
                       "strength": 1.0, "shininess": 0.3, "keep-original": 0.0,
                       "edge-refine": True, "output-intrinsics": True,
                       "output-normals": False, "output-composite": True, **values}

    def get_property(self, name):
        return self.values[name]


class Procedure:
    def new_return_values(self, status, error):
        return status, error[1]


def test_run_turns_worker_errors_into_one_line_messages(plugin, monkeypatch):
    from relight_core import client

    monkeypatch.setattr(plugin.relight_client, "WorkerClient", FakeClient)
    image, portrait, _ = scene()
    FakeClient.error = client.WorkerError("no_person", "no person found in the portrait")
    status, message = plugin.run(Procedure(), "noninteractive", image, [portrait], Config(), None)
    assert status == "execution-error" and message.startswith("No person found")
    FakeClient.error = RuntimeError("boom")
    status, message = plugin.run(Procedure(), "noninteractive", image, [portrait], Config(), None)
    assert status == "execution-error" and "RuntimeError: boom" in message
    assert tree(image.layers) == ["Portrait", "Background"] and image.undo_depth == 0
    FakeClient.error = None
    status, message = plugin.run(Procedure(), "noninteractive", image, [portrait],
                                 Config(strength=2.5), None)
    assert status == "success" and FakeClient.requests[-1][1]["settings"]["strength"] == 2.5


def test_a_failure_while_building_removes_the_partial_group(plugin, monkeypatch):
    image, portrait, _ = scene()

    def broken_fill(drawable, descriptor, babl_format):
        if drawable.name == "Shading":
            raise RuntimeError("GEGL said no")

    monkeypatch.setattr(plugin, "fill_drawable", broken_fill)
    with pytest.raises(RuntimeError):
        plugin.relight_image(image, [portrait], options(), FakeClient)
    assert tree(image.layers) == ["Portrait", "Background"] and image.undo_depth == 0


def test_the_workers_notes_are_shown_once_and_only_when_there_are_some(plugin):
    """What the worker could not do as asked (no face: normals from the silhouette) reaches the
    user, as in Krita's docker; a run that went as asked shows nothing."""
    image, portrait, _ = scene()
    plugin.relight_image(image, [portrait], options(), FakeClient)
    assert MESSAGES == []
    FakeClient.warnings = ["no face found: normals come from the silhouette only"]
    plugin.relight_image(image, [portrait], options(), FakeClient)
    assert MESSAGES == ["Relight: no face found: normals come from the silhouette only"]
