"""Unit tests of the Krita adapter's host-independent parts, with stand-in Krita objects.

The plug-in package is loaded without its ``__init__`` (which needs Krita and PyQt), so these
run in the project's venv in well under a second. The real Krita is driven by
tests/test_krita_host.py.
"""

from __future__ import annotations

import importlib
import struct
import sys
import types
import uuid
from pathlib import Path

import pytest

PLUGIN = Path(__file__).resolve().parents[1] / "plugin_krita" / "relight"


def load(module: str):
    if "krita_relight" not in sys.modules:
        package = types.ModuleType("krita_relight")
        package.__path__ = [str(PLUGIN)]
        sys.modules["krita_relight"] = package
    return importlib.import_module(f"krita_relight.{module}")


formats = load("formats")
settings_mod = load("settings")
krita_io = load("krita_io")


# ---------------------------------------------------------------- stand-in Krita objects
class Rect:
    def __init__(self, x=0, y=0, w=0, h=0):
        self._v = (x, y, w, h)

    def x(self):
        return self._v[0]

    def y(self):
        return self._v[1]

    def width(self):
        return self._v[2]

    def height(self):
        return self._v[3]


class Uid:
    def __init__(self):
        self.value = str(uuid.uuid4())

    def toString(self):  # noqa: N802 - Qt's name
        return self.value


class FakeNode:
    """Pixels kept as one rectangle (x, y, w, h, bytes) in the node's format."""

    def __init__(self, name, kind="paintlayer", model="RGBA", depth="U8",
                 profile="sRGB-elle-V2-srgbtrc.icc"):
        self._name, self._type = name, kind
        self._model, self._depth, self._profile = model, depth, profile
        self.children, self.parent = [], None
        self.rect, self.data = (0, 0, 0, 0), b""
        self.blending, self.visible_flag = "normal", True
        self.uid = Uid()
        self.selection = None

    def name(self):
        return self._name

    def type(self):
        return self._type

    def uniqueId(self):  # noqa: N802
        return self.uid

    def colorModel(self):  # noqa: N802
        return self._model

    def colorDepth(self):  # noqa: N802
        return self._depth

    def colorProfile(self):  # noqa: N802
        return self._profile

    def childNodes(self):  # noqa: N802 - bottom to top, like Krita
        return list(self.children)

    def parentNode(self):  # noqa: N802
        return self.parent

    def addChildNode(self, child, above):  # noqa: N802
        """Like Krita: one undoable step when this node is in a document."""
        child.parent = self
        index = len(self.children) if above is None else self.children.index(above) + 1
        self.children.insert(index, child)
        document_root = self.document_root()
        if document_root is not None:
            document_root.undo_steps.append(f"add {child.name()}")
        return True

    def setChildNodes(self, nodes):  # noqa: N802
        """Like Krita: replaces the children, recording no undo step; a group without a
        parent counts as the image's root, which refuses masks (Krita ≥ 5.2)."""
        root_like = self._type == "grouplayer" and self.parent is None
        nodes = [node for node in nodes
                 if not (root_like and node.type() == "transparencymask")]
        for node in nodes:
            node.parent = self
        self.children = list(nodes)

    def document_root(self):
        node = self
        while node.parent is not None:
            node = node.parent
        return node if getattr(node, "undo_steps", None) is not None else None

    def bounds(self):
        return Rect(*self.rect)

    def bytes_per_pixel(self):
        if self._type == "transparencymask":
            return 1  # Krita's masks are 8-bit whatever the layer's depth
        return 4 * {"U8": 1, "U16": 2, "F16": 2, "F32": 4}[self._depth]

    def visible(self):
        return self.visible_flag

    def pixelData(self, x, y, w, h):  # noqa: N802 - like Krita: transparent outside the data
        bpp = self.bytes_per_pixel()
        sx, sy, sw, sh = self.rect
        out = bytearray(w * h * bpp)
        for row in range(h):
            for col in range(w):
                px, py = x + col - sx, y + row - sy
                if 0 <= px < sw and 0 <= py < sh:
                    src = (py * sw + px) * bpp
                    dst = (row * w + col) * bpp
                    out[dst:dst + bpp] = self.data[src:src + bpp]
        return bytes(out)

    def setPixelData(self, data, x, y, w, h):  # noqa: N802
        self.rect, self.data = (x, y, w, h), bytes(data)

    def setBlendingMode(self, mode):  # noqa: N802
        self.blending = mode

    def setVisible(self, visible):  # noqa: N802
        self.visible_flag = visible

    def setSelection(self, selection):  # noqa: N802
        self.selection = selection


