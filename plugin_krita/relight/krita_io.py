"""Layers ↔ pixel files. The only module that reads or writes Krita's pixels.

Call these on the GUI thread only (Krita's API is not thread-safe). No Qt import here: Krita's
``setPixelData`` takes Python bytes for its QByteArray, so this module is unit-tested with
stand-in documents and nodes.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from .clientmod import client
from .formats import (
    InputError,
    LayerSpec,
    PixelFormat,
    alpha_is_empty,
    check_rect,
    pixel_format,
    rect_contains,
)


@dataclass
class LayerFile:
    """A layer's pixels saved for the worker, with where they sit in the document."""

    descriptor: dict
    x: int
    y: int
    width: int
    height: int


def paint_layers(doc) -> list:
    """Every paint layer of the document, top of the stack first (groups searched too)."""
    found: list = []

    def walk(node) -> None:
        for child in reversed(node.childNodes()):  # childNodes() runs bottom to top
            if child.type() == "paintlayer":
                found.append(child)
            if child.type() == "grouplayer":
                walk(child)

    walk(doc.rootNode())
    return found


def node_id(node) -> str:
    return node.uniqueId().toString()


def find_node(doc, wanted_id: str):
    for node in paint_layers(doc):
        if node_id(node) == wanted_id:
            return node
    return None


def layer_below(doc, node):
    """The paint layer just under ``node`` in the stack (the default background), or None."""
    layers = paint_layers(doc)
    for index, candidate in enumerate(layers):
        if node_id(candidate) == node_id(node) and index + 1 < len(layers):
            return layers[index + 1]
    return None


def document_format(doc) -> PixelFormat:
    return pixel_format(doc.colorModel(), doc.colorDepth(), doc.colorProfile())


def bounds_of(node) -> tuple[int, int, int, int]:
    rect = node.bounds()
    return rect.x(), rect.y(), rect.width(), rect.height()


def save_layer(node, folder: str, name: str, what: str, max_megapixels: float,
               rect: tuple[int, int, int, int] | None = None) -> LayerFile:
    """Write a paint layer's pixels to ``folder`` in the layer's format.

    ``rect`` (x, y, w, h in document pixels) defaults to the layer's own bounds.
    """
    fmt = pixel_format(node.colorModel(), node.colorDepth(), node.colorProfile())
    x, y, width, height = rect or bounds_of(node)
    check_rect(width, height, what, max_megapixels)
    data = bytes(node.pixelData(x, y, width, height))
    if alpha_is_empty(data, fmt):
        raise InputError(f"The {what} layer is empty: paint or paste an image into it first.")
    descriptor = client.pixel_descriptor(
        os.path.join(folder, f"{name}.raw"), width, height, fmt.dtype, fmt.encoding,
        fmt.channel_order,
    )
    client.write_pixels(descriptor, data)
    return LayerFile(descriptor, x, y, width, height)


def save_selection(doc, portrait: LayerFile, folder: str) -> dict | None:
    """The document's selection over the portrait's rectangle as a one-channel 8-bit file (the
    person is cut out inside it), or None when nothing is selected.

    Raises InputError when the selection misses the portrait (nothing in it at half or more),
    which is most likely a selection left over from other work."""
    selection = doc.selection()
    if selection is None or selection.width() <= 0 or selection.height() <= 0:
        return None
    data = bytes(selection.pixelData(portrait.x, portrait.y, portrait.width, portrait.height))
    if not data or max(data) < 128:
        raise InputError("The selection does not touch the portrait layer: select the person "
                         "(or Select ▸ Deselect to use the whole layer) and try again.")
    return _coverage_file(folder, "selection", portrait, data)


def selection_extent(doc) -> tuple[int, int, int, int] | None:
    """The document's selection as its rectangle (x, y, width, height), or None when nothing is
    selected: Krita does not signal a changed selection, so the docker compares this."""
    selection = doc.selection()
    if selection is None or selection.width() <= 0 or selection.height() <= 0:
        return None
    return (selection.x(), selection.y(), selection.width(), selection.height())


def save_layer_mask(node, portrait: LayerFile, folder: str) -> dict | None:
    """The portrait layer's visible transparency masks, multiplied, over its rectangle as a
    one-channel 8-bit file, or None when it has none. The worker multiplies it into the
    layer's alpha: the portrait as the user sees it (a masked-out background counts as erased).

    Raises InputError when a mask's pixels are not one byte each (Krita keeps masks 8-bit)."""
    masks = [child for child in node.childNodes()
             if child.type() == "transparencymask" and child.visible()]
    if not masks:
        return None
    rect = (portrait.x, portrait.y, portrait.width, portrait.height)
    data = b""
    for mask in masks:
        more = bytes(mask.pixelData(*rect))
        if len(more) != portrait.width * portrait.height:
            raise InputError(f"The portrait's mask {mask.name()!r} cannot be read as 8-bit: "
                             "apply it to the layer (right-click ▸ Merge Down) and try again.")
        # several masks hide what any of them hides (rare: a pure-Python product is enough)
        data = more if not data else bytes((data[i] * more[i] + 127) // 255
                                           for i in range(len(more)))
    return _coverage_file(folder, "portrait_mask", portrait, data)


