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


def _add_paint_layer(doc, parent, spec: LayerSpec, descriptor: dict, x: int, y: int):
    node = doc.createNode(spec.name, "paintlayer")
    parent.addChildNode(node, None)  # None = on top of the parent's children
    data = client.read_pixels(descriptor)
    node.setPixelData(data, x, y, descriptor["width"], descriptor["height"])
    node.setBlendingMode(spec.blending)
    node.setVisible(spec.visible)
    return node


def add_matte_mask_direct(doc, layer, alpha_u8: bytes, x: int, y: int, width: int,
                          height: int) -> bool:
    """Krita ≥ 5.2: ``Document.createTransparencyMask`` + ``setSelection``, synchronously.
    False when this Krita lacks that API (5.1: see :class:`MaskJob`)."""
    if not hasattr(doc, "createTransparencyMask"):
        return False
    from krita import Selection  # noqa: PLC0415 - only inside Krita

    mask = doc.createTransparencyMask("Matte")
    layer.addChildNode(mask, None)
    selection = Selection()
    selection.setPixelData(alpha_u8, x, y, width, height)
    mask.setSelection(selection)
    return True


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
                  y: int) -> WriteReport:
    """Add the "Relight" group above ``portrait`` with the planned layers; touch nothing else.

    ``report.holders`` are the nodes that should get the matte as a transparency mask.
    """
    parent = portrait.parentNode()
    group = doc.createGroupLayer(group_name)
    parent.addChildNode(group, portrait)  # directly above the portrait
    report = WriteReport(group_name, [], [], [])
    components = None
    # Add bottom to top: each new child goes on top of the ones before.
    for spec in reversed(plan):
        descriptor = files.get(spec.key)
        if descriptor is None:
            report.warnings.append(f"the worker returned no {spec.key} layer")
            continue
        if spec.parent == "components" and components is None:
            components = doc.createGroupLayer("Components")
            group.addChildNode(components, None)
            components.setVisible(False)  # shows the same as Relit; switch on to edit
        target = components if spec.parent == "components" else group
        _add_paint_layer(doc, target, spec, descriptor, x, y)
        report.layers.append(spec.name)
    report.holders = [node for node in group.childNodes()
                      if node.name() in ("Relit", "Components")]
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