class FakeDoc:
    def __init__(self, model="RGBA", depth="U8", profile="sRGB-elle-V2-srgbtrc.icc",
                 has_mask_api=False):
        self.root = FakeNode("root", "grouplayer")
        self.root.undo_steps = []
        self.model, self.depth, self.profile = model, depth, profile
        if has_mask_api:
            self.createTransparencyMask = lambda name: FakeNode(name, "transparencymask")

    def rootNode(self):  # noqa: N802
        return self.root

    def colorModel(self):  # noqa: N802
        return self.model

    def colorDepth(self):  # noqa: N802
        return self.depth

    def colorProfile(self):  # noqa: N802
        return self.profile

    def createNode(self, name, kind):  # noqa: N802
        return FakeNode(name, kind, self.model, self.depth, self.profile)

    def createGroupLayer(self, name):  # noqa: N802
        return FakeNode(name, "grouplayer")

    def refreshProjection(self):  # noqa: N802
        pass


def filled_layer(name, x, y, w, h, pixel=b"\x10\x20\x30\xff", **kwargs):
    node = FakeNode(name, **kwargs)
    node.setPixelData(pixel * (w * h), x, y, w, h)
    return node


# ---------------------------------------------------------------- formats
@pytest.mark.parametrize(("depth", "profile", "dtype", "order", "encoding", "bpp"), [
    ("U8", "sRGB-elle-V2-srgbtrc.icc", "u8", "BGRA", "srgb", 4),
    ("U16", "sRGB-elle-V2-srgbtrc.icc", "u16", "BGRA", "srgb", 8),
    ("F16", "sRGB-elle-V2-g10.icc", "f16", "RGBA", "linear", 8),
    ("F32", "sRGB-elle-V2-g10.icc", "f32", "RGBA", "linear", 16),
    ("F32", "sRGB-elle-V2-srgbtrc.icc", "f32", "RGBA", "srgb", 16),
])
def test_pixel_format_follows_krita_layout(depth, profile, dtype, order, encoding, bpp):
    fmt = formats.pixel_format("RGBA", depth, profile)
    assert (fmt.dtype, fmt.channel_order, fmt.encoding, fmt.bytes_per_pixel) == (
        dtype, order, encoding, bpp)


@pytest.mark.parametrize(("model", "word"), [("GRAYA", "greyscale"), ("CMYKA", "CMYK"),
                                             ("LABA", "L*a*b*")])
def test_other_colour_models_are_refused_with_a_fix(model, word):
    with pytest.raises(formats.InputError) as caught:
        formats.pixel_format(model, "U8", "")
    assert word in str(caught.value) and "Convert Image Color Space" in str(caught.value)


def test_alpha_is_empty_sees_one_opaque_pixel_among_transparent_ones():
    fmt8 = formats.pixel_format("RGBA", "U8", "")
    empty = bytes(4 * 1000)
    assert formats.alpha_is_empty(empty, fmt8)
    one = bytearray(empty)
    one[3] = 255  # the first pixel is always sampled
    assert not formats.alpha_is_empty(bytes(one), fmt8)
    fmt32 = formats.pixel_format("RGBA", "F32", "g10")
    opaque = struct.pack("<4f", 0.2, 0.3, 0.4, 1.0) * 500
    assert not formats.alpha_is_empty(opaque, fmt32)
    assert formats.alpha_is_empty(struct.pack("<4f", 0.2, 0.3, 0.4, 0.0) * 500, fmt32)


def test_empty_and_huge_layers_are_refused():
    with pytest.raises(formats.InputError, match="empty"):
        formats.check_rect(0, 0, "portrait")
    with pytest.raises(formats.InputError, match="limit is 100 MP"):
        formats.check_rect(20000, 10000, "portrait", 100)
    formats.check_rect(4000, 3000, "portrait", 100)


def test_output_plan_stacks_components_to_reproduce_relit():
    plan = formats.output_plan(["relit", "components", "composite"], integer_depth=True)
    keys = [spec.key for spec in plan]
    assert keys == ["relit", "specular", "shading_over", "shading", "albedo", "composite"]
    blend = {spec.key: spec.blending for spec in plan}
    assert blend == {"relit": "normal", "specular": "add", "shading_over": "add",
                     "shading": "multiply", "albedo": "normal", "composite": "normal"}
    assert all(spec.parent == "components" for spec in plan if spec.key in
               ("specular", "shading_over", "shading", "albedo"))
    float_plan = formats.output_plan(["components"], integer_depth=False)
    assert "shading_over" not in [spec.key for spec in float_plan]
    assert [spec.key for spec in formats.output_plan([])] == ["relit"]  # relit always comes
    with pytest.raises(formats.InputError):
        formats.output_plan(["sparkles"])