def _coverage_file(folder: str, name: str, portrait: LayerFile, data: bytes) -> dict:
    """8-bit coverage over the portrait's rectangle → a raw one-channel file; its descriptor."""
    descriptor = client.pixel_descriptor(os.path.join(folder, f"{name}.raw"), portrait.width,
                                         portrait.height, "u8", "linear", "Y")
    client.write_pixels(descriptor, data)
    return descriptor


def save_background(node, portrait: LayerFile, folder: str, max_megapixels: float) -> LayerFile:
    """The background as the worker should see it.

    When the background covers the portrait's rectangle, send exactly that rectangle: the
    composite then lines up with the document (what the artist sees behind the person).
    Otherwise send the whole layer, which the worker scales to cover the portrait.
    """
    portrait_rect = (portrait.x, portrait.y, portrait.width, portrait.height)
    covers = rect_contains(bounds_of(node), portrait_rect)
    return save_layer(node, folder, "background", "background", max_megapixels,
                      portrait_rect if covers else None)


def output_request(fmt: PixelFormat, folder: str) -> dict:
    """The ``output`` object of a relight request: the document's own pixel layout."""
    return {"dir": folder, "dtype": fmt.dtype, "encoding": fmt.encoding,
            "channel_order": fmt.channel_order, "alpha": "opaque"}


def _paint_layer(doc, spec: LayerSpec, descriptor: dict, x: int, y: int):
    """A new paint layer with the worker's pixels, not yet in the document."""
    node = doc.createNode(spec.name, "paintlayer")
    data = client.read_pixels(descriptor)
    node.setPixelData(data, x, y, descriptor["width"], descriptor["height"])
    node.setBlendingMode(spec.blending)
    node.setVisible(spec.visible)
    return node


def matte_mask(doc, alpha_u8: bytes, x: int, y: int, width: int, height: int):
    """Krita ≥ 5.2: a transparency mask "Matte" holding the 8-bit matte, not yet in the
    document (``Document.createTransparencyMask`` + ``setSelection``). None when this Krita
    lacks that API (5.1: see :class:`MaskJob`)."""
    if not hasattr(doc, "createTransparencyMask"):
        return None
    from krita import Selection  # noqa: PLC0415 - only inside Krita

    mask = doc.createTransparencyMask("Matte")
    selection = Selection()
    selection.setPixelData(alpha_u8, x, y, width, height)
    mask.setSelection(selection)
    return mask


def transparency_masks(node) -> list:
    found = []
    for child in node.childNodes():
        if child.type() == "transparencymask":
            found.append(child)
        found.extend(transparency_masks(child))
    return found


@dataclass
class WriteReport:
    group_name: str
    layers: list[str]
    masked: list[str]
    warnings: list[str]
    holders: list = field(default_factory=list)


def write_outputs(doc, portrait, plan: list[LayerSpec], files: dict, group_name: str, x: int,
                  y: int, matte: tuple[bytes, tuple[int, int, int, int]] | None = None
                  ) -> WriteReport:
    """Add the "Relight" group above ``portrait`` with the planned layers; touch nothing else.

    The group is built whole off the document and then added to it with one ``addChildNode``:
    that is Krita's one undoable step (``setChildNodes`` on a node outside the document records
    none), so one Undo removes the whole result. ``matte`` = (8-bit alpha, its rect x, y, w, h)
    becomes a mask on Relit and Components where this Krita can make one directly (≥ 5.2);
    ``report.holders`` are the nodes still waiting for theirs (5.1: :class:`MaskJob`).
    """
    report = WriteReport(group_name, [], [], [])
    in_group: list = []  # bottom to top, as Krita lists children
    in_components: list = []
    components = None
    for spec in reversed(plan):  # the plan runs top to bottom
        descriptor = files.get(spec.key)
        if descriptor is None:
            report.warnings.append(f"the worker returned no {spec.key} layer")
            continue
        layer = _paint_layer(doc, spec, descriptor, x, y)
        if spec.parent == "components":
            if components is None:
                components = doc.createGroupLayer("Components")
                components.setVisible(False)  # shows the same as Relit; switch on to edit
                in_group.append(components)
            in_components.append(layer)
        else:
            in_group.append(layer)
        report.layers.append(spec.name)
    children = {id(node): [] for node in in_group}
    if components is not None:
        children[id(components)] = in_components
    for holder in (node for node in in_group if node.name() in ("Relit", "Components")):
        mask = matte_mask(doc, matte[0], *matte[1]) if matte is not None else None
        if mask is None:
            report.holders.append(holder)
        else:
            children[id(holder)].append(mask)  # on top of the holder's children
            report.masked.append(holder.name())
    group = doc.createGroupLayer(group_name)
    group.setChildNodes(in_group)
    # only now, with a parent: Krita takes a group without one for the image's root, which
    # refuses masks
    for node in in_group:
        if children[id(node)]:
            node.setChildNodes(children[id(node)])
    portrait.parentNode().addChildNode(group, portrait)  # directly above the portrait
    doc.refreshProjection()
    return report


def existing_names(doc) -> list[str]:
    names: list[str] = []

    def walk(node) -> None:
        for child in node.childNodes():
            names.append(child.name())
            walk(child)

    walk(doc.rootNode())
    return names