def test_group_names_and_preview_size():
    assert formats.unique_group_name(["Portrait"]) == "Relight"
    assert formats.unique_group_name(["Relight", "Relight 2"]) == "Relight 3"
    assert formats.preview_size_for(1000, 500) == (256, 128)
    assert formats.preview_size_for(100, 80) == (100, 80)  # never upscaled


# ---------------------------------------------------------------- settings
def test_settings_round_trip_through_krita_store():
    store: dict = {}
    original = settings_mod.DockerSettings(rotate_deg=-45, strength=1.7, shininess=0.1,
                                           keep_original=0.25, edge_refine=False, use_hdri=True,
                                           hdri_path="/x/sky.hdr",
                                           outputs=["relit", "normals"])
    settings_mod.save(original, lambda g, k, v: store.__setitem__((g, k), v))
    assert all(isinstance(value, str) for value in store.values())  # Krita stores strings
    loaded = settings_mod.load(lambda g, k, d: store.get((g, k), d))
    assert loaded == original


def test_bad_stored_settings_fall_back_and_clamp():
    store = {("relight", "rotate_deg"): "999", ("relight", "strength"): "lots",
             ("relight", "outputs"): '["composite", "bogus"]'}
    loaded = settings_mod.load(lambda g, k, d: store.get((g, k), d))
    assert loaded.rotate_deg == 180.0
    assert loaded.strength == settings_mod.DockerSettings().strength
    assert loaded.outputs == ["relit", "composite"]
    core = loaded.core_settings()
    assert set(core) == {"rotate_deg", "strength", "shininess", "keep_original", "edge_refine"}


# ---------------------------------------------------------------- layers <-> files
def test_save_layer_writes_krita_bytes_with_their_layout(tmp_path):
    node = filled_layer("Portrait", 7, 9, 5, 4, depth="U8")
    saved = krita_io.save_layer(node, str(tmp_path), "portrait", "portrait", 100)
    assert (saved.x, saved.y, saved.width, saved.height) == (7, 9, 5, 4)
    descriptor = saved.descriptor
    assert descriptor["channel_order"] == "BGRA" and descriptor["dtype"] == "u8"
    assert descriptor["encoding"] == "srgb" and descriptor["channels"] == 4
    assert Path(descriptor["path"]).read_bytes() == node.data


def test_background_is_cut_to_the_portrait_when_it_covers_it(tmp_path):
    background = FakeNode("Background")
    pixels = b"".join(bytes([x, y, 0, 255]) for y in range(10) for x in range(12))
    background.setPixelData(pixels, 0, 0, 12, 10)
    portrait = krita_io.LayerFile({}, 3, 4, 5, 2)
    saved = krita_io.save_background(background, portrait, str(tmp_path), 100)
    assert (saved.x, saved.y, saved.width, saved.height) == (3, 4, 5, 2)
    data = Path(saved.descriptor["path"]).read_bytes()
    assert data[:4] == bytes([3, 4, 0, 255])  # document pixel (3, 4), aligned with the portrait
    assert data[-4:] == bytes([7, 5, 0, 255])
    # a background smaller than the portrait goes whole; the worker scales it to cover
    big_portrait = krita_io.LayerFile({}, -5, 0, 30, 30)
    whole = krita_io.save_background(background, big_portrait, str(tmp_path), 100)
    assert (whole.x, whole.y, whole.width, whole.height) == (0, 0, 12, 10)


class FakeSelection(Rect):
    """Krita's Selection: its rectangle, and one byte per pixel, 0 outside it."""

    def __init__(self, x, y, w, h, value=255):
        super().__init__(x, y, w, h)
        self.value = value

    def pixelData(self, x, y, w, h):  # noqa: N802 - Krita's name
        sx, sy, sw, sh = self._v
        return bytes(self.value if sx <= x + col < sx + sw and sy <= y + row < sy + sh else 0
                     for row in range(h) for col in range(w))


def test_the_selection_over_the_portrait_goes_with_it(tmp_path):
    doc = FakeDoc()
    portrait = krita_io.LayerFile({}, 10, 20, 6, 4)
    doc.selection = lambda: None
    assert krita_io.save_selection(doc, portrait, str(tmp_path)) is None
    doc.selection = lambda: FakeSelection(13, 0, 100, 100)  # the portrait's right half, on
    descriptor = krita_io.save_selection(doc, portrait, str(tmp_path))
    assert (descriptor["width"], descriptor["height"]) == (6, 4)
    assert (descriptor["dtype"], descriptor["encoding"], descriptor["channel_order"]) == \
        ("u8", "linear", "Y")
    assert Path(descriptor["path"]).read_bytes() == bytes([0, 0, 0, 255, 255, 255] * 4)
    doc.selection = lambda: FakeSelection(0, 0, 5, 5)  # beside the portrait
    with pytest.raises(formats.InputError, match="does not touch the portrait"):
        krita_io.save_selection(doc, portrait, str(tmp_path))
    doc.selection = lambda: FakeSelection(10, 20, 6, 4, value=100)  # too faint to count
    with pytest.raises(formats.InputError, match="does not touch the portrait"):
        krita_io.save_selection(doc, portrait, str(tmp_path))


def test_selection_extent_is_its_rectangle_or_none():
    doc = FakeDoc()
    doc.selection = lambda: None
    assert krita_io.selection_extent(doc) is None
    doc.selection = lambda: FakeSelection(3, 4, 0, 7)  # an empty selection is none
    assert krita_io.selection_extent(doc) is None
    doc.selection = lambda: FakeSelection(3, 4, 5, 7)
    assert krita_io.selection_extent(doc) == (3, 4, 5, 7)


def test_the_portraits_visible_transparency_masks_go_with_it(tmp_path):
    node = filled_layer("Portrait", 10, 20, 4, 2, depth="U16")
    portrait = krita_io.LayerFile({}, 10, 20, 4, 2)
    assert krita_io.save_layer_mask(node, portrait, str(tmp_path)) is None
    # a mask over the left half only: off its rectangle Krita gives 0, so all is hidden but
    # its one opaque column
    left = filled_layer("Left", 10, 20, 2, 2, pixel=b"\x00", kind="transparencymask")
    left.setPixelData(bytes([0, 255, 0, 255]), 10, 20, 2, 2)
    node.addChildNode(left, None)
    descriptor = krita_io.save_layer_mask(node, portrait, str(tmp_path))
    assert (descriptor["width"], descriptor["height"], descriptor["channel_order"]) == (4, 2, "Y")
    assert (descriptor["dtype"], descriptor["encoding"]) == ("u8", "linear")
    assert Path(descriptor["path"]).read_bytes() == bytes([0, 255, 0, 0] * 2)
    left.setPixelData(bytes([0, 255, 255, 255] * 2), 10, 20, 4, 2)
    half = filled_layer("Half", 10, 20, 4, 2, pixel=b"\x80", kind="transparencymask")
    node.addChildNode(half, None)
    descriptor = krita_io.save_layer_mask(node, portrait, str(tmp_path))
    assert Path(descriptor["path"]).read_bytes() == bytes([0, 128, 128, 128] * 2)  # multiplied
    half.setVisible(False)  # a hidden mask hides nothing
    descriptor = krita_io.save_layer_mask(node, portrait, str(tmp_path))
    assert Path(descriptor["path"]).read_bytes() == bytes([0, 255, 255, 255] * 2)


def test_save_layer_refuses_empty_and_grey_layers(tmp_path):
    with pytest.raises(formats.InputError, match="empty"):
        krita_io.save_layer(FakeNode("Empty"), str(tmp_path), "p", "portrait", 100)
    transparent = filled_layer("Erased", 0, 0, 4, 4, pixel=b"\x10\x20\x30\x00")
    with pytest.raises(formats.InputError, match="empty"):
        krita_io.save_layer(transparent, str(tmp_path), "p", "portrait", 100)
    grey = filled_layer("Grey", 0, 0, 2, 2, pixel=b"\x80\xff", model="GRAYA")
    with pytest.raises(formats.InputError, match="greyscale"):
        krita_io.save_layer(grey, str(tmp_path), "p", "portrait", 100)


def make_outputs(tmp_path, keys, w, h, fmt):
    files = {}
    for index, key in enumerate(keys):
        path = tmp_path / f"{key}.raw"
        data = bytes([index + 1]) * (w * h * fmt.bytes_per_pixel)
        path.write_bytes(data)
        files[key] = {"path": str(path), "width": w, "height": h, "channels": 4,
                      "dtype": fmt.dtype, "encoding": fmt.encoding,
                      "channel_order": fmt.channel_order}
    return files


def test_write_outputs_adds_one_group_above_the_portrait(tmp_path):
    doc = FakeDoc(depth="U16")
    background = filled_layer("Background", 0, 0, 20, 20, pixel=bytes(range(8)), depth="U16")
    portrait = filled_layer("Portrait", 3, 4, 6, 5, pixel=bytes(range(8, 16)), depth="U16")
    top = filled_layer("Sketch", 0, 0, 2, 2, pixel=bytes(range(16, 24)), depth="U16")
    for node in (background, portrait, top):
        doc.root.addChildNode(node, None)
    before = {node.name(): node.data for node in (background, portrait, top)}
    fmt = krita_io.document_format(doc)
    plan = formats.output_plan(["components", "composite"], integer_depth=True)
    files = make_outputs(tmp_path, [spec.key for spec in plan], 6, 5, fmt)
    doc.root.undo_steps.clear()
    report = krita_io.write_outputs(doc, portrait, plan, files, "Relight", 3, 4)
    assert doc.root.undo_steps == ["add Relight"]  # the whole result is one Undo away

    names = [node.name() for node in doc.root.childNodes()]
    assert names == ["Background", "Portrait", "Relight", "Sketch"]
    group = doc.root.childNodes()[2]
    assert [n.name() for n in group.childNodes()] == ["Composite", "Components", "Relit"]
    components = group.childNodes()[1]
    assert not components.visible_flag
    assert [(n.name(), n.blending) for n in components.childNodes()] == [
        ("Albedo", "normal"), ("Shading", "multiply"), ("Shading over 1", "add"),
        ("Specular", "add")]
    for node in [*group.childNodes(), *components.childNodes()]:
        if node.type() == "paintlayer":
            assert node.rect == (3, 4, 6, 5)
            assert node.colorDepth() == "U16"
    relit = group.childNodes()[2]
    assert relit.data == Path(files["relit"]["path"]).read_bytes()
    assert sorted(n.name() for n in report.holders) == ["Components", "Relit"]
    assert {n.name(): n.data for n in (background, portrait, top)} == before


def test_matte_masks_are_built_in_with_the_krita_52_api(tmp_path, monkeypatch):
    selections = []

    class Selection:
        def setPixelData(self, data, x, y, w, h):  # noqa: N802
            selections.append((bytes(data), x, y, w, h))

    monkeypatch.setitem(sys.modules, "krita", types.SimpleNamespace(Selection=Selection))
    plan = formats.output_plan(["components"], integer_depth=True)
    alpha = bytes([0, 128, 255, 64])
    for has_api in (True, False):
        doc = FakeDoc(has_mask_api=has_api)
        portrait = filled_layer("Portrait", 3, 4, 2, 2)
        doc.root.addChildNode(portrait, None)
        files = make_outputs(tmp_path, [spec.key for spec in plan], 2, 2,
                             krita_io.document_format(doc))
        doc.root.undo_steps.clear()
        report = krita_io.write_outputs(doc, portrait, plan, files, "Relight", 3, 4,
                                        (alpha, (3, 4, 2, 2)))
        assert doc.root.undo_steps == ["add Relight"]
        group = doc.root.childNodes()[1]
        holders = {node.name(): node for node in group.childNodes()
                   if node.name() in ("Relit", "Components")}
        if has_api:  # each holder carries its matte on top, before the group is added
            assert sorted(report.masked) == ["Components", "Relit"] and report.holders == []
            for holder in holders.values():
                mask = holder.childNodes()[-1]
                assert mask.type() == "transparencymask" and mask.name() == "Matte"
            assert len(holders["Components"].childNodes()) == 5  # 4 layers + the mask
        else:  # Krita 5.1: the docker's asynchronous MaskJob adds them afterwards
            assert report.masked == [] and {n.name() for n in report.holders} == set(holders)
            assert all(n.type() != "transparencymask" for h in holders.values()
                       for n in h.childNodes())
    assert selections == [(alpha, 3, 4, 2, 2)] * 2


def test_layer_lists_follow_the_stack():
    doc = FakeDoc()
    background = filled_layer("Background", 0, 0, 2, 2)
    group = FakeNode("Group", "grouplayer")
    inner = filled_layer("Inner", 0, 0, 2, 2)
    portrait = filled_layer("Portrait", 0, 0, 2, 2)
    doc.root.addChildNode(background, None)
    doc.root.addChildNode(group, None)
    group.addChildNode(inner, None)
    doc.root.addChildNode(portrait, None)
    assert [n.name() for n in krita_io.paint_layers(doc)] == ["Portrait", "Inner", "Background"]
    assert krita_io.layer_below(doc, portrait).name() == "Inner"
    assert krita_io.find_node(doc, krita_io.node_id(background)) is background
    assert krita_io.layer_below(doc, background) is None
